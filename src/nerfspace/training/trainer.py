"""The training loop: L_R, L_C or L_R+C on a zoo's seen architectures, with validation, best/last
checkpoints, resume, CSV and TensorBoard logs.

Each step takes ``objects_per_batch`` objects × 2 seen architectures; the architecture pair cycles through
(mlp, triplane), (triplane, hash), (mlp, hash). An epoch visits every training object once. With
``views`` > 0 each NeRF of a step is read in one of its views (`nerfspace.encoders.inputs`), drawn at
random. Parts whose objective is ``category`` are trained by a second SigLIP whose positives are two NeRFs
of one category, whatever the loss.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from nerfspace.archs import SCENE_BOX, SEEN
from nerfspace.atomic import atomic_write_bytes, atomic_write_json, sweep_temps
from nerfspace.checkpoint import load_into, load_resume, load_weights, save_resume, save_weights
from nerfspace.decoder import DecoderConfig, ImplicitDecoder
from nerfspace.encoders import DEFAULT_PRESET, ComposedEncoder, Composition, preset, upgrade_legacy
from nerfspace.encoders.inputs import FIELD_INPUTS, to_device
from nerfspace.errors import InputError
from nerfspace.locks import folder_lock
from nerfspace.losses import CONTRASTIVE_WEIGHT, LOSSES, SigLIP, rendering_loss
from nerfspace.metrics import mean_recall, pair_recall
from nerfspace.render import cell_centers, render_rays
from nerfspace.seeding import derive_seed
from nerfspace.training import distributed
from nerfspace.training.data import ZooCache
from nerfspace.training.distributed import Ranks
from nerfspace.zoo.fitting import psnr
from nerfspace.zoo.items import Item, zoo_items

MAX_LR = 1.0  # a peak learning rate above this is a typo, not a setting
MAX_VIEWS = 64


@dataclass(frozen=True)
class TrainConfig:
    loss: str = "l_rec_con"
    epochs: int = 20
    encoder: Composition = field(default_factory=lambda: preset(DEFAULT_PRESET))
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    lr: float = 1e-3
    weight_decay: float = 1e-2
    objects_per_batch: int = 4
    rays_per_nerf: int = 128
    empty_points: int = 256
    grad_clip: float = 1.0
    views: int = 0  # turned views per training NeRF (field-space augmentation)
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise InputError(f"unknown loss {self.loss!r}; expected one of {', '.join(LOSSES)}")
        if self.epochs < 1:
            raise InputError(f"--epochs must be >= 1, got {self.epochs}")
        if not 0 < self.lr <= MAX_LR:  # also refuses NaN and inf
            raise InputError(f"--lr must be in (0, {MAX_LR:g}], got {self.lr}")
        if not 0 <= self.views <= MAX_VIEWS:
            raise InputError(f"--views must be in [0, {MAX_VIEWS}], got {self.views}")
        if self.views and not set(self.encoder.needs) & set(FIELD_INPUTS):
            raise InputError(
                f"--views turns the field an encoder reads; encoder {self.encoder.describe()} reads none"
            )
        if self.objects_per_batch < 2:
            raise InputError(f"objects per batch must be >= 2, got {self.objects_per_batch}")

    @property
    def uses_rendering(self) -> bool:
        return self.loss in ("l_rec", "l_rec_con")

    @property
    def uses_contrastive(self) -> bool:
        return self.loss in ("l_con", "l_rec_con")

    def to_dict(self) -> dict:
        return {**asdict(self), "encoder": self.encoder.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """The config a run stored (its encoder converted if from before compositions)."""
        d = dict(d)
        d["encoder"] = Composition.from_dict(upgrade_legacy(d["encoder"], {})[0])
        d["decoder"] = DecoderConfig(**d["decoder"])
        return cls(**d)


RAYS_PER_SCALE = {"small": (128, 256), "paper": (512, 1024)}  # rays per NeRF a step, empty-space points
# settings an encoder preset trains with unless told otherwise: the invariant parts are small MLPs that
# learn from many objects a step and from turned views (docs/architecture.md)
PRESET_SETTINGS: dict[str, dict] = {"invariant": {"objects_per_batch": 32, "views": 4}}


def train_config(loss: str, scale: str = "small", encoder: str | None = None, **kw) -> TrainConfig:
    """The training settings of a scale (rays per NeRF a step) with an encoder preset (default: the
    scale's name, `small` or `paper`) and its `PRESET_SETTINGS`; other ``TrainConfig`` fields pass
    through ``kw``."""
    if scale not in RAYS_PER_SCALE:
        raise InputError(f"--scale must be one of {', '.join(RAYS_PER_SCALE)}, got {scale!r}")
    rays, empty = RAYS_PER_SCALE[scale]
    name = encoder or scale
    kw = PRESET_SETTINGS.get(name, {}) | kw
    return TrainConfig(loss=loss, encoder=preset(name), rays_per_nerf=rays, empty_points=empty, **kw)


class Model(nn.Module):
    """Everything a run trains: the encoder, the decoder (L_R) and SigLIP's temperature and bias (a second
    SigLIP for the category parts, if any)."""

    def __init__(self, cfg: TrainConfig):
        super().__init__()
        self.encoder = ComposedEncoder(cfg.encoder)
        self.decoder = ImplicitDecoder(cfg.encoder.width, cfg.decoder)
        self.siglip = SigLIP()
        self.siglip_category = SigLIP() if cfg.encoder.columns("category") else None


# ---- the data of a run ---------------------------------------------------------------------------
@dataclass
class RunData:
    train: dict[str, dict[str, Item]]  # object → preset → item (seen presets only)
    val: dict[str, dict[str, Item]]
    pairs: list[tuple[str, ...]]


def run_data(zoo: Path, cfg: TrainConfig) -> RunData:
    """Group a zoo's seen-architecture NeRFs by split and object; check the loss can use them."""
    by_split: dict[str, dict[str, dict[str, Item]]] = {"train": {}, "val": {}}
    for it in zoo_items(zoo):
        if it.preset in SEEN and it.split in by_split:
            by_split[it.split].setdefault(it.object, {})[it.preset] = it
    train = by_split["train"]
    if not train:
        raise InputError(f"{zoo}: no training NeRF of a seen architecture ({', '.join(SEEN)})")
    archs = [a for a in SEEN if any(a in v for v in train.values())]
    pairs = [p for p in (("mlp", "triplane"), ("triplane", "hash"), ("mlp", "hash")) if set(p) <= set(archs)]
    if (
        cfg.encoder.columns("category")
        and len({it.category for v in train.values() for it in v.values()}) < 2
    ):
        raise InputError(f"{zoo}: the encoder's category parts need training NeRFs of two categories or more")
    if cfg.uses_contrastive and not pairs:
        raise InputError(
            f"{zoo}: {cfg.loss} needs every object in two architectures; this zoo's training NeRFs are all "
            f"{archs[0]}"
        )
    if not pairs:
        pairs = [(archs[0],)]
    return RunData(train, by_split["val"], pairs)


def batch_items(data: RunData, objects: list[str], pair: tuple[str, ...]) -> list[tuple[int, Item]]:
    """(object index, item) for every object of the step that has both architectures of the pair."""
    out = []
    for i, o in enumerate(objects):
        if all(a in data.train[o] for a in pair):
            out += [(i, data.train[o][a]) for a in pair]
    return out


# ---- one step ------------------------------------------------------------------------------------
def _empty_points(occupancy: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` random points in empty cells of an occupancy grid [R, R, R]."""
    res = occupancy.shape[-1]
    empty = (~occupancy).reshape(-1).nonzero()[:, 0]
    if len(empty) == 0:  # a full grid: any cell will do
        empty = torch.zeros(1, dtype=torch.long)
    pick = empty[torch.randint(len(empty), (n,), generator=gen)]
    cell = 2 * SCENE_BOX / res
    return cell_centers(res)[pick] + (torch.rand(n, 3, generator=gen) - 0.5) * cell  # uniform inside the cell


def _rendering_batch(cache: ZooCache, items: list[Item], cfg: TrainConfig, gen: torch.Generator):
    """Rays, targets, occupancy grids and empty-space points of a step's NeRFs."""
    o, d, rgb, occ, empty = [], [], [], [], []
    for it in items:
        t = cache.targets(it)
        pick = torch.randint(len(t.rgb), (cfg.rays_per_nerf,), generator=gen)
        o.append(t.origins[pick])
        d.append(t.dirs[pick])
        rgb.append(t.rgb[pick])
        occ.append(t.occupancy)
        empty.append(_empty_points(t.occupancy, cfg.empty_points, gen))
    return [torch.stack(x).to(cfg.device) for x in (o, d, rgb, occ, empty)]


def compute_loss(
    model: Model,
    cache: ZooCache,
    members: list[tuple[int, Item]],
    cfg: TrainConfig,
    gen: torch.Generator,
    ranks: Ranks = Ranks(),
    encoder: nn.Module | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its parts for one batch of (object index, item). Under torchrun each rank encodes
    its share of the batch with ``encoder`` (the DDP-wrapped encoder) and gathers the others'."""
    items = [it for _, it in members]
    views = torch.randint(cfg.views + 1, (len(items),), generator=gen).tolist()
    mine = ranks.share(len(items))
    encode = encoder or model.encoder
    if mine.start < mine.stop:
        z = encode(to_device(cache.inputs(items[mine], cfg.encoder.needs, views[mine]), cfg.device))
    else:  # more ranks than NeRFs this step: this rank's forward takes part in DDP with no rows
        z = encode(to_device(cache.inputs(items[:1], cfg.encoder.needs, views[:1]), cfg.device))[:0]
    z = ranks.gather(z, len(items))
    parts: dict[str, torch.Tensor] = {}
    if cfg.uses_rendering:
        o, d, rgb, occ, empty = _rendering_batch(cache, items, cfg, gen)
        parts["l_rec"] = rendering_loss(model.decoder(z), o, d, rgb, occ, empty)
    if cfg.uses_contrastive:
        ids = torch.tensor([i for i, _ in members], device=z.device)
        parts["l_con"] = model.siglip(z[:, cfg.encoder.columns("object")], ids)
    if model.siglip_category is not None:
        names = sorted({it.category for it in items})
        ids = torch.tensor([names.index(it.category) for it in items], device=z.device)
        parts["l_cat"] = model.siglip_category(z[:, cfg.encoder.columns("category")], ids)
    weight = CONTRASTIVE_WEIGHT if cfg.uses_rendering else 1.0  # L_C alone, or L_R + 0.02 L_C
    contrastive = parts.get("l_con", 0.0) + parts.get("l_cat", 0.0)
    return parts.get("l_rec", 0.0) + weight * contrastive, parts


# ---- validation ----------------------------------------------------------------------------------
@torch.no_grad()
def validate(model: Model, cache: ZooCache, data: RunData, cfg: TrainConfig) -> dict[str, float]:
    """PSNR of the decoder's re-renders (L_R losses), SigLIP loss and cross-architecture recall@1
    on the validation objects."""
    model.eval()
    members = [(i, it) for i, o in enumerate(sorted(data.val)) for _, it in sorted(data.val[o].items())]
    metrics: dict[str, float] = {}
    if not members:
        model.train()
        return metrics
    items = [it for _, it in members]
    z = torch.cat(
        [
            model.encoder(to_device(cache.inputs(items[i : i + 32], cfg.encoder.needs), cfg.device))
            for i in range(0, len(items), 32)
        ]
    )
    ids = torch.tensor([i for i, _ in members], device=z.device)
    objects = z[:, cfg.encoder.columns("object")]
    metrics["siglip"] = float(model.siglip(objects, ids))
    presets = [it.preset for it in items]
    pairs = pair_recall(objects.cpu(), ids.tolist(), presets, ks=(1,))
    recall = mean_recall(pairs, 1, set(presets), set(presets))
    if recall is not None:
        metrics["recall@1"] = recall
    if cfg.uses_rendering:
        scores = []
        for i, it in enumerate(items):
            t = cache.targets(it)
            n = min(len(t.rgb), 512)
            o, d, occ = (v.to(cfg.device) for v in (t.origins[None, :n], t.dirs[None, :n], t.occupancy[None]))
            color, _ = render_rays(model.decoder(z[i : i + 1]), o, d, occ)
            scores.append(float(psnr(color.cpu(), t.rgb[None, :n])[0]))
        metrics["psnr"] = sum(scores) / len(scores)
    model.train()
    return metrics


def _score(cfg: TrainConfig, metrics: dict[str, float]) -> float:
    """The number the best checkpoint maximises: validation PSNR with L_R, else recall@1."""
    if cfg.uses_rendering:
        return metrics.get("psnr", -math.inf)
    return metrics.get("recall@1", -math.inf) - 1e-3 * metrics.get("siglip", 0.0)


def one_cycle(total: int) -> Callable[[int], float]:
    """Learning-rate factor of a one-cycle schedule over ``total`` steps: linear warm-up over the
    first 10 %, then cosine annealing to 1/1000 (any ``total`` >= 1 works; the length is taken from
    the current --epochs, so a resumed run that asks for more epochs anneals over the longer run)."""
    warm = max(1, round(0.1 * total))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        done = min(1.0, (step - warm) / max(1, total - warm))
        return 1e-3 + (1 - 1e-3) * 0.5 * (1 + math.cos(math.pi * done))

    return factor


def _best_score(cfg: TrainConfig, best_file: Path, saved: float) -> float:
    """The score of the best checkpoint on disk (``saved`` without one). A run killed after writing
    ``best`` but before ``resume.pt`` (the commit of an epoch) has a best checkpoint newer than its
    resume state; comparing against that file keeps the two consistent when the epoch runs again."""
    if not best_file.exists():
        return saved
    return _score(cfg, load_weights(best_file)[1].get("metrics", {}))


# ---- the loop ------------------------------------------------------------------------------------
LOG_FIELDS = ("epoch", "step", "loss", "l_rec", "l_con", "l_cat", "lr", "seconds")
VAL_FIELDS = ("epoch", "step", "metric", "value")


def train(
    zoo: Path,
    out: Path,
    cfg: TrainConfig,
    resume: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    cache_dir: Path | None = None,
) -> dict:
    """Train an encoder on ``zoo`` into the run folder ``out``; returns the run's summary. The folder is
    locked while training: a second training into it is refused until this one ends."""
    zoo, out = Path(zoo), Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; --out names a run folder")
    resumable = (out / "checkpoints" / "resume.pt").exists()
    if resume and not resumable:
        raise InputError(f"{out}: nothing to resume (no checkpoints/resume.pt)")
    if not resume and resumable:
        raise InputError(f"{out}: a run is already there; pass --resume to continue it or pick another --out")
    saved_encoder = None
    if resume:
        cfg, saved_encoder = _resumed_config(out, cfg)
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    data = run_data(zoo, cfg)
    ranks = distributed.start(cfg.device)
    try:
        if ranks.world > 2 * cfg.objects_per_batch:
            raise InputError(
                f"torchrun started {ranks.world} processes; a step holds at most {2 * cfg.objects_per_batch}"
                f" NeRFs to share ({cfg.objects_per_batch} objects x 2 architectures): use at most that many"
            )
        # every refusal comes before: a refused command creates no folder; rank 0 holds the lock
        with folder_lock(out) if ranks.main else contextlib.nullcontext():
            return _train(zoo, out, cfg, data, saved_encoder, progress or _quiet, cache_dir, ranks)
    finally:
        distributed.stop(ranks)


def _quiet(*_) -> None:
    pass


def _resumed_config(out: Path, cfg: TrainConfig) -> tuple[TrainConfig, dict]:
    """The stored config of the run in ``out`` with the command's epochs and device, and its stored
    encoder config; refused if the command asks for another loss or model."""
    config_path = out / "config.json"
    try:
        raw = json.loads(config_path.read_text())["train"]
        saved = TrainConfig.from_dict(raw)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{config_path}: missing or unreadable run config ({e})") from e
    if saved.encoder != cfg.encoder or saved.decoder != cfg.decoder or saved.loss != cfg.loss:
        raise InputError(
            f"{out}: this run was trained with loss {saved.loss} and encoder {saved.encoder.describe()}; "
            f"the command asks for loss {cfg.loss} and encoder {cfg.encoder.describe()}"
        )
    return replace(saved, epochs=cfg.epochs, device=cfg.device), raw["encoder"]


def _train(
    zoo: Path,
    out: Path,
    cfg: TrainConfig,
    data: RunData,
    saved_encoder: dict | None,
    progress: Callable[[str, int, int], None],
    cache_dir: Path | None,
    ranks: Ranks,
) -> dict:
    """The training of `train`, its checks passed; ``saved_encoder``: the stored encoder config of the
    run being resumed (None for a new run). Rank 0 alone builds the cache and writes the run folder."""
    ckpt_dir = out / "checkpoints"
    cache = ZooCache(cache_dir or zoo / "cache")
    every = [
        (it, cfg.views if split == "train" else 0)
        for split, group in (("train", data.train), ("val", data.val))
        for v in group.values()
        for it in v.values()
    ]
    for i, (it, views) in enumerate(every if ranks.main else []):  # every input (and target), once
        for view in range(views + 1):
            cache.inputs([it], cfg.encoder.needs, [view])
        if cfg.uses_rendering:
            cache.targets(it)
        progress("cache", i + 1, len(every))
    ranks.barrier()

    torch.manual_seed(cfg.seed)
    model = Model(cfg).to(cfg.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    objects = sorted(data.train)
    steps_per_epoch = math.ceil(len(objects) / cfg.objects_per_batch)
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, one_cycle(total))
    start_epoch, step, best = 0, 0, -math.inf
    if ranks.main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        for folder in (out, ckpt_dir):  # temp files of checkpoint writes killed mid-way
            sweep_temps(folder)
    if saved_encoder is not None:
        state = load_resume(ckpt_dir / "resume.pt")
        if "parts" not in saved_encoder and state["epoch"] < cfg.epochs:
            raise InputError(
                f"{out}: a run from before encoder compositions cannot continue; start a new run"
            )
        _, weights = upgrade_legacy(saved_encoder, state["model"])  # its weights are still read
        load_into(model, weights, ckpt_dir / "resume.pt")
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch, step = state["epoch"], state["step"]
        best = _best_score(cfg, ckpt_dir / "best.safetensors", state["best"])
    elif ranks.main:
        atomic_write_json(out / "config.json", {"train": cfg.to_dict(), "zoo": str(zoo)})
    encoder = DistributedDataParallel(model.encoder) if ranks.world > 1 else model.encoder
    log = _Log(out, step) if ranks.main else None

    history: list[dict] = []
    for epoch in range(start_epoch, cfg.epochs):
        gen = torch.Generator().manual_seed(derive_seed("epoch", cfg.seed, epoch))
        torch.manual_seed(derive_seed("modules", cfg.seed, epoch))  # dropout: a resumed epoch draws the same
        order = [objects[i] for i in torch.randperm(len(objects), generator=gen)]
        for b in range(steps_per_epoch):
            t0 = time.perf_counter()
            pair = data.pairs[step % len(data.pairs)]
            members = batch_items(
                data, order[b * cfg.objects_per_batch : (b + 1) * cfg.objects_per_batch], pair
            )
            loss, parts = compute_loss(model, cache, members, cfg, gen, ranks, encoder)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            step += 1
            row = {
                "epoch": epoch + 1,
                "step": step,
                "loss": loss.item(),
                "l_rec": parts["l_rec"].item() if "l_rec" in parts else "",
                "l_con": parts["l_con"].item() if "l_con" in parts else "",
                "l_cat": parts["l_cat"].item() if "l_cat" in parts else "",
                "lr": opt.param_groups[0]["lr"],
                "seconds": time.perf_counter() - t0,
            }
            if log:
                log.step(row)
                progress("train", step, total)
        if not log:  # the other ranks go on to the next epoch; rank 0 validates and saves
            continue
        metrics = validate(model, cache, data, cfg)
        log.validation(epoch + 1, step, metrics)
        history.append({"epoch": epoch + 1, **metrics})
        meta = {"train": cfg.to_dict(), "epoch": epoch + 1, "step": step, "metrics": metrics}
        score = _score(cfg, metrics)
        if score >= best:  # without validation objects every score is -inf: best is the last epoch
            best = score
            save_weights(ckpt_dir / "best.safetensors", model.state_dict(), meta)
        save_weights(ckpt_dir / "last.safetensors", model.state_dict(), meta)
        save_resume(
            ckpt_dir / "resume.pt",
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "epoch": epoch + 1,
                "step": step,
                "best": best,
            },
        )
    if log:
        log.close()
    ranks.barrier()  # the last checkpoint is written
    _, meta = load_weights(ckpt_dir / "best.safetensors")
    return {"run": str(out), "epochs": cfg.epochs, "steps": step, "best": meta, "history": history}


class _Log:
    """``log.csv`` (one row per step), ``validation.csv`` (one per epoch and metric) and TensorBoard
    events. On resume, rows past the checkpoint's step are dropped (those steps run again), and so is a
    row cut by a kill: no row is ever duplicated or partial."""

    def __init__(self, out: Path, step: int):
        self.steps = _open_csv(out / "log.csv", LOG_FIELDS, step)
        self.vals = _open_csv(out / "validation.csv", VAL_FIELDS, step)
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tensorboard"), purge_step=step or None)
        except ImportError:  # tensorboard is optional for the library
            pass

    def step(self, row: dict) -> None:
        _append(self.steps, [row])
        if self.tb:
            for k in ("loss", "l_rec", "l_con", "l_cat", "lr"):
                if row[k] != "":
                    self.tb.add_scalar(f"train/{k}", row[k], row["step"])

    def validation(self, epoch: int, step: int, metrics: dict[str, float]) -> None:
        _append(
            self.vals, [{"epoch": epoch, "step": step, "metric": k, "value": v} for k, v in metrics.items()]
        )
        if self.tb:
            for k, v in metrics.items():
                self.tb.add_scalar(f"val/{k}", v, step)

    def close(self) -> None:
        self.steps[0].close()
        self.vals[0].close()
        if self.tb:
            self.tb.close()


def _open_csv(path: Path, fields: tuple[str, ...], step: int):
    """Open a CSV log for appending, keeping its complete rows of steps up to ``step``; the kept rows
    are rewritten atomically first, so a kill at any moment leaves a valid log."""
    text = path.read_text() if path.exists() else ""
    text = text[: text.rfind("\n") + 1]  # a last line without its newline was cut by a kill
    rows = [
        r for r in csv.DictReader(io.StringIO(text)) if r.get("step", "").isdigit() and int(r["step"]) <= step
    ]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fields, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())
    f = open(path, "a", newline="")  # noqa: SIM115 - kept open for the run
    return f, csv.DictWriter(f, fields)


def _append(log, rows: list[dict]) -> None:
    f, w = log
    w.writerows(rows)
    f.flush()

"""Fitting NeRFs: K NeRFs of one spec in one vectorised pass.

``photometric`` (default) trains from rendered views with volume rendering and an occupancy grid
that the NeRF's own density keeps up to date, as a user fits a NeRF to images. ``distill`` regresses
density and colour at sampled 3D points against the ground-truth field (faster; labelled as such).
Every NeRF draws its initialisation and rays from its own seeded generator, so its result does not
depend on which other NeRFs share its batch. Quality is the PSNR of held-out views.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from nerfspace import fields
from nerfspace.archs import SCENE_BOX, ArchSpec
from nerfspace.render import (
    Cameras,
    camera_rays,
    cell_centers,
    orbit_cameras,
    render_images,
    render_rays,
    step_size,
    visual_hull,
)
from nerfspace.shapes import render_views, shaded_color
from nerfspace.shapes.trace import Subject

FIT_MODES = ("photometric", "distill")


@dataclass(frozen=True)
class FitConfig:
    """How NeRFs are fitted. Defaults are the `small` scale on 2 CPU cores."""

    mode: str = "photometric"
    steps: int = 1500
    rays_per_step: int = 1024  # per NeRF (photometric) ; points per step are 4x this (distill)
    lr_mlp: float = 1e-2
    lr_grid: float = 2e-2
    image_size: int = 64
    train_views: int = 24
    test_views: int = 6
    samples_per_diagonal: int = 128
    supersample: int = 2  # ground-truth sub-pixels per axis (anti-aliasing)
    occ_res: int = 32
    occ_every: int = 16
    occ_decay: float = 0.6
    occ_threshold: float = 0.01  # opacity of one step above which a cell counts as occupied
    batch: int = 8  # NeRFs of one spec fitted together

    def to_dict(self) -> dict:
        return asdict(self)


def fit_config(mode: str = "photometric", scale: str = "small") -> FitConfig:
    """The fitting settings of a scale: `small` for CPUs; `paper` renders finer (a GPU job)."""
    if scale == "paper":
        return FitConfig(
            mode=mode, image_size=128, samples_per_diagonal=1024, occ_res=96, steps=5000, batch=4
        )
    return FitConfig(mode=mode)


@dataclass
class FitResult:
    """K fitted NeRFs: parameters [K, ...], occupancy grids [K, R, R, R] and held-out PSNR [K]."""

    params: dict[str, torch.Tensor]
    occupancy: torch.Tensor
    psnr: list[float]
    history: list[float] = field(default_factory=list)  # mean training loss every 100 steps


def views(cfg: FitConfig) -> tuple[Cameras, Cameras]:
    """Training and held-out cameras (the same for every object)."""
    train = orbit_cameras(cfg.train_views, cfg.image_size)
    test = orbit_cameras(cfg.test_views, cfg.image_size, offset=0.5 * cfg.train_views / cfg.test_views)
    return train, test


def ground_truth(obj: Subject, cams: Cameras, supersample: int) -> torch.Tensor:
    """Anti-aliased views [V, H, W, 3] of an object: sphere traced at ``supersample``x the size and
    averaged over each pixel's sub-pixels, as a real camera integrates its pixel."""
    if supersample == 1:
        return render_views(obj, cams)
    fine = Cameras(cams.c2w, cams.focal * supersample, cams.size * supersample)
    img = render_views(obj, fine).permute(0, 3, 1, 2)
    return torch.nn.functional.avg_pool2d(img, supersample).permute(0, 2, 3, 1)


def _optimizer(params: dict[str, torch.Tensor], cfg: FitConfig) -> torch.optim.Optimizer:
    grid = [p for n, p in params.items() if not n.startswith("mlp.")]
    mlp = [p for n, p in params.items() if n.startswith("mlp.")]
    groups = [{"params": mlp, "lr": cfg.lr_mlp}] + ([{"params": grid, "lr": cfg.lr_grid}] if grid else [])
    return torch.optim.Adam(groups, betas=(0.9, 0.99), eps=1e-15)


def cell_density(
    spec: ArchSpec, params: dict[str, torch.Tensor], res: int, gens: list[torch.Generator] | None = None
) -> torch.Tensor:
    """[K, res^3] density of K fields at one point per occupancy cell (jittered with ``gens``, else
    the centre)."""
    k = next(iter(params.values())).shape[0]
    centers = cell_centers(res)
    if gens is None:
        pts = centers.expand(k, -1, -1)
    else:
        cell = 2 * SCENE_BOX / res
        pts = torch.stack([centers + (torch.rand(centers.shape, generator=g) - 0.5) * cell for g in gens])
    with torch.no_grad():
        return fields.query(spec, params, pts)[1]


def occupied(density: torch.Tensor, cfg: FitConfig) -> torch.Tensor:
    """Occupancy [K, R, R, R] from a cell-density grid [K, R^3]: density above the one that gives a
    render step ``cfg.occ_threshold`` opacity, or above the grid's mean while the field is young
    (nerfacc's adaptive threshold, so a fresh field is not declared empty)."""
    thr = -torch.log1p(torch.tensor(-cfg.occ_threshold)) / step_size(cfg.samples_per_diagonal)
    thr = torch.minimum(density.mean(1, keepdim=True), thr)
    r = cfg.occ_res
    return (density > thr).reshape(-1, r, r, r)


def sampled_cells(density: torch.Tensor, hull: torch.Tensor, cfg: FitConfig) -> torch.Tensor:
    """The cells a fit samples [K, R, R, R]: occupied cells inside the visual hull, or the whole hull
    for a field with none there (its density sits outside the hull), so it still receives gradients."""
    cells = occupied(density, cfg) & hull
    empty = ~cells.flatten(1).any(1)
    return torch.where(empty[:, None, None, None], hull, cells)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB over all but the first axis."""
    mse = ((pred - target) ** 2).flatten(1).mean(1)
    return -10.0 * torch.log10(mse.clamp(min=1e-10))


def fit(
    spec: ArchSpec,
    objects: list[Subject],
    seeds: list[int],
    cfg: FitConfig = FitConfig(),
    cameras: list[tuple[Cameras, Cameras]] | None = None,
) -> FitResult:
    """Fit one NeRF of ``spec`` per object, all in one vectorised pass. ``cameras`` gives each NeRF
    its own (training, held-out) views (a capture of its own); default: `views` for all."""
    if cfg.mode not in FIT_MODES:
        raise ValueError(f"unknown fit mode {cfg.mode!r}")
    k = len(objects)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    per_nerf = [fields.init_params(spec, 1, g) for g in gens]
    params = {n: torch.cat([p[n] for p in per_nerf]).requires_grad_(True) for n in per_nerf[0]}
    opt = _optimizer(params, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.1 ** (s / cfg.steps))
    cameras = cameras or [views(cfg)] * k

    hull = torch.ones(k, cfg.occ_res, cfg.occ_res, cfg.occ_res, dtype=torch.bool)
    if cfg.mode == "photometric":
        train_cams = [c for c, _ in cameras]
        images = [ground_truth(o, c, cfg.supersample) for o, c in zip(objects, train_cams, strict=True)]
        pairs = zip(images, train_cams, strict=True)
        hull = torch.cat([visual_hull(im[None], c, cfg.occ_res) for im, c in pairs])
        rays = [torch.cat([t.reshape(-1, 3) for t in camera_rays(c)], 1) for c in train_cams]
        pixels = _padded([im.reshape(-1, 3) for im in images])
        step_fn = _photometric_step(spec, params, pixels, _padded(rays), [len(r) for r in rays], gens, cfg)
    else:
        step_fn = _distill_step(spec, params, objects, gens, cfg)

    history, running = [], 0.0
    density = torch.zeros(k, cfg.occ_res**3)
    occupancy = None  # distillation samples points directly and needs no grid until the end
    for step in range(cfg.steps):
        if cfg.mode == "photometric" and step % cfg.occ_every == 0:
            density = torch.maximum(density * cfg.occ_decay, cell_density(spec, params, cfg.occ_res, gens))
            occupancy = sampled_cells(density, hull, cfg)
        loss = step_fn(occupancy)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running += loss.item()
        if (step + 1) % 100 == 0:
            history.append(running / 100)
            running = 0.0

    final = {n: p.detach() for n, p in params.items()}
    occupancy = occupied(torch.maximum(density, cell_density(spec, final, cfg.occ_res)), cfg) & hull
    scores = []
    for i, (obj, (_, test)) in enumerate(zip(objects, cameras, strict=True)):
        one = {n: p[i : i + 1] for n, p in final.items()}
        pred = render_images(
            lambda x, net, one=one: fields.query(spec, one, x, net),
            1,
            test,
            occupancy[i : i + 1],
            cfg.samples_per_diagonal,
        )
        scores.append(float(psnr(pred, ground_truth(obj, test, cfg.supersample)[None])[0]))
    return FitResult(final, occupancy, scores, history)


def _padded(rows: list[torch.Tensor]) -> torch.Tensor:
    """[K, P_max, C] from K tensors [P_k, C], zero-padded to the longest."""
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)


def _photometric_step(spec, params, targets, rays, counts, gens, cfg):
    """``targets`` [K, P, 3] pixel colours and ``rays`` [K, P, 6] (origin, direction) of which the first
    ``counts[k]`` rows are NeRF k's pixels (the rest padding)."""

    def step(occupancy):
        idx = torch.stack(
            [torch.randint(n, (cfg.rays_per_step,), generator=g) for n, g in zip(counts, gens, strict=True)]
        )
        jitter = torch.stack([torch.rand(cfg.rays_per_step, generator=g) for g in gens])
        picked = torch.gather(rays, 1, idx[..., None].expand(-1, -1, 6))
        color, _ = render_rays(
            lambda x, net: fields.query(spec, params, x, net),
            picked[..., :3],
            picked[..., 3:],
            occupancy,
            cfg.samples_per_diagonal,
            jitter,
        )
        target = torch.gather(targets, 1, idx[..., None].expand(-1, -1, 3))
        return ((color - target) ** 2).mean((1, 2)).sum()

    return step


def _distill_step(spec, params, objects, gens, cfg):
    n = 4 * cfg.rays_per_step
    dt = step_size(cfg.samples_per_diagonal)

    def step(_occupancy):
        x = torch.stack([(torch.rand(n, 3, generator=g) * 2 - 1) * SCENE_BOX for g in gens])
        with torch.no_grad():
            sigma_t = torch.stack([o.density(xi) for o, xi in zip(objects, x, strict=True)])
            rgb_t = torch.stack([shaded_color(o, xi) for o, xi in zip(objects, x, strict=True)])
        rgb, sigma = fields.query(spec, params, x)
        # match the opacity of one render step (bounded) and the colour where there is matter
        alpha, alpha_t = (1 - torch.exp(-s * dt) for s in (sigma, sigma_t))
        w = alpha_t.detach()
        loss = ((alpha - alpha_t) ** 2).mean(1) + (w[..., None] * (rgb - rgb_t) ** 2).mean((1, 2))
        return loss.sum()

    return step

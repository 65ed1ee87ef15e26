"""The `nerfspace` command line. Errors print as one line (exit 2 for bad input, 1 otherwise);
``--debug`` shows the traceback."""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from nerfspace.archs import PRESETS, SCALES, SEEN, get_preset, load_spec, parse_archs
from nerfspace.errors import InputError, NerfspaceError, access_error
from nerfspace.executors import Executor

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Learning on NeRF weights.",
)
zoo_app = typer.Typer(no_args_is_help=True, help="Build and inspect NeRF zoos.")
app.add_typer(zoo_app, name="zoo")
index_app = typer.Typer(no_args_is_help=True, help="FAISS indexes over embeddings.")
app.add_typer(index_app, name="index")
console = Console(stderr=True)
out = Console()
_state = {"debug": False}


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    _state["debug"] = debug


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
    )


def _emit_json(obj) -> None:
    print(json.dumps(obj, indent=1))


@zoo_app.command("build")
def zoo_build(
    out_dir: Path = typer.Argument(
        ..., metavar="OUT", help="Zoo folder (created; resumed if it holds this zoo)."
    ),
    classes: str = typer.Option(
        "all", help="'all' (the 13 categories), 'parts' (the 5 machine parts) or comma-separated names."
    ),
    objects_per_class: int = typer.Option(2, "--objects-per-class", "-n", help="Objects per category."),
    archs: str = typer.Option(
        None, help="seen|unseen|all|name,... ; items may be ArchSpec .json files (default: the protocol)."
    ),
    test_archs: str = typer.Option(None, help="Architectures of the test objects (default: as --archs)."),
    defects: str = typer.Option(
        None, help="Parts only: 'all' or comma-separated defects, added as test objects (inspection zoo)."
    ),
    severities: str = typer.Option(
        "medium", help="Defect severities: low|medium|high (0.35, 0.65, 1) or numbers in (0, 3]."
    ),
    defective_per_class: int = typer.Option(2, help="Defective parts per part, defect and severity."),
    fit: str = typer.Option(
        "photometric", help="photometric (from rendered views) or distill (from the field)."
    ),
    scale: str = typer.Option("small", help="small (CPU) or paper."),
    seed: int = typer.Option(0, help="Seed of objects, splits and fits."),
    workers: int = typer.Option(1, help="Batches fitted at once (worker processes, or Ray tasks)."),
    executor: str = typer.Option(
        "local", help="local (worker processes) or ray (a Ray cluster; pip install 'nerfspace[scale]')."
    ),
    ray_address: str = typer.Option(
        None, help="A running Ray cluster (host:port) for --executor ray; default: start a local one."
    ),
    steps: int = typer.Option(None, help="Fitting steps per NeRF (default: the scale's setting)."),
    captures: str = typer.Option(
        "aligned",
        help="aligned: every NeRF of an object from the same views in its canonical frame (the paper's);"
        " independent: every NeRF its own capture (pose, cameras, light), stored in its metadata.",
    ),
    capture_rotation: str = typer.Option("yaw", help="independent: yaw (360 deg) + tilt, or so3."),
    capture_tilt: float = typer.Option(15.0, help="independent: largest tilt in degrees [0, 180]."),
    capture_shift: float = typer.Option(0.1, help="independent: largest shift per axis (scene units)."),
    capture_scale: str = typer.Option("0.8,1.0", help="independent: scale range MIN,MAX."),
    capture_views: str = typer.Option("16,32", help="independent: training views per capture MIN,MAX."),
    as_json: bool = typer.Option(False, "--json", help="Print the zoo summary as JSON."),
) -> None:
    """Fit a zoo of NeRFs of procedural objects."""
    from nerfspace.shapes import CATEGORIES
    from nerfspace.shapes.parts import DEFECTS, PARTS, severity_value
    from nerfspace.zoo import ZooConfig
    from nerfspace.zoo.captures import CaptureConfig

    groups = {"all": CATEGORIES, "parts": PARTS}
    cls = groups.get(classes) or _names(classes)
    names, declared = parse_archs(archs) if archs else (None, {})
    test_names, test_declared = parse_archs(test_archs) if test_archs else (None, {})
    declared = {**declared, **test_declared}
    defect_names = () if defects is None else DEFECTS if defects == "all" else _names(defects)
    levels = tuple(severity_value(v) for v in _names(severities)) if defect_names else ()
    capture_cfg = CaptureConfig(
        captures,
        capture_rotation,
        capture_tilt,
        capture_shift,
        _pair("--capture-scale", capture_scale, float),
        _pair("--capture-views", capture_views, int),
    )
    cfg = ZooConfig(
        cls,
        objects_per_class,
        tuple(names) if names else None,
        fit,
        scale,
        seed,
        tuple(declared.items()),
        capture_cfg,
        tuple(test_names) if test_names else None,
        defect_names,
        levels,
        defective_per_class if defect_names else 0,
    )
    _build_and_report(out_dir, cfg, Executor(executor, workers, ray_address), steps, as_json)


def _build_and_report(
    out_dir: Path, cfg, executor: Executor, steps: int | None, as_json: bool | None
) -> None:
    """Build (or resume) the zoo of ``cfg`` at ``out_dir`` with a progress bar, then print its summary
    (``as_json`` None: no summary)."""
    from dataclasses import replace

    from nerfspace.zoo import build_zoo, fit_config, zoo_info

    if steps is not None and steps < 1:
        raise InputError(f"--steps must be >= 1, got {steps}")
    fit_cfg = fit_config(cfg.fit, cfg.scale)
    fit_cfg = fit_cfg if steps is None else replace(fit_cfg, steps=steps)
    bar, task = _progress(), None

    def on_progress(done: int, total: int) -> None:
        nonlocal task
        if task is None:  # start drawing only once the zoo folder checked out
            bar.start()
            task = bar.add_task(f"fitting NeRFs ({cfg.fit}, {cfg.scale})", total=total)
        bar.update(task, completed=done, total=total)

    try:
        build_zoo(out_dir, cfg, executor, progress=on_progress, fit_cfg=fit_cfg)
    finally:
        bar.stop()
    if as_json is not None:
        info = zoo_info(out_dir)
        _emit_json(info) if as_json else _print_info(info)


fit_app = typer.Typer(no_args_is_help=True, help="Fit NeRFs to your own data.")
app.add_typer(fit_app, name="fit")
import_app = typer.Typer(
    no_args_is_help=True, help="Import NeRFs (safe loading), and splats and point clouds as NeRFs."
)
app.add_typer(import_app, name="import")
# the options shared by the commands that fit NeRFs to a user's files (fit mesh, import splat|points)
_OUT = typer.Option(
    ..., "--out", help="Zoo folder (created; resumed if it holds this zoo), or X.safetensors: one NeRF."
)
_ARCHS = typer.Option("seen", help="seen|unseen|all|name,... ; items may be ArchSpec .json files.")
_LABELS = typer.Option(
    None, help="CSV with file,label (files relative to it) or object,label; default: folder names."
)
_UP = typer.Option("y", help="The files' up axis: x, y or z (turned onto the scene's +z).")
_KEEP = typer.Option(
    False, "--keep-frame", help="The files are in scene units about the origin: do not centre or scale them."
)
_CAPTURES = typer.Option(
    "aligned", help="aligned (the canonical frame) or independent (each NeRF its own capture)."
)
_SCALE = typer.Option("small", help="small (CPU) or paper.")
_SEED = typer.Option(0, help="Seed of captures and fits.")
_WORKERS = typer.Option(1, help="Batches fitted at once (worker processes, or Ray tasks).")
_EXECUTOR = typer.Option(
    "local", help="local (worker processes) or ray (a Ray cluster; pip install 'nerfspace[scale]')."
)
_RAY_ADDRESS = typer.Option(
    None, help="A running Ray cluster (host:port) for --executor ray; default: start a local one."
)
_STEPS = typer.Option(None, help="Fitting steps per NeRF (default: the scale's setting).")
_JSON_ZOO = typer.Option(False, "--json", help="Print the zoo summary as JSON.")


@fit_app.command("mesh")
def fit_mesh(
    inputs: list[Path] = typer.Argument(
        ..., metavar="FILE_OR_DIR...", help="Mesh files (OBJ, PLY, STL, GLB, glTF) or folders of them."
    ),
    out_dir: Path = _OUT,
    archs: str = _ARCHS,
    labels: Path = _LABELS,
    up: str = _UP,
    keep_frame: bool = _KEEP,
    captures: str = _CAPTURES,
    scale: str = _SCALE,
    seed: int = _SEED,
    workers: int = _WORKERS,
    executor: str = _EXECUTOR,
    ray_address: str = _RAY_ADDRESS,
    steps: int = _STEPS,
    as_json: bool = _JSON_ZOO,
) -> None:
    """Fit NeRFs to meshes: each mesh normalised into the scene box, rendered on the CPU, fitted from its
    views like a zoo's objects (the zoo's objects are the meshes, in the test split)."""
    _fit_files("mesh", locals())


@fit_app.command("images")
def fit_images(
    inputs: list[Path] = typer.Argument(
        ...,
        metavar="SCENE_DIR...",
        help="Scene folders (transforms.json or transforms_train.json with its images) or folders of them.",
    ),
    out_dir: Path = _OUT,
    archs: str = _ARCHS,
    labels: Path = _LABELS,
    up: str = typer.Option("z", help="The world's up axis in the transforms files: x, y or z."),
    background: str = typer.Option(
        None, help="R,G,B (0-255) behind the object in RGB photos, turned white (RGBA: the alpha)."
    ),
    keep_frame: bool = _KEEP,
    scale: str = _SCALE,
    seed: int = _SEED,
    workers: int = _WORKERS,
    executor: str = _EXECUTOR,
    ray_address: str = _RAY_ADDRESS,
    steps: int = _STEPS,
    as_json: bool = _JSON_ZOO,
) -> None:
    """Fit NeRFs to posed photos (NeRF-synthetic or nerfstudio transforms.json): the cameras' frame
    normalised into the scene box (stored in each NeRF file), every 8th frame held out for PSNR."""
    _fit_files("images", locals())


@import_app.command("splat")
def import_splat(
    inputs: list[Path] = typer.Argument(
        ..., metavar="FILE_OR_DIR...", help="Gaussian splat PLY files (the 3DGS layout) or folders of them."
    ),
    out_dir: Path = _OUT,
    archs: str = _ARCHS,
    labels: Path = _LABELS,
    up: str = _UP,
    keep_frame: bool = _KEEP,
    captures: str = _CAPTURES,
    scale: str = _SCALE,
    seed: int = _SEED,
    workers: int = _WORKERS,
    executor: str = _EXECUTOR,
    ray_address: str = _RAY_ADDRESS,
    steps: int = _STEPS,
    as_json: bool = _JSON_ZOO,
) -> None:
    """NeRFs of Gaussian splats: each splat normalised into the scene box, rendered by compositing its
    Gaussians, and a NeRF fitted to those views in every architecture of --archs."""
    _fit_files("splat", locals())


@import_app.command("points")
def import_points(
    inputs: list[Path] = typer.Argument(
        ...,
        metavar="FILE_OR_DIR...",
        help="Point clouds (PLY, or text rows x y z [r g b]) or folders of them.",
    ),
    out_dir: Path = _OUT,
    archs: str = _ARCHS,
    labels: Path = _LABELS,
    up: str = _UP,
    keep_frame: bool = _KEEP,
    captures: str = _CAPTURES,
    scale: str = _SCALE,
    seed: int = _SEED,
    workers: int = _WORKERS,
    executor: str = _EXECUTOR,
    ray_address: str = _RAY_ADDRESS,
    steps: int = _STEPS,
    as_json: bool = _JSON_ZOO,
) -> None:
    """NeRFs of point clouds (scans): each point a small round Gaussian, rendered and fitted like splats."""
    _fit_files("points", locals())


def _fit_files(kind: str, o: dict) -> None:
    """A zoo of NeRFs fitted to a user's files of one kind (`nerfspace.zoo.sources`), or with ``--out
    X.safetensors`` the one NeRF of one file in one architecture; ``o``: the options of the command (fit
    mesh|images, import splat|points)."""
    import shutil
    import tempfile

    from nerfspace.zoo import ZooConfig, read_metadata
    from nerfspace.zoo.captures import CaptureConfig
    from nerfspace.zoo.sources import file_sources

    out_path = Path(o["out_dir"])
    for given in o["inputs"]:  # the output never lies in, over or under the user's data
        src, target = Path(given).resolve(), out_path.resolve()
        if target == src or target in src.parents or src in target.parents:
            raise InputError(f"{out_path}: is, holds or lies inside an input ({given}); write somewhere else")
    names, declared = parse_archs(o["archs"])
    cfg = ZooConfig(
        (),
        archs=tuple(names),
        scale=o["scale"],
        seed=o["seed"],
        declared=tuple(declared.items()),
        captures=CaptureConfig(o.get("captures", "aligned")),  # photos: their own cameras
        sources=file_sources(
            o["inputs"], kind, o["labels"], o["up"], o["keep_frame"], _colour(o.get("background"))
        ),
    )
    if out_path.suffix != ".safetensors":
        executor = Executor(o["executor"], o["workers"], o["ray_address"])
        _build_and_report(out_path, cfg, executor, o["steps"], o["as_json"])
        return
    if len(cfg.sources) != 1 or len(names) != 1:
        raise InputError(
            f"{out_path}: one NeRF file takes one input and one architecture; give a folder for a zoo"
        )
    _check_output(out_path, o["inputs"], overwrite=False)
    with tempfile.TemporaryDirectory(prefix=".nerfspace-", dir=out_path.parent) as tmp:
        _build_and_report(Path(tmp) / "zoo", cfg, Executor(), o["steps"], as_json=None)
        built = Path(tmp) / "zoo" / "nerfs" / names[0] / f"{cfg.sources[0].id}.safetensors"
        shutil.move(built, out_path)  # a rename within one folder: atomic
    meta = read_metadata(out_path)
    summary = {"nerf": str(out_path), "preset": names[0], "psnr": float(meta["psnr"])}
    _emit_json(summary) if o["as_json"] else out.print(
        f"{out_path}: {names[0]}, held-out PSNR {summary['psnr']:.2f} dB"
    )


def _colour(text: str | None) -> tuple[float, float, float] | None:
    """``R,G,B`` (0-255) as a colour in [0, 1]; an `InputError` otherwise."""
    if text is None:
        return None
    try:
        rgb = tuple(float(v) / 255.0 for v in text.split(","))
    except ValueError as e:
        raise InputError(f"--background must be R,G,B in 0-255, got {text!r}") from e
    if len(rgb) != 3 or not all(0 <= v <= 1 for v in rgb):
        raise InputError(f"--background must be R,G,B in 0-255, got {text!r}")
    return rgb


def _names(text: str) -> tuple[str, ...]:
    """The items of a comma-separated option."""
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _pair(option: str, text: str, kind: type) -> tuple:
    """``MIN,MAX`` as two numbers of ``kind``; an `InputError` naming ``option`` otherwise."""
    try:
        lo, hi = (kind(v) for v in text.split(","))
    except ValueError as e:
        raise InputError(f"{option} must be MIN,MAX ({kind.__name__}s), got {text!r}") from e
    return lo, hi


def _print_info(info: dict) -> None:
    table = Table(
        title=f"zoo {info['zoo']}: {info['objects']} objects, {info['nerfs']} NeRFs "
        f"({info['fit']}, {info['scale']}, {info['captures']} captures"
        f"{'' if info['complete'] else ', incomplete'})"
    )
    for col in ("preset", "count", "PSNR min", "median", "max"):
        table.add_column(col, justify="left" if col == "preset" else "right")
    for p in [*PRESETS, *sorted(set(info["presets"]) - set(PRESETS))]:  # presets, then declared/imported
        if p in info["presets"]:
            v = info["presets"][p]
            table.add_row(p, str(v["count"]), *(f"{v['psnr'][s]:.2f}" for s in ("min", "median", "max")))
    out.print(table)
    out.print("splits: " + ", ".join(f"{k} {v}" for k, v in info["splits"].items()))


@zoo_app.command("info")
def zoo_info_cmd(
    zoo: Path = typer.Argument(..., help="Zoo folder."), as_json: bool = typer.Option(False, "--json")
):
    """Counts by split, category and architecture; PSNR per preset."""
    from nerfspace.zoo import zoo_info

    info = zoo_info(zoo)
    _emit_json(info) if as_json else _print_info(info)


@app.command()
def archs(
    scale: str = typer.Option("small", help="small or paper."), as_json: bool = typer.Option(False, "--json")
):
    """The 13 architecture presets and their sizes."""
    if scale not in SCALES:
        raise InputError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
    rows = {
        p: {
            "seen": p in SEEN,
            "params": get_preset(p, scale).n_params,
            "spec": get_preset(p, scale).to_dict(),
        }
        for p in PRESETS
    }
    if as_json:
        _emit_json({"scale": scale, "presets": rows})
        return
    table = Table(title=f"presets ({scale} scale)")
    for col in ("name", "seen", "family", "params", "layers x width", "act", "spatial"):
        table.add_column(col)
    for p, r in rows.items():
        s = get_preset(p, scale)
        spatial = {
            "mlp": "-",
            "triplane": f"3x{s.plane_res}^2 x {s.plane_features}",
            "hash": f"{s.hash_levels} lvl x 2^{s.hash_log2_size} x {s.hash_features}, "
            f"{s.hash_base_res}->{s.hash_max_res}",
        }[s.family]
        table.add_row(
            p,
            "yes" if r["seen"] else "",
            s.family,
            f"{r['params']:,}",
            f"{s.hidden_layers} x {s.width}",
            s.activation,
            spatial,
        )
    out.print(table)


@app.command()
def inspect(
    nerf_file: Path = typer.Argument(..., metavar="NERF_FILE"), as_json: bool = typer.Option(False, "--json")
):
    """Spec, parameter count and metadata of a NeRF file. Specs are checked against caps before anything
    is allocated: n_freqs <= 64, plane_res <= 1024, plane_features <= 256, hash_levels <= 32,
    hash_log2_size <= 24, hash_features <= 16, hash resolutions <= 8192, hidden_layers <= 64,
    width <= 4096, at most 67,108,864 parameters (docs/formats.md)."""
    from nerfspace.graphs import nerf_to_graph
    from nerfspace.zoo import load_nerf

    nerf = load_nerf(nerf_file)
    graph = nerf_to_graph(nerf.spec, nerf.params, nerf.occupancy)
    info = {
        "file": str(nerf_file),
        "preset": nerf.preset,
        "family": nerf.spec.family,
        "params": nerf.spec.n_params,
        "tensors": {n: list(t.shape) for n, t in nerf.params.items()},
        "graph": {"nodes": graph.num_nodes, "edges": graph.num_edges},
        "spec": nerf.spec.to_dict(),
        "occupancy": {"res": nerf.occupancy.shape[-1], "occupied": float(nerf.occupancy.float().mean())},
        "meta": nerf.meta,
    }
    if as_json:
        _emit_json(info)
        return
    out.print(f"[bold]{nerf_file}[/]: {info['preset']} ({info['family']}), {info['params']:,} parameters")
    out.print(f"  graph: {graph.num_nodes:,} nodes, {graph.num_edges:,} edges")
    for n, shape in info["tensors"].items():
        out.print(f"  {n:16s} {tuple(shape)}")
    out.print(
        f"  occupancy {info['occupancy']['res']}^3, {100 * info['occupancy']['occupied']:.1f}% occupied"
    )
    out.print("  " + ", ".join(f"{k}={v}" for k, v in sorted(nerf.meta.items())))


@app.command()
def train(
    zoo: Path = typer.Argument(..., metavar="ZOO", help="A zoo folder (nerfspace zoo build)."),
    loss: str = typer.Option("l_rec_con", help="l_rec | l_con | l_rec_con."),
    out_dir: Path = typer.Option(..., "--out", help="Run folder (checkpoints, logs)."),
    epochs: int = typer.Option(20, help="Epochs (an epoch visits every training object once)."),
    scale: str = typer.Option("small", help="small (CPU: 128 rays per NeRF a step) or paper (512 rays)."),
    preset: str = typer.Option(
        None,
        help="Encoder: small (GMN + field), paper (the paper's GMN), field, or invariant (capture-invariant"
        " features; object and category parts); default: --scale.",
    ),
    lr: float = typer.Option(1e-3, help="Peak learning rate of the one-cycle schedule."),
    views: int = typer.Option(
        None, help="Turned views per training NeRF (field-space augmentation); default: the preset's."
    ),
    seed: int = typer.Option(0),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    as_json: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
) -> None:
    """Train an encoder on a zoo with L_R, L_C or L_R+C."""
    from nerfspace.training.trainer import train as run_training
    from nerfspace.training.trainer import train_config

    if device not in ("cpu", "cuda"):
        raise InputError(f"--device must be cpu or cuda, got {device!r}")
    extra = {} if views is None else {"views": views}
    cfg = train_config(loss, scale, preset, epochs=epochs, lr=lr, seed=seed, device=device, **extra)
    bar, tasks = _progress(), {}

    def on_progress(stage: str, done: int, total: int) -> None:
        if not tasks:
            bar.start()
        if stage not in tasks:
            label = "caching graphs and targets" if stage == "cache" else f"training {loss}"
            tasks[stage] = bar.add_task(label, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    try:
        summary = run_training(zoo, out_dir, cfg, resume=resume, progress=on_progress)
    finally:
        bar.stop()
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 reports
        return
    if as_json:
        _emit_json(summary)
        return
    cols = sorted({k for h in summary["history"] for k in h} - {"epoch"})
    if cols:
        table = Table("epoch", *cols, title="validation")
        for h in summary["history"]:
            table.add_row(str(h["epoch"]), *(f"{h.get(c, float('nan')):.4f}" for c in cols))
        out.print(table)
    else:
        out.print("no validation objects in this zoo: the best checkpoint is the last epoch's")
    best = summary["best"]
    out.print(f"best checkpoint: epoch {best['epoch']} → {out_dir / 'checkpoints' / 'best.safetensors'}")


@app.command()
def embed(
    checkpoint: Path = typer.Argument(..., metavar="RUN_OR_CKPT"),
    inputs: list[Path] = typer.Argument(..., metavar="INPUT...", help="Zoo folders and/or NeRF files."),
    out_file: Path = typer.Option(
        ..., "--out", help="Embeddings file (.safetensors), or a shard folder with --shard-rows."
    ),
    shard_rows: int | None = typer.Option(
        None,
        "--shard-rows",
        help="Write a folder of shards of this many rows, each as it is done (resumable): for galleries "
        "too large for one array.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file or folder."),
    workers: int = typer.Option(1, help="Shards embedded at once (with --shard-rows)."),
    executor: str = _EXECUTOR,
    ray_address: str = _RAY_ADDRESS,
) -> None:
    """Embed NeRFs with a trained encoder; writes embeddings with object, category, architecture, split."""
    from nerfspace.embeddings import save_embeddings
    from nerfspace.inference import Encoder

    tasks = Executor(executor, workers, ray_address)
    if shard_rows is None:
        if tasks != Executor():
            raise InputError("--executor and --workers run one shard per task: give --shard-rows")
        _check_output(out_file, [checkpoint, *inputs], overwrite)
    else:
        _check_shard_output(out_file, [checkpoint, *inputs], overwrite)
    bar = _progress()
    try:
        encoder = Encoder.load(checkpoint)
        on_progress = _bar_callback(bar, "embedding NeRFs")
        if shard_rows is None:
            emb = encoder.embed(inputs, progress=on_progress)
        else:
            stored = encoder.embed_shards(inputs, out_file, shard_rows, progress=on_progress, executor=tasks)
    finally:
        bar.stop()
    if shard_rows is None:
        save_embeddings(out_file, emb)
        out.print(f"{len(emb.items)} embeddings of size {emb.vectors.shape[1]} → {out_file}")
    else:
        out.print(
            f"{len(stored)} embeddings of size {stored.dim} in {len(stored.shards)} shards → {out_file}"
        )


def _check_shard_output(folder: Path, inputs: list[Path], overwrite: bool) -> None:
    """A shard folder is written only if new, cut short (shards and no shard list: resumed), or complete
    with ``--overwrite``; never over a folder holding anything else."""
    from nerfspace.atomic import TEMP_PREFIX
    from nerfspace.embeddings import SHARD_LIST, SHARD_NAME
    from nerfspace.index import index_path

    _check_output(folder, inputs, overwrite=True, folder=True)
    if not folder.is_dir():
        return
    names = [p.name for p in folder.iterdir()]
    ours = {SHARD_LIST, index_path(folder).name}
    foreign = [n for n in names if not (n in ours or SHARD_NAME.match(n) or n.startswith(TEMP_PREFIX))]
    if foreign:
        raise InputError(
            f"{folder}: holds files that are not embedding shards ({foreign[0]}); write elsewhere"
        )
    if SHARD_LIST in names and not overwrite:
        raise InputError(f"{folder}: holds complete embeddings; pass --overwrite to replace them")


@app.command()
def render(
    nerf_file: Path = typer.Argument(..., metavar="NERF_FILE"),
    out_png: Path = typer.Option(..., "--out", help="PNG to write."),
    size: int = typer.Option(128, help="Image size in pixels."),
    views: int = typer.Option(4, help="Views side by side."),
):
    """Render a NeRF file from a few views into one PNG."""
    from nerfspace.render import orbit_cameras
    from nerfspace.report.images import save_png
    from nerfspace.zoo import fit_config, load_nerf

    if not 8 <= size <= 2048 or not 1 <= views <= 16:
        raise InputError("--size must be in [8, 2048] and --views in [1, 16]")
    if out_png.suffix.lower() != ".png":
        raise InputError(f"{out_png}: --out must end in .png")
    if not out_png.parent.is_dir():
        raise InputError(f"{out_png.parent}: no such folder for --out")
    nerf = load_nerf(nerf_file)
    spd = fit_config(scale=nerf.meta.get("scale", "small")).samples_per_diagonal
    images = nerf.render(orbit_cameras(views, size, offset=0.25), spd)
    save_png(out_png, images)
    out.print(f"wrote {out_png} ({views} views of {size}x{size})")


classify_app = typer.Typer(no_args_is_help=True, help="Classifiers on your own labels.")
app.add_typer(classify_app, name="classify")


@classify_app.command("fit")
def classify_fit(
    emb_file: Path = typer.Argument(..., metavar="EMB", help="Embeddings file (nerfspace embed)."),
    labels: Path = typer.Option(..., "--labels", help="CSV: label, and file (NeRF files) or object."),
    out_file: Path = typer.Option(..., "--out", help="Classifier file (.safetensors)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Fit a classifier on the labelled rows of an embeddings file: the protocol's MLP when every class has
    10 examples or more, else the nearest class mean (k-shot)."""
    from nerfspace.embeddings import load_embeddings
    from nerfspace.evaluation.classify import NearestClassMean, fit_classifier
    from nerfspace.labels import read_labels

    _check_output(out_file, [emb_file, labels], overwrite)
    emb = load_embeddings(emb_file)
    labelled = read_labels(labels, emb.items)
    rows = sorted(labelled)
    clf = fit_classifier(emb.vectors[rows], [labelled[i] for i in rows])
    clf.save(out_file, {"checkpoint": emb.checkpoint})
    counts = {c: sum(labelled[i] == c for i in rows) for c in clf.labels}
    kind = "nearest class mean" if isinstance(clf, NearestClassMean) else "MLP"
    out.print(f"{kind} over {len(counts)} classes from {len(rows)} labelled NeRFs ({counts}) → {out_file}")


@classify_app.command("predict")
def classify_predict(
    clf_file: Path = typer.Argument(..., metavar="CLF", help="Classifier file (nerfspace classify fit)."),
    emb_file: Path = typer.Argument(..., metavar="EMB", help="Embeddings of the same encoder."),
    as_json: bool = typer.Option(False, "--json", help="Print the predictions as JSON."),
) -> None:
    """The class of every NeRF of an embeddings file."""
    from nerfspace.embeddings import load_embeddings
    from nerfspace.evaluation.classify import load_classifier

    clf, meta = load_classifier(clf_file)
    emb = load_embeddings(emb_file)
    if meta.get("dim") != emb.vectors.shape[1]:
        raise InputError(
            f"{clf_file}: fitted on embeddings of size {meta.get('dim')}, not {emb.vectors.shape[1]}"
        )
    if meta.get("checkpoint") != emb.checkpoint:
        raise InputError(f"{clf_file}: fitted on another encoder's embeddings than {emb_file}")
    rows = [
        {"file": it["file"], "object": it.get("object"), "label": p}
        for it, p in zip(emb.items, clf.predict(emb.vectors), strict=True)
    ]
    if as_json:
        _emit_json(rows)
        return
    table = Table("file", "predicted class", title=f"{len(rows)} NeRFs")
    for r in rows:
        table.add_row(r["file"], r["label"])
    out.print(table)


anomaly_app = typer.Typer(no_args_is_help=True, help="Inspection: normal versus anomalous parts.")
app.add_typer(anomaly_app, name="anomaly")


def _embedded(inputs: list[Path], encoder: Path | None, fitted: tuple[Path, dict] | None = None):
    """Embeddings of ``inputs``: one embeddings file as it is, or zoos and NeRF files through ``encoder``;
    refused before any work when they are not of the encoder a model was ``fitted`` on (file, metadata)."""
    from nerfspace.embeddings import load_embeddings
    from nerfspace.inference import Encoder

    if encoder is None:
        if len(inputs) != 1:
            raise InputError(
                "give one embeddings file (nerfspace embed), or zoos / NeRF files with --encoder"
            )
        emb = load_embeddings(inputs[0])
        made_by = (emb.checkpoint, emb.encoder)
    else:
        enc = Encoder.load(encoder)
        made_by = (enc.checkpoint, enc.composition.to_dict())
    if fitted and (fitted[1].get("checkpoint"), fitted[1].get("encoder")) != made_by:
        raise InputError(f"{fitted[0]}: fitted on another encoder's embeddings than those of {inputs[0]}")
    if encoder is None:
        return emb
    bar = _progress()
    try:
        return enc.embed(inputs, progress=_bar_callback(bar, "embedding NeRFs"))
    finally:
        bar.stop()


@anomaly_app.command("fit")
def anomaly_fit(
    inputs: list[Path] = typer.Argument(
        ...,
        metavar="NORMALS...",
        help="Normal parts: an embeddings file, or zoos / NeRF files with --encoder.",
    ),
    out_file: Path = typer.Option(..., "--out", help="Anomaly model file (.safetensors)."),
    encoder: Path = typer.Option(None, "--encoder", help="Run folder or checkpoint to embed NeRFs with."),
    k: int = typer.Option(3, help="Nearest normals each score averages over."),
    false_alarm: float = typer.Option(0.05, help="Share of normals the threshold flags (leave-one-out)."),
    by_map: bool = typer.Option(
        False,
        "--map",
        help="Score by defect maps against the k nearest normals (found by the embeddings), not by embedding"
        " distance; `anomaly score` then needs the normals' NeRF files (--normals).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Fit an anomaly model on normal parts: distance to the k nearest normals (or, with --map, their
    defect maps), and a threshold set from the normals themselves at a stated false-alarm rate."""
    from nerfspace.evaluation.anomaly import AnomalyConfig, KNNAnomaly
    from nerfspace.evaluation.inspection import fit_map

    _check_output(out_file, [*inputs, *([encoder] if encoder else [])], overwrite)
    cfg = AnomalyConfig(k, false_alarm)
    emb = _embedded(inputs, encoder)
    defective = [it["file"] for it in emb.items if it.get("defect")]
    if defective:
        raise InputError(f"the normals hold {len(defective)} defective parts, e.g. {defective[0]}")
    model = KNNAnomaly(cfg).fit(emb.vectors, [it["object"] for it in emb.items])
    extra = {"checkpoint": emb.checkpoint, "encoder": emb.encoder}
    threshold = model.threshold
    if by_map:
        bar = _progress()
        try:
            files, update = [Path(it["file"]) for it in emb.items], _bar_callback(bar, "mapping normals")
            extra["map"] = fit_map(model, files, lambda done: update(done, len(files)))
        finally:
            bar.stop()
        threshold = extra["map"]["threshold"]
    model.save(out_file, extra)
    out.print(
        f"{len(emb.items)} normal NeRFs, k={k}{', defect maps' if by_map else ''}: threshold {threshold:.4f}"
        f" (flags {false_alarm:.0%} of the normals, each left out) → {out_file}"
    )


@anomaly_app.command("score")
def anomaly_score(
    model_file: Path = typer.Argument(..., metavar="MODEL", help="Anomaly model (nerfspace anomaly fit)."),
    inputs: list[Path] = typer.Argument(
        ...,
        metavar="INPUT...",
        help="An embeddings file of the same encoder, or zoos / NeRF files with --encoder.",
    ),
    encoder: Path = typer.Option(None, "--encoder", help="The model's encoder, to embed NeRFs with."),
    normals: list[Path] = typer.Option(
        None,
        "--normals",
        help="A model fitted with --map: a folder (a zoo, or any folder: every .safetensors in it) or a NeRF"
        " file holding the normals, found again by their sha256; repeatable.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
) -> None:
    """Score parts against the normals of an anomaly model; flag those above its threshold."""
    from nerfspace.evaluation.anomaly import KNNAnomaly
    from nerfspace.evaluation.inspection import check_map, find_normals, score_maps

    model, meta = KNNAnomaly.load(model_file)
    fitted = None if "map" not in meta else check_map(meta["map"], len(model.normals), model_file)
    if fitted and not normals:
        raise InputError(f"{model_file}: scores by defect maps; give its normals' NeRF files with --normals")
    if normals and not fitted:
        raise InputError(f"{model_file}: scores by embeddings; --normals is for a model fitted with --map")
    given = [f for n in normals or [] for f in (sorted(n.rglob("*.safetensors")) if n.is_dir() else [n])]
    normal_files = find_normals(fitted, given) if fitted else []
    emb = _embedded(inputs, encoder, (model_file, meta))
    threshold, extra = model.threshold, [{} for _ in emb.items]
    if fitted is None:
        scores = model.score_samples(emb.vectors)
    else:
        bar = _progress()
        try:
            update = _bar_callback(bar, "mapping parts")
            parts = [Path(it["file"]) for it in emb.items]
            maps = score_maps(model, normal_files, emb.vectors, parts, lambda d: update(d, len(parts)))
        finally:
            bar.stop()
        threshold, scores = fitted["threshold"], [m.score() for m in maps]
        extra = [{"peak": [round(float(v), 6) for v in m.peak()]} for m in maps]
    rows = [
        {"file": it["file"], "object": it["object"], "score": float(s), "flagged": bool(s > threshold), **e}
        for it, s, e in zip(emb.items, scores, extra, strict=True)
    ]
    if as_json:
        _emit_json({"threshold": threshold, "parts": rows})
        return
    flagged = sum(r["flagged"] for r in rows)
    peak = ("largest departure (part's frame)",) if fitted else ()
    table = Table("file", "score", "flagged", *peak, title=f"{flagged} of {len(rows)} parts flagged")
    for r in rows:
        where = (", ".join(f"{v:.3f}" for v in r["peak"]),) if fitted else ()
        table.add_row(r["file"], f"{r['score']:.4f}", "yes" if r["flagged"] else "", *where)
    out.print(table)
    by = "defect maps, " if fitted else ""
    out.print(
        f"threshold {threshold:.4f} ({by}k={model.config.k}, false-alarm rate {model.config.false_alarm:g})"
    )


@anomaly_app.command("map")
def anomaly_map(
    part: Path = typer.Argument(..., metavar="PART", help="The part's NeRF file."),
    normals: list[Path] = typer.Argument(
        ..., metavar="NORMAL...", help="NeRF files of normal parts to compare it with (its nearest)."
    ),
    out_file: Path = typer.Option(
        None, "--out", help="Write the map as a point cloud (.ply), grey to red by departure."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Where a part's surface departs from normal parts': each normal turned onto the part, both surfaces
    rendered from the part's views; the departure (in RMS radii of the part), its peak and its score. It
    sees gross defects only at the small scale (BENCHMARKS.md)."""
    from nerfspace.defect_map import defect_map
    from nerfspace.evaluation.inspection import nerf_shape
    from nerfspace.shapes.splat_files import write_points
    from nerfspace.zoo import load_nerf

    if out_file is not None:
        if out_file.suffix.lower() != ".ply":
            raise InputError(f"{out_file}: the map is written as a .ply point cloud")
        _check_output(out_file, [part, *normals], overwrite)
    m = defect_map(nerf_shape(load_nerf(part)), [nerf_shape(load_nerf(n)) for n in normals])
    peak = [round(float(v), 6) for v in m.peak()]
    if out_file is not None:
        t = (m.departure / m.departure.max().clamp_min(1e-12)).numpy()[:, None]
        write_points(out_file, m.points.numpy(), (1 - t) * [0.7, 0.7, 0.7] + t * [1.0, 0.0, 0.0])
    result = {"part": str(part), "score": m.score(), "peak": peak, "points": len(m.points)}
    if as_json:
        _emit_json(result | {"out": None if out_file is None else str(out_file)})
        return
    out.print(
        f"{part}: score {m.score():.3f} (RMS radii), largest departure at {peak} (the part's frame), "
        f"{len(m.points)} points" + ("" if out_file is None else f" → {out_file}")
    )


@import_app.command("gmnerf")
def import_gmnerf_cmd(
    src: Path = typer.Argument(
        ..., metavar="SRC", help="The paper's dataset folder (<arch>/<class_id>/<nerf_id>)."
    ),
    out_zoo: Path = typer.Argument(
        ..., metavar="OUT_ZOO", help="Zoo folder (created; resumed if same import)."
    ),
    scale: str = typer.Option("paper", help="Scale that preset-named <arch> folders resolve at."),
    occ_res: int = typer.Option(None, "--occ-res", help="Resample occupancy grids to this resolution."),
    as_json: bool = typer.Option(False, "--json", help="Print the zoo summary as JSON."),
) -> None:
    """Import the paper's public NeRF dataset layout (tiny-cuda-nn weights, split files) into a zoo."""
    from nerfspace.interop import GmnerfImport, import_gmnerf
    from nerfspace.zoo import zoo_info

    bar = _progress()
    try:
        manifest = import_gmnerf(
            src, out_zoo, GmnerfImport(scale, occ_res), progress=_bar_callback(bar, "importing NeRFs")
        )
    finally:
        bar.stop()
    info = zoo_info(out_zoo)
    if as_json:
        _emit_json({**info, "skipped_unlisted": manifest["skipped_unlisted"]})
        return
    _print_info(info)
    if manifest["skipped_unlisted"]:
        out.print(f"skipped {manifest['skipped_unlisted']} NeRFs of objects listed in no split file")


@import_app.command("torch")
def import_torch_cmd(
    state_dict: Path = typer.Argument(
        ..., metavar="STATE_DICT", help="A .pt/.pth state dict (weights only)."
    ),
    spec_file: Path = typer.Option(..., "--spec", help="ArchSpec JSON file the tensors follow."),
    out_file: Path = typer.Argument(..., metavar="OUT", help="NeRF file to write (.safetensors)."),
    occ_res: int = typer.Option(
        None, "--occ-res", help="Occupancy resolution (default: the file's, else 32)."
    ),
    category: str = typer.Option("", help="Category recorded in the NeRF's metadata."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing OUT file."),
) -> None:
    """Turn a plain PyTorch state dict (tensors named as docs/formats.md) into a NeRF file."""
    from nerfspace.interop import read_state_dict
    from nerfspace.zoo import save_nerf

    if out_file.suffix != ".safetensors" or not out_file.parent.is_dir():
        raise InputError(f"{out_file}: OUT must be a .safetensors file in an existing folder")
    _check_output(out_file, [state_dict, spec_file], overwrite)
    if occ_res is not None and not 2 <= occ_res <= 512:
        raise InputError(f"--occ-res must be in [2, 512], got {occ_res}")
    nerf = read_state_dict(state_dict, load_spec(spec_file), occ_res)
    nerf.meta = {"object_id": out_file.stem, "category": category, "fit": "imported", "psnr": "nan"}
    save_nerf(out_file, nerf)
    out.print(f"{state_dict} → {out_file} ({nerf.preset}, {nerf.spec.n_params:,} parameters)")


@app.command()
def export(
    nerf_file: Path = typer.Argument(..., metavar="NERF_FILE"),
    fmt: str = typer.Option(..., "--format", help="torch (a state dict) or gmnerf (the paper's layout)."),
    out_path: Path = typer.Argument(..., metavar="OUT", help="torch: a .pt file; gmnerf: a NeRF folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing OUT."),
) -> None:
    """Write a NeRF file in a foreign format (the importers read it back exactly)."""
    from nerfspace.interop import write_gmnerf_nerf, write_state_dict
    from nerfspace.interop.torch_state import spec_path
    from nerfspace.zoo import load_nerf

    if fmt not in ("torch", "gmnerf"):
        raise InputError(f"unknown --format {fmt!r}; expected torch or gmnerf")
    _check_output(out_path, [nerf_file], overwrite, folder=fmt == "gmnerf")
    if fmt == "torch":
        _check_output(spec_path(out_path), [nerf_file], overwrite)
    nerf = load_nerf(nerf_file)
    if fmt == "torch":
        write_state_dict(out_path, nerf)
        out.print(f"{nerf_file} → {out_path} (spec: {spec_path(out_path)})")
    else:
        write_gmnerf_nerf(out_path, nerf)
        out.print(f"{nerf_file} → {out_path}/")


def _check_output(out_path: Path, inputs: list[Path], overwrite: bool, folder: bool = False) -> None:
    """Refuse an output that is an input, holds one, or already exists inside one (``--overwrite`` or not),
    that is of the other kind (file / folder), that exists while ``overwrite`` is off, or a file whose
    folder does not exist."""
    if not folder and not out_path.parent.is_dir():
        raise InputError(f"{out_path.parent}: output folder does not exist")
    target = out_path.resolve()
    for inp in map(Path, inputs):
        src = inp.resolve()
        inside = src in target.parents and out_path.exists()
        if target == src or target in src.parents or inside:
            raise InputError(f"{out_path}: is, holds or is part of an input ({inp}); write somewhere else")
    if out_path.exists() or out_path.is_symlink():
        if out_path.is_dir() != folder:
            raise InputError(f"{out_path}: exists and is not a {'folder' if folder else 'file'}")
        if not overwrite:
            raise InputError(f"{out_path}: exists; pass --overwrite to replace it")


def _bar_callback(bar: Progress, label: str):
    """A ``progress(done, total)`` callback driving one task of ``bar`` (started on first call)."""
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(label, total=total)
        bar.update(task, completed=done, total=total)

    return update


def _print_headline(results: dict, title: str) -> None:
    from nerfspace.report.html import headline_rows, pct

    table = Table("metric", "%", title=title)
    for name, value in headline_rows(results):
        table.add_row(name, value)
    out.print(table)
    per_arch = results["classification"]["per_arch"]
    table = Table("architecture", "seen?", "classification %", title="per architecture (test split)")
    for a in PRESETS:
        if a in per_arch:
            table.add_row(a, "seen" if a in SEEN else "unseen", pct(per_arch[a]))
    out.print(table)


@app.command()
def evaluate(
    run: Path = typer.Argument(..., metavar="RUN_OR_CKPT", help="A run folder or checkpoint file."),
    source: Path = typer.Argument(..., metavar="ZOO_OR_EMB", help="A zoo, or embeddings of RUN's encoder."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for report.html, results.json, figures."),
    seed: int = typer.Option(0, help="Seed of the classifiers and the map."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Classification, cross-architecture retrieval and architecture mixing on a zoo's test split."""
    from nerfspace.atomic import atomic_write_json
    from nerfspace.evaluation.evaluate import EvalConfig
    from nerfspace.evaluation.evaluate import evaluate as run_evaluation
    from nerfspace.report.html import write_report

    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    bar = _progress()
    try:
        results, classifier, _ = run_evaluation(
            run, source, EvalConfig(seed=seed), progress=_bar_callback(bar, "embedding NeRFs")
        )
    finally:
        bar.stop()
    report = write_report(out_dir, results)
    atomic_write_json(out_dir / "results.json", results)
    classifier.save(out_dir / "classifier.safetensors", {"checkpoint": results["checkpoint"]})
    if as_json:
        _emit_json(results)
        return
    _print_headline(results, f"evaluation of {run} on {source}")
    out.print(f"report → {report}")


@app.command()
def retrieve(
    run: Path = typer.Argument(..., metavar="RUN_OR_CKPT", help="A run folder or checkpoint file."),
    query: Path = typer.Option(..., "--query", help="A NeRF file."),
    gallery: Path = typer.Option(
        ..., "--gallery", help="A zoo, or an embeddings file, shard folder or index file of RUN's encoder."
    ),
    k: int = typer.Option(10, "-k", help="How many results."),
    as_json: bool = typer.Option(False, "--json", help="Print the ranking as JSON."),
) -> None:
    """The gallery NeRFs nearest to a query NeRF (cosine), with category, architecture and score."""
    from nerfspace.evaluation.retrieval import retrieve_nerf

    hits = retrieve_nerf(run, query, gallery, k)
    if as_json:
        _emit_json(hits)
        return
    table = Table("rank", "object", "category", "architecture", "cosine", title=f"nearest to {query}")
    for i, h in enumerate(hits, 1):
        table.add_row(str(i), h["object"], h["category"], h["preset"], f"{h['score']:.4f}")
    out.print(table)


@index_app.command("build")
def index_build(
    embeddings: Path = typer.Argument(
        ..., metavar="EMB", help="An embeddings file or shard folder (nerfspace embed)."
    ),
    factory: str | None = typer.Option(
        None,
        "--factory",
        help="A FAISS factory string (Flat, IVF4096,Flat, IVF4096,PQ32, HNSW32, ...); default: Flat up to "
        "100,000 rows, else IVF with about 4 sqrt(rows) lists.",
    ),
    target_recall: float = typer.Option(
        0.95, "--target-recall", help="Raise nprobe / efSearch until recall@10 of exact search reaches this."
    ),
    queries: int = typer.Option(1000, "--queries", help="Gallery rows drawn to measure recall."),
    seed: int = typer.Option(0, "--seed", help="Seed of the training sample and the recall queries."),
    as_json: bool = typer.Option(False, "--json", help="Print the build's report as JSON."),
) -> None:
    """Build a FAISS index of stored embeddings (trained on a sample, tuned to a recall of exact search)
    and store it with them (EMB.faiss beside a file, DIR/index.faiss in a shard folder)."""
    from nerfspace.evaluation.retrieval import IndexConfig, build_index_file

    path, report = build_index_file(embeddings, IndexConfig(factory, target_recall, queries, seed))
    if as_json:
        _emit_json({"index": str(path), **report.to_dict()})
        return
    knob = f", {report.parameter} {report.value}" if report.parameter else ""
    out.print(
        f"{report.factory} over {report.rows:,} rows of {report.dim} "
        f"(trained on {report.trained_on:,}{knob}): recall@10 of exact search {report.recall:.3f} "
        f"on {report.queries} queries; "
        f"{report.seconds:.1f} s, {report.bytes / 2**20:.1f} MiB → {path}"
    )
    if report.recall < target_recall:
        console.print(
            f"warning: recall stays below the target {target_recall} even at the search knob's end; "
            "a finer factory (more PQ bytes, full vectors) reaches further"
        )


@app.command()
def benchmark(
    out_dir: Path = typer.Option(Path("runs/benchmark"), "--out", help="Benchmark folder (resumable)."),
    objects_per_class: int = typer.Option(20, help="Objects per category in the benchmark zoo."),
    fit_steps: int = typer.Option(400, help="Fitting steps per NeRF."),
    epochs: int = typer.Option(30, help="Training epochs of every run."),
    seed: int = typer.Option(0, help="Seed of the objects, fits, trainings and classifiers."),
    workers: int = typer.Option(2, help="Zoo fitting processes."),
    tracks: str = typer.Option("aligned,independent", help="Capture tracks, comma-separated."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """The benchmark from nothing, per capture track: zoo, the trainings (L_R, L_C, L_R+C, paper recipe,
    field only, invariant), evaluation, no-learning and other baselines, costs; writes OUT/benchmark.json
    and OUT/BENCHMARKS.md. Rerun to resume."""
    from nerfspace.benchmark import TRACKS, BenchmarkConfig, run_benchmark
    from nerfspace.evaluation.tables import benchmark_markdown

    chosen = _names(tracks)
    if not chosen or set(chosen) - set(TRACKS):
        raise InputError(f"--tracks must name some of {', '.join(TRACKS)}, got {tracks!r}")
    cfg = BenchmarkConfig(
        objects_per_class=objects_per_class,
        fit_steps=fit_steps,
        epochs=epochs,
        seed=seed,
        workers=workers,
        tracks=chosen,
    )
    summary = run_benchmark(out_dir, cfg, say=lambda s: console.print(f"[bold]·[/] {s}", highlight=False))
    (out_dir / "BENCHMARKS.md").write_text("\n".join(benchmark_markdown([summary])) + "\n")
    if as_json:
        _emit_json(summary)
        return
    out.print("\n".join(benchmark_markdown([summary])))


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("nerfspace-demo"), "--out", help="Folder for report.html and results."),
    as_json: bool = typer.Option(False, "--json", help="Print the headline as JSON (docs/cli.md)."),
) -> None:
    """The main job on shipped data: per capture track, embed the shipped test zoo (13 architectures) with
    the track's shipped encoder, measure it beside the no-learning field baselines, print the headline
    tables and write the HTML reports."""
    from nerfspace.demo import demo_json, run_demo

    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    bar = _progress()
    try:
        tracks = run_demo(out_dir, progress=_bar_callback(bar, "embedding the shipped NeRFs"))
    finally:
        bar.stop()
    if as_json:
        _emit_json(demo_json(tracks, out_dir / "report.html"))
        return
    for track, results in tracks.items():
        _print_versus_baseline(results, f"{track} captures: shipped encoder vs no learning")
    out.print(f"report → {out_dir / 'report.html'}")


def _print_versus_baseline(results: dict, title: str) -> None:
    """Every metric of the learned encoder beside the best no-learning baseline of the same NeRFs."""
    from nerfspace.demo import headline
    from nerfspace.evaluation.tables import METRICS, metric
    from nerfspace.report.html import pct

    best = headline(results)["best_baseline"]
    table = Table("metric", "learned %", "best no-learning %", "baseline", title=title)
    for path, name in METRICS.items():
        b = best.get(path)
        table.add_row(name, pct(metric(results, path)), pct(b and b["value"]), b["method"] if b else "")
    chance = pct(results["arch_chance"])
    table.add_row(
        f"architecture identifiability (chance {chance})", pct(results["arch_identifiability"]), "", ""
    )
    out.print(table)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn errors into one line and an exit code (2: bad input, naming
    the file and the reason; 1: internal error; ``--debug`` adds the traceback)."""
    try:
        app(args=argv, prog_name="nerfspace")  # usage errors print and exit 2 here
        return 0
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else int(e.code is not None)
    except KeyboardInterrupt:
        return 130
    except PermissionError as e:  # an unreadable file or folder met outside the checks that name it
        return _fail(e, str(access_error(e)), 2)
    except NerfspaceError as e:
        return _fail(e, str(e), 2 if isinstance(e, InputError) else 1)
    except Exception as e:  # noqa: BLE001 - last resort: one line, details behind --debug
        return _fail(
            e, f"{type(e).__name__}: {e} (rerun with --debug for the traceback)", 1, "internal error"
        )


def _fail(e: BaseException, message: str, code: int, label: str = "error") -> int:
    """Print ``message`` as one line (after the traceback of ``e`` with ``--debug``); return ``code``."""
    if _state["debug"]:
        traceback.print_exception(e)
    console.print(f"[red]{label}:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return code


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()

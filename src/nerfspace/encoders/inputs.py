"""The inputs of the encoder parts, built only when a part reads them: ``graph`` (the parameter graph,
a PyG `Data`), ``field`` (the field at the probe points, [N_PROBES, 4]) and ``invariant`` (the field's
capture-invariant features, [INVARIANT_WIDTH]). A zoo caches them on disk by the NeRF file's content hash
(`cached_inputs`).

Views: view 0 is the NeRF as stored; view k > 0 its field turned by the k-th tilt drawn from the file's
hash (`view_pose`: any yaw, a tilt up to `VIEW_TILT_DEG`), the field-space augmentation training reads.
Only the inputs read from the field have views; the graph is the same for every view.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import Batch

from nerfspace.cache import cached_tensors, file_hash
from nerfspace.errors import InputError
from nerfspace.frames import Similarity, yaw_tilt_rotation
from nerfspace.graphs import nerf_to_graph
from nerfspace.graphs.cache import cached_graph
from nerfspace.invariant import field_invariant
from nerfspace.probe import Field, field_probe, moved_field, nerf_field
from nerfspace.seeding import derive_seed
from nerfspace.zoo.storage import NeRF, load_nerf

# Inputs read from the NeRF's field, and the version of each (bump one when it changes, so caches of the
# older one are not reused).
FIELD_INPUTS: dict[str, tuple[Callable[[Field], torch.Tensor], int]] = {
    "field": (field_probe, 1),
    "invariant": (field_invariant, 1),
}
VIEW_TILT_DEG = 15.0  # the tilt an independent capture draws by default (`CaptureConfig.tilt_deg`)


def view_pose(digest: str, view: int) -> Similarity:
    """The turn of view ``view`` (>= 1) of the NeRF whose file hash is ``digest``."""
    gen = torch.Generator().manual_seed(derive_seed("view", digest, view))
    yaw, tilt, axis = torch.rand(3, generator=gen, dtype=torch.float64).tolist()
    rotation = yaw_tilt_rotation(2 * math.pi * yaw, math.radians(VIEW_TILT_DEG) * tilt, 2 * math.pi * axis)
    return Similarity(rotation, torch.zeros(3), 1.0)


def field_inputs(field: Field, needs: Sequence[str]) -> dict[str, Any]:
    """The inputs ``needs`` names, read from any radiance field (`nerfspace.probe.Field`: points [N, 3] in
    the scene box -> rgb [N, 3] in [0, 1], density [N] >= 0), e.g. a NeRF of another library; a part that
    reads the parameter graph cannot take one."""
    if "graph" in needs:
        raise InputError("this encoder reads the parameter graph of a nerfspace NeRF; a bare field has none")
    return {name: FIELD_INPUTS[name][0](field) for name in needs}


def nerf_inputs(nerf: NeRF, needs: Sequence[str], pose: Similarity | None = None) -> dict[str, Any]:
    """The inputs ``needs`` names, of one NeRF (its field turned by ``pose``, if given)."""
    out: dict[str, Any] = {}
    if "graph" in needs:
        out["graph"] = nerf_to_graph(nerf.spec, nerf.params, nerf.occupancy)
    reads = [name for name in needs if name in FIELD_INPUTS]
    if reads:
        field = nerf_field(nerf) if pose is None else moved_field(nerf_field(nerf), pose)
        out |= field_inputs(field, reads)
    return out


def cached_inputs(
    nerf_file: Path, cache_dir: Path, needs: Sequence[str], digest: str | None = None, view: int = 0
) -> dict:
    """The inputs ``needs`` names, of a NeRF file (its view ``view``), from ``cache_dir`` when present,
    else built and cached."""
    digest = digest or file_hash(nerf_file)
    out: dict[str, Any] = {}
    if "graph" in needs:
        out["graph"] = cached_graph(nerf_file, cache_dir, digest)
    for name in needs:
        if name in FIELD_INPUTS:
            suffix = f".view{view}" if view else ""
            entry = Path(cache_dir) / f"{digest}.{name}-v{FIELD_INPUTS[name][1]}{suffix}.safetensors"
            pose = view_pose(digest, view) if view else None
            out[name] = cached_tensors(
                entry, (name,), lambda n=name, p=pose: nerf_inputs(load_nerf(nerf_file), [n], p)
            )[name]
    return out


def collate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One batch of inputs from the inputs of several NeRFs: graphs into a PyG `Batch`, others stacked."""
    out: dict[str, Any] = {}
    for name in rows[0]:
        values = [r[name] for r in rows]
        out[name] = Batch.from_data_list(values) if name == "graph" else torch.stack(values)
    return out


def to_device(inputs: dict[str, Any], device: str | torch.device) -> dict[str, Any]:
    return {k: v.to(device) for k, v in inputs.items()}

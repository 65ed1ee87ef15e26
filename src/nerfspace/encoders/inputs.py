"""The inputs of the encoder parts, built only when a part reads them: ``graph`` (the parameter graph,
a PyG `Data`) and ``field`` (the field at the probe points, [N_PROBES, 4]). A zoo caches them on disk by
the NeRF file's content hash (`cached_inputs`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import Batch

from nerfspace.cache import cached_tensors, file_hash
from nerfspace.graphs import nerf_to_graph
from nerfspace.graphs.cache import cached_graph
from nerfspace.probe import field_probe, nerf_field
from nerfspace.zoo.storage import NeRF, load_nerf

FIELD_VERSION = 1  # bump when the field input changes, so caches of older ones are not reused

BUILDERS: dict[str, Callable[[NeRF], Any]] = {
    "graph": lambda nerf: nerf_to_graph(nerf.spec, nerf.params, nerf.occupancy),
    "field": lambda nerf: field_probe(nerf_field(nerf)),
}


def nerf_inputs(nerf: NeRF, needs: Sequence[str]) -> dict[str, Any]:
    """The inputs ``needs`` names, of one NeRF."""
    return {name: BUILDERS[name](nerf) for name in needs}


def cached_inputs(nerf_file: Path, cache_dir: Path, needs: Sequence[str], digest: str | None = None) -> dict:
    """The inputs ``needs`` names, of a NeRF file, from ``cache_dir`` when present, else built and cached."""
    digest = digest or file_hash(nerf_file)
    out: dict[str, Any] = {}
    if "graph" in needs:
        out["graph"] = cached_graph(nerf_file, cache_dir, digest)
    if "field" in needs:
        entry = Path(cache_dir) / f"{digest}.field-v{FIELD_VERSION}.safetensors"
        out["field"] = cached_tensors(
            entry, ("field",), lambda: nerf_inputs(load_nerf(nerf_file), ["field"])
        )["field"]
    return out


def collate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One batch of inputs from the inputs of several NeRFs: graphs into a PyG `Batch`, fields stacked."""
    out: dict[str, Any] = {}
    for name in rows[0]:
        values = [r[name] for r in rows]
        out[name] = Batch.from_data_list(values) if name == "graph" else torch.stack(values)
    return out


def to_device(inputs: dict[str, Any], device: str | torch.device) -> dict[str, Any]:
    return {k: v.to(device) for k, v in inputs.items()}

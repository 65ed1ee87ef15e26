"""Parameter graphs cached on disk by the NeRF file's content hash (`nerfspace.cache`): training reads
every graph each epoch, and a cached one skips loading and validating the NeRF file."""

from __future__ import annotations

from pathlib import Path

from torch_geometric.data import Data

from nerfspace.cache import cached_tensors, file_hash
from nerfspace.graphs import nerf_to_graph
from nerfspace.zoo.storage import load_nerf

GRAPH_KEYS = ("x", "edge_index", "edge_attr", "probe")
GRAPH_VERSION = 5  # bump when a graph's features change, so caches of older graphs are not reused


def cached_graph(nerf_file: Path, cache_dir: Path, digest: str | None = None) -> Data:
    """The parameter graph of ``nerf_file``, from ``cache_dir`` when present, else built and cached."""

    def build():
        nerf = load_nerf(nerf_file)
        g = nerf_to_graph(nerf.spec, nerf.params, nerf.occupancy)
        return {k: g[k] for k in GRAPH_KEYS}

    entry = Path(cache_dir) / f"{digest or file_hash(nerf_file)}.graph-v{GRAPH_VERSION}.safetensors"
    t = cached_tensors(entry, GRAPH_KEYS, build)
    return Data(**t, num_nodes=t["x"].shape[0])

"""On-disk cache of parameter graphs, keyed by the NeRF file's content hash, written atomically.

Training reads each NeRF's graph every epoch; building it is cheap but loading and validating the
NeRF file is not free, so a cached graph skips both. A stale or damaged entry is rebuilt.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch_geometric.data import Data

from nerfspace.atomic import atomic_write_bytes
from nerfspace.graphs import nerf_to_graph
from nerfspace.zoo.storage import load_nerf

GRAPH_KEYS = ("x", "edge_index", "edge_attr", "probe")


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cached_graph(nerf_file: Path, cache_dir: Path, digest: str | None = None) -> Data:
    """The parameter graph of ``nerf_file``, from ``cache_dir`` when present, else built and cached."""
    digest = digest or file_hash(nerf_file)
    entry = Path(cache_dir) / f"{digest}.graph.safetensors"
    if entry.exists():
        try:
            t = load_file(entry)
            if set(t) == set(GRAPH_KEYS):
                return Data(**t, num_nodes=t["x"].shape[0])
        except (SafetensorError, OSError, KeyError):
            pass  # damaged: rebuilt below (as is an entry of an older layout)
    nerf = load_nerf(nerf_file)
    g = nerf_to_graph(nerf.spec, nerf.params)
    entry.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(entry, save({k: g[k] for k in GRAPH_KEYS}))
    return g

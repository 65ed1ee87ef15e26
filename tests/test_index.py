"""FAISS indexes at scale: shard folders, factory strings, recall tuned against exact search."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest
import torch

from helpers import one_error_line, run
from nerfspace.embeddings import (
    SHARD_LIST,
    Embeddings,
    open_embeddings,
    save_embeddings,
    shard_file,
    write_shard_list,
)
from nerfspace.errors import InputError
from nerfspace.evaluation.retrieval import (
    IndexConfig,
    build_index,
    build_index_file,
    exact_search,
    load_gallery,
)
from nerfspace.index import EmbeddingIndex, default_factory, unit

DIM = 16


def _clustered(rows: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(20, DIM, generator=g)
    return centres[torch.randint(0, 20, (rows,), generator=g)] + 0.3 * torch.randn(rows, DIM, generator=g)


def _shards(folder, sizes=(300, 250, 350)):
    """A shard folder of clustered rows, and all its rows as one tensor (for checking)."""
    folder.mkdir()
    shards, blocks, offset = [], [], 0
    for i, n in enumerate(sizes):
        x = _clustered(n, seed=i)
        items = [
            {"object": f"o{offset + r}", "category": "c", "preset": "mlp", "split": "", "file": ""}
            for r in range(n)
        ]
        save_embeddings(shard_file(folder, i), Embeddings(x, items, {"embed_dim": DIM}, "0" * 64))
        shards.append((shard_file(folder, i), n))
        blocks.append(x)
        offset += n
    write_shard_list(folder, shards, {"embed_dim": DIM}, "0" * 64, DIM)
    return torch.cat(blocks)


def test_default_factory_is_exact_up_to_100k_rows_then_ivf():
    assert default_factory(676) == default_factory(100_000) == "Flat"
    assert default_factory(1_000_000) == "IVF4096,Flat"


def test_a_shard_folder_reads_like_one_array(tmp_path):
    x = _shards(tmp_path / "g")
    stored = open_embeddings(tmp_path / "g")
    assert len(stored) == 900 and stored.dim == DIM and len(stored.shards) == 3
    rows = [899, 0, 300, 299, 551]  # across shards, in any order
    assert torch.equal(stored.vectors(rows), x[rows])
    assert [it["object"] for it in stored.items(rows)] == [f"o{r}" for r in rows]
    scores, found = exact_search(stored, x[:5], 7)
    s = torch.from_numpy(unit(x[:5])) @ torch.from_numpy(unit(x)).T
    top = s.topk(7, dim=1)
    assert np.allclose(scores, top.values.numpy(), atol=1e-5)
    assert (found[:, 0] == np.arange(5)).all()  # each row finds itself first


def test_index_build_reaches_the_target_recall_and_stores_its_knob(tmp_path):
    _shards(tmp_path / "g")
    path, report = build_index_file(tmp_path / "g", IndexConfig("IVF32,Flat", target_recall=0.9, queries=200))
    assert path == tmp_path / "g" / "index.faiss"
    assert report.parameter == "nprobe" and report.trained_on == 900 and report.recall >= 0.9
    index, stored = load_gallery(path)  # the stored index is used: its tuned nprobe came with it
    assert faiss.extract_index_ivf(index.index).nprobe == report.value and index.size == len(stored)
    same = build_index_file(tmp_path / "g", IndexConfig("IVF32,Flat", target_recall=0.9, queries=200))[0]
    assert same.read_bytes() == path.read_bytes()  # same seed, same bytes

    # a compressed index that cannot reach the target says so, its knob where recall stopped rising
    low_index, low = build_index(
        open_embeddings(tmp_path / "g"), IndexConfig("IVF4,PQ2x4", target_recall=1.0)
    )
    assert low.recall < 1.0 and faiss.extract_index_ivf(low_index.index).nprobe == low.value <= 4


def test_hnsw_tunes_ef_search(tmp_path):
    x = _shards(tmp_path / "g")
    index, report = build_index(open_embeddings(tmp_path / "g"), IndexConfig("HNSW8", queries=100))
    assert report.parameter == "efSearch" and report.recall >= 0.95
    assert index.search(x[:3], 1)[1][:, 0].tolist() == [0, 1, 2]


def test_a_shard_folder_that_changed_or_lies_is_refused(tmp_path):
    _shards(tmp_path / "g")
    listing = json.loads((tmp_path / "g" / SHARD_LIST).read_text())

    def refused(change, match):
        bad = json.loads(json.dumps(listing))
        change(bad)
        (tmp_path / "g" / SHARD_LIST).write_text(json.dumps(bad))
        with pytest.raises(InputError, match=match):
            open_embeddings(tmp_path / "g")

    refused(lambda m: m["shards"][0].__setitem__("file", "../g.safetensors"), "not one nerfspace writes")
    refused(lambda m: m["shards"][1].__setitem__("rows", 250.0), "positive integer")
    refused(lambda m: m["shards"][1].__setitem__("sha256", "0" * 64), "changed since")
    refused(lambda m: m.__setitem__("shards", []), "not a nerfspace shard list")
    refused(lambda m: m.__setitem__("dim", "16"), "not a nerfspace shard list")
    (tmp_path / "g" / SHARD_LIST).write_text(json.dumps(listing))
    listing["shards"][2]["rows"] = 349  # a listing whose rows disagree with its shard
    (tmp_path / "g" / SHARD_LIST).write_text(json.dumps(listing))
    with pytest.raises(InputError, match="disagrees"):
        list(open_embeddings(tmp_path / "g").blocks())
    (tmp_path / "g" / SHARD_LIST).unlink()
    with pytest.raises(InputError, match="cut short"):
        open_embeddings(tmp_path / "g")


def test_bad_factories_and_settings_are_one_clear_error(tmp_path, capsys):
    _shards(tmp_path / "g")
    assert "could not parse" in one_error_line(
        capsys, "index", "build", tmp_path / "g", "--factory", "Bogus9"
    )
    assert "cannot train" in one_error_line(
        capsys, "index", "build", tmp_path / "g", "--factory", "IVF5000,Flat"
    )
    assert "--target-recall" in one_error_line(
        capsys, "index", "build", tmp_path / "g", "--target-recall", "0"
    )
    assert "--queries" in one_error_line(capsys, "index", "build", tmp_path / "g", "--queries", "0")
    assert not (tmp_path / "g" / "index.faiss").exists()
    code, out, _ = run(capsys, "index", "build", tmp_path / "g", "--factory", "IVF8,Flat", "--json")
    assert code == 0 and json.loads(out)["factory"] == "IVF8,Flat"


def test_an_in_memory_index_keeps_the_flat_default_for_small_galleries():
    x = _clustered(50, seed=3)
    index = EmbeddingIndex.build(x)
    assert isinstance(index.index, faiss.IndexFlat) and index.search_parameter is None
    assert index.index.metric_type == faiss.METRIC_INNER_PRODUCT
    assert index.search(x[:1], 1)[1][0, 0] == 0

"""Reliability round two (issue 19): stale or poisoned state, bad hyper-parameters and file modes end in
one clear error or a correct answer, never a wrong answer with exit 0. A corpus that keeps growing."""

from __future__ import annotations

import math
import os

import pytest
import torch

from helpers import one_error_line
from nerfspace.atomic import atomic_write_bytes
from nerfspace.cli import main
from nerfspace.embeddings import FORMAT, Embeddings, load_embeddings, save_embeddings
from nerfspace.errors import InputError, NonFiniteError
from nerfspace.evaluation.retrieval import build_index_file, load_gallery
from nerfspace.index import EmbeddingIndex
from nerfspace.tagged import write_tagged
from nerfspace.training.trainer import TrainConfig

ITEM = {"object": "car_0000", "category": "car", "preset": "mlp", "split": "test", "file": "x.safetensors"}


def _emb(vectors: torch.Tensor) -> Embeddings:
    items = [{**ITEM, "object": f"car_{i:04d}"} for i in range(len(vectors))]
    return Embeddings(vectors, items, {"embed_dim": vectors.shape[1]}, "0" * 64)


def test_non_finite_embeddings_are_refused_at_write_and_at_read(tmp_path, capsys):
    bad = torch.randn(4, 8)
    bad[2, 3] = math.nan
    with pytest.raises(NonFiniteError):
        save_embeddings(tmp_path / "e.safetensors", _emb(bad))
    assert not (tmp_path / "e.safetensors").exists()
    meta = {"encoder": {}, "checkpoint": "0" * 64, "items": _emb(bad).items}
    write_tagged(tmp_path / "nan.safetensors", {"embeddings": bad}, FORMAT, meta)  # as a foreign tool would
    assert "NaN" in one_error_line(capsys, "index", "build", tmp_path / "nan.safetensors")


@pytest.mark.parametrize(
    "change",
    [
        lambda m, t: m["items"][1].pop("object"),
        lambda m, t: m["items"].pop(),
        lambda m, t: m["items"].__setitem__(0, "car"),
        lambda m, t: m.pop("checkpoint"),
        lambda m, t: t.__setitem__("embeddings", torch.arange(12).reshape(3, 4)),
        lambda m, t: t.__setitem__("embeddings", torch.zeros(12)),
    ],
)
def test_malformed_embeddings_files_are_one_clear_error(tmp_path, capsys, change):
    meta = {"encoder": {}, "checkpoint": "0" * 64, "items": _emb(torch.zeros(3, 4)).items}
    tensors = {"embeddings": torch.randn(3, 4)}
    change(meta, tensors)
    write_tagged(tmp_path / "e.safetensors", tensors, FORMAT, meta)
    with pytest.raises(InputError):
        load_embeddings(tmp_path / "e.safetensors")
    one_error_line(capsys, "index", "build", tmp_path / "e.safetensors")


def test_an_index_of_embeddings_that_changed_is_not_used(tmp_path):
    path = tmp_path / "g.safetensors"
    save_embeddings(path, _emb(torch.eye(6)))
    build_index_file(path)
    reversed_rows = torch.eye(6).flip(0)  # same shape, other content: the old index would answer wrongly
    save_embeddings(path, _emb(reversed_rows))
    index, stored = load_gallery(path.with_suffix(".faiss"))
    _, rows = index.search(stored.vectors([0]), 1)
    assert rows[0, 0] == 0  # row 0 finds itself in the new embeddings
    (tmp_path / "g.faiss").write_bytes(b"garbage")  # neither is a damaged index file used
    with pytest.raises(InputError):
        load_gallery(path)
    build_index_file(path)
    assert EmbeddingIndex.load(tmp_path / "g.faiss")[1] is not None


@pytest.mark.parametrize("lr", [math.inf, math.nan, 1e10, 0.0, -1e-3])
def test_learning_rates_out_of_range_are_refused_at_the_boundary(lr):
    with pytest.raises(InputError, match="--lr"):
        TrainConfig(lr=lr)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "f", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == mode


@pytest.mark.parametrize(
    "line", ["/03001627/aa01", "03001627/..", "../aa01", "03001627/./x", "03001627", "a/b/c", "03001627/a b"]
)
def test_split_file_lines_that_are_no_object_are_refused_naming_the_line(tmp_path, line):
    from nerfspace.interop.gmnerf_zoo import read_splits

    (tmp_path / "train.txt").write_text(f"03001627/ok01\n{line}\n")
    with pytest.raises(InputError, match="line 2"):
        read_splits(tmp_path)


def test_evaluation_of_too_few_test_nerfs_is_one_clear_error():
    from nerfspace.evaluation.evaluate import evaluate_embeddings, evaluate_space

    emb = _emb(torch.randn(2, 8))  # seen-architecture test NeRFs, but only two
    for fn in (evaluate_space, evaluate_embeddings):
        with pytest.raises(InputError, match="at least 3 test-split NeRFs"):
            fn(emb)


def test_a_second_build_of_a_folder_is_refused_while_the_first_runs(tmp_path, tiny_fit, capsys):
    import subprocess
    import sys

    from nerfspace.locks import folder_lock
    from nerfspace.zoo import ZooConfig, build_zoo

    cfg = ZooConfig(classes=("car",), objects_per_class=1, archs=("mlp",))
    with folder_lock(tmp_path / "zoo"):  # the first build, still running
        with pytest.raises(InputError, match=f"pid {os.getpid()}"):
            build_zoo(tmp_path / "zoo", cfg, fit_cfg=tiny_fit)
        one_error_line(
            capsys, "zoo", "build", tmp_path / "zoo", "--classes", "car", "-n", "1", "--archs", "mlp"
        )
    assert not (tmp_path / "zoo" / "manifest.json").exists()  # the refused build wrote nothing
    # an owner killed while holding the lock leaves it free: the kernel drops it with the process
    code = "import os, sys;"
    code += " from nerfspace.locks import folder_lock as f; f(sys.argv[1]).__enter__(); os._exit(9)"
    assert subprocess.run([sys.executable, "-c", code, str(tmp_path / "zoo")]).returncode == 9
    build_zoo(tmp_path / "zoo", cfg, fit_cfg=tiny_fit)
    assert (tmp_path / "zoo" / "manifest.json").exists()


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"bias": "false"}, "bias must be true or false"),
        ({"width": 32.0}, "width must be an integer"),
        ({"width": True}, "width must be an integer"),
        ({"hidden_layers": 10**6}, "hidden_layers must be in"),
        ({"width": -3}, "width must be in"),
        ({"n_freqs": "6"}, "n_freqs must be an integer"),
        ({"family": ["mlp"]}, "family must be a string"),
        ({"width": 4096, "hidden_layers": 64}, "parameters; the limit"),
        ({"x" * 5000: 1}, "unknown ArchSpec keys"),
    ],
)
def test_declared_specs_are_typed_and_capped_before_any_allocation(tmp_path, capsys, change, needle):
    import json

    from nerfspace.archs import get_preset

    spec = {**get_preset("mlp").to_dict(), **change}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    err = one_error_line(capsys, "zoo", "build", tmp_path / "zoo", "--archs", path, "--classes", "car")
    assert needle in err and not (tmp_path / "zoo").exists()


def test_a_huge_spec_file_is_refused_unread(tmp_path, capsys):
    path = tmp_path / "spec.json"
    path.write_text(" " * 100_000 + "{}")
    assert "larger than" in one_error_line(capsys, "zoo", "build", tmp_path / "zoo", "--archs", path)


def test_an_object_count_typo_is_refused_before_planning(tmp_path, capsys):
    err = one_error_line(capsys, "zoo", "build", tmp_path / "zoo", "-n", "1000000000")
    assert "<= 100000" in err and not (tmp_path / "zoo").exists()


def test_a_refused_build_leaves_the_users_files_alone(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    kept = [
        folder / ".draft.999999999.x.tmp",
        folder / ".nerfspace-tmp.a.999999999.x.tmp",
        folder / "notes.txt",
    ]
    for p in kept:
        p.write_text("the user's")
    assert "not empty" in one_error_line(capsys, "zoo", "build", folder, "--classes", "car", "-n", "1")
    assert all(p.read_text() == "the user's" for p in kept)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in kept)  # nothing added


def test_outputs_never_replace_inputs_or_products_without_overwrite(tmp_path, capsys):
    from nerfspace.archs import get_preset
    from nerfspace.fields import init_params
    from nerfspace.zoo import NeRF, load_nerf, save_nerf

    spec = get_preset("mlp")
    params = {n: t[0] for n, t in init_params(spec, 1, torch.Generator().manual_seed(0)).items()}
    nerf_file = tmp_path / "a.safetensors"
    save_nerf(nerf_file, NeRF(spec, params, torch.ones(8, 8, 8, dtype=torch.bool), {"psnr": "nan"}))
    before = nerf_file.read_bytes()
    one_error_line(capsys, "export", nerf_file, "--format", "torch", nerf_file, "--overwrite")
    one_error_line(capsys, "export", nerf_file, "--format", "gmnerf", tmp_path, "--overwrite")  # holds it
    assert nerf_file.read_bytes() == before
    pt = tmp_path / "a.pt"
    assert main(["export", str(nerf_file), "--format", "torch", str(pt)]) == 0
    product = pt.read_bytes()
    assert "--overwrite" in one_error_line(capsys, "export", nerf_file, "--format", "torch", pt)
    assert pt.read_bytes() == product
    assert main(["export", str(nerf_file), "--format", "torch", str(pt), "--overwrite"]) == 0
    one_error_line(capsys, "export", nerf_file, "--format", "gmnerf", pt)  # a file where a folder goes
    spec_file = tmp_path / "a.spec.json"
    back = tmp_path / "b.safetensors"
    one_error_line(capsys, "import", "torch", pt, "--spec", spec_file, pt)  # OUT is the input
    assert main(["import", "torch", str(pt), "--spec", str(spec_file), str(back)]) == 0
    assert "--overwrite" in one_error_line(capsys, "import", "torch", pt, "--spec", spec_file, back)
    assert load_nerf(back).spec == spec


MEMORY_CAP = 1_400_000_000  # address space of a child: the interpreter and torch (~1.1 GB) plus little more


@pytest.mark.parametrize(
    "make",
    [
        "torch.sparse_coo_tensor(torch.tensor([[0, 10**9], [0, 0], [0, 0]]), torch.ones(2), (96, 96, 96),"
        " check_invariants=False)",
        "torch.sparse_coo_tensor(torch.tensor([[0, -5], [0, 0], [0, 0]]), torch.ones(2), (96, 96, 96),"
        " check_invariants=False)",
        "torch.zeros(1).expand(2**31)",
        "{'a': [torch.zeros(1).expand(4096, 4096, 64)]}",
    ],
)
def test_hostile_tensors_in_pytorch_files_are_refused_before_torch_uses_them(tmp_path, make):
    import resource
    import subprocess
    import sys

    path = tmp_path / "grid.pth"
    torch.save(eval(make), path)  # noqa: S307 - the test's own expressions
    code = (
        "import sys, torch; from nerfspace.interop.torchfile import load_torch\n"
        "from nerfspace.interop.occupancy import grid_from_tensor\n"
        "try:\n    obj = load_torch(sys.argv[1]); grid_from_tensor(sys.argv[1], obj); print('accepted')\n"
        "except Exception as e:\n    print(type(e).__name__, e)"
    )

    def cap_memory():  # as `ulimit -v`: an allocation the file asks for beyond ~1 GB fails loudly
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=cap_memory,
    )
    assert done.returncode == 0, done.stderr[-500:]  # no native crash
    assert done.stdout.startswith("FileFormatError"), done.stdout


def test_train_into_a_file_is_one_clear_error(tmp_path):
    from nerfspace.training.trainer import train

    (tmp_path / "run").write_text("a file of the user's")
    with pytest.raises(InputError, match="not a folder"):
        train(tmp_path / "zoo", tmp_path / "run", TrainConfig(epochs=1))
    assert (tmp_path / "run").read_text() == "a file of the user's"


def test_embed_out_must_be_a_new_file_outside_the_inputs(tmp_path, capsys):
    zoo = tmp_path / "zoo"
    (zoo / "nerfs").mkdir(parents=True)
    (zoo / "manifest.json").write_text("{}")
    (tmp_path / "elsewhere").mkdir()
    err = one_error_line(capsys, "embed", tmp_path / "run", zoo, "--out", tmp_path / "elsewhere")
    assert "not a file" in err
    assert "input" in one_error_line(capsys, "embed", tmp_path / "run", zoo, "--out", tmp_path)  # holds them
    err = one_error_line(
        capsys, "embed", tmp_path / "run", zoo, "--out", zoo / "manifest.json", "--overwrite"
    )
    assert "input" in err and (zoo / "manifest.json").read_text() == "{}"


def _lying_safetensors(path, shape: list[int], meta: dict | None = None) -> None:
    """A safetensors file whose header declares one float32 tensor of ``shape`` over 16 bytes of data."""
    import json
    import struct

    n = 4
    for d in shape:
        n *= d
    header = {"x": {"dtype": "F32", "shape": shape, "data_offsets": [0, n]}}
    if meta is not None:
        header["__metadata__"] = {"nerfspace": json.dumps(meta)}
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"\0" * 16)


REASONS = {  # what each hostile input's error line names
    "nerf_huge_tensor": "input.safetensors",
    "embeddings_huge": "input.safetensors",
    "classifier_huge": "input.safetensors",
    "spec_huge_table": "hash_log2_size",
    "views_typo": "--views",
    "labels_huge": "more than 1000000 rows",
}


@pytest.mark.parametrize(
    "case",
    [
        "nerf_huge_tensor",
        "embeddings_huge",
        "classifier_huge",
        "spec_huge_table",
        "views_typo",
        "labels_huge",
    ],
)
def test_hostile_files_at_the_command_line_under_a_memory_cap(tmp_path, case):
    """Each ends with exit 2 and one short error line, the process capped at `MEMORY_CAP` (as `ulimit -v`)."""
    import json
    import resource
    import subprocess
    import sys

    from nerfspace.archs import get_preset

    f = tmp_path / "input.safetensors"
    if case == "nerf_huge_tensor":
        _lying_safetensors(f, [2**20, 2**20])
        argv = ["inspect", f]
    elif case == "embeddings_huge":
        _lying_safetensors(f, [2**31, 512], {"format": "nerfspace-embeddings/1"})
        argv = ["index", "build", f]
    elif case == "classifier_huge":
        emb = tmp_path / "emb.safetensors"
        save_embeddings(emb, _emb(torch.randn(4, 8)))
        _lying_safetensors(f, [2**30, 2**30], {"format": "nerfspace-class-means/1", "labels": [], "dim": 8})
        argv = ["classify", "predict", f, emb]
    elif case == "spec_huge_table":
        spec = {**get_preset("hash").to_dict(), "hash_log2_size": 40}
        f = tmp_path / "spec.json"
        f.write_text(json.dumps(spec))
        argv = ["zoo", "build", tmp_path / "zoo", "--archs", f, "--classes", "car", "-n", "1"]
    elif case == "views_typo":
        argv = [
            "train",
            tmp_path,
            "--out",
            tmp_path / "run",
            "--preset",
            "invariant",
            "--views",
            "10000000000",
        ]
    else:  # a labels CSV far over its row cap
        emb = tmp_path / "emb.safetensors"
        save_embeddings(emb, _emb(torch.randn(4, 8)))
        f = tmp_path / "labels.csv"
        f.write_text("object,label\n" + "a,b\n" * 1_000_001)
        argv = ["classify", "fit", emb, "--labels", f, "--out", tmp_path / "clf.safetensors"]

    def cap_memory():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    done = subprocess.run(
        [sys.executable, "-m", "nerfspace.cli", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=cap_memory,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-800:]
    assert len(lines) == 1 and lines[0].startswith("error:") and len(lines[0]) < 300, lines
    assert REASONS[case] in lines[0], lines[0]

"""kill -9 at any moment: real subprocesses are killed mid-run and restarted. A restart completes, files
finished before the kill are untouched (same bytes, same inode: not redone), no temp file is left and
every file loads."""

import csv
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from safetensors.torch import load_file
from tests.conftest import TINY_FIT

import nerfspace.training.trainer as trainer_mod
from nerfspace.atomic import atomic_write_bytes, sweep_temps
from nerfspace.checkpoint import load_resume, load_weights
from nerfspace.cli import main
from nerfspace.embeddings import load_embeddings
from nerfspace.training.trainer import TrainConfig, train
from nerfspace.zoo import ZooConfig, build_zoo, load_nerf, zoo_info

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def start(*args: str) -> subprocess.Popen:
    """A nerfspace command (or ``-c SCRIPT``) in a new Python process."""
    argv = list(args) if args[0] == "-c" else ["-m", "nerfspace.cli", *args]
    return subprocess.Popen(
        [sys.executable, *argv], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def kill_when(proc: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds; fail if it ends first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the process ended before it could be killed: {proc.stderr.read().decode()[-2000:]}")
        assert time.monotonic() < deadline, "timed out waiting for the process"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def snapshot(files) -> dict[Path, tuple[bytes, int, int]]:
    """Bytes, inode and mtime of files: a file rewritten (atomically or not) changes inode or mtime."""
    return {p: (p.read_bytes(), p.stat().st_ino, p.stat().st_mtime_ns) for p in files}


def temps(*folders: Path) -> list[Path]:
    return [p for f in folders for p in f.rglob("*.tmp")]


def test_sweep_removes_temps_of_dead_writers_only(tmp_path):
    atomic_write_bytes(tmp_path / "a.json", b"{}")
    dead = tmp_path / ".nerfspace-tmp.a.json.999999999.abc123.tmp"  # no process has this pid
    live = tmp_path / f".nerfspace-tmp.a.json.{os.getppid()}.abc123.tmp"
    users = [tmp_path / ".a.json.999999999.abc123.tmp", tmp_path / ".notes.tmp"]  # the user's own files
    for p in (dead, live, *users):
        p.write_bytes(b"partial")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / dead.name).write_bytes(b"not ours to judge")
    (tmp_path / "linked").symlink_to(outside)  # a symlinked folder is not followed
    assert sweep_temps(tmp_path) == 1 and sweep_temps(tmp_path / "linked") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, "a.json", "elsewhere", "linked", *(u.name for u in users)]
    )
    assert (outside / dead.name).exists()


def test_zoo_build_killed_mid_run_resumes(tmp_path):
    out = tmp_path / "zoo"
    fit_cfg = replace(TINY_FIT, batch=1)
    cfg = ZooConfig(classes=("chair",), objects_per_class=3, archs=("mlp", "hash"))
    script = (
        "from dataclasses import replace\n"
        "from tests.conftest import TINY_FIT\n"
        "from nerfspace.zoo import ZooConfig, build_zoo\n"
        f"build_zoo({str(out)!r}, ZooConfig(classes=('chair',), objects_per_class=3, archs=('mlp', 'hash')),"
        " fit_cfg=replace(TINY_FIT, batch=1))\n"
    )
    proc = start("-c", script)
    kill_when(proc, lambda: any((out / "nerfs").glob("*/*.safetensors")))
    before = snapshot((out / "nerfs").glob("*/*.safetensors"))
    assert 1 <= len(before) < 6

    build_zoo(out, cfg, fit_cfg=fit_cfg)  # the restart
    nerfs = sorted((out / "nerfs").glob("*/*.safetensors"))
    assert len(nerfs) == 6 and zoo_info(out)["complete"]
    assert snapshot(before) == before  # finished before the kill: not redone
    assert temps(out) == []
    for p in nerfs:
        load_nerf(p)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """2 categories x 3 objects x (mlp, hash): 1 training, 1 validation and 1 test object a category."""
    out = tmp_path_factory.mktemp("zoo")
    build_zoo(
        out, ZooConfig(classes=("chair", "car"), objects_per_class=3, archs=("mlp", "hash")), fit_cfg=TINY_FIT
    )
    return out


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def check_run(run: Path, epochs: int) -> None:
    """A finished run: every step and epoch logged once and complete, checkpoints of the last epoch."""
    steps = read_csv(run / "log.csv")
    assert [int(r["step"]) for r in steps] == list(range(1, epochs + 1))  # one step an epoch here
    assert all(None not in r.values() and r["loss"] for r in steps)
    val = read_csv(run / "validation.csv")
    assert sorted({int(r["epoch"]) for r in val}) == list(range(1, epochs + 1))
    assert len(val) == len({(r["epoch"], r["metric"]) for r in val})
    ckpt = run / "checkpoints"
    assert load_weights(ckpt / "last.safetensors")[1]["epoch"] == epochs
    assert load_resume(ckpt / "resume.pt")["epoch"] == epochs
    best = load_weights(ckpt / "best.safetensors")[1]
    assert (
        trainer_mod._score(TrainConfig(loss="l_con"), best["metrics"])
        == load_resume(ckpt / "resume.pt")["best"]
    )
    assert temps(run) == []


def test_training_and_graph_caching_killed_mid_run_resume(zoo, tmp_path):
    run = tmp_path / "run"
    args = ["train", str(zoo), "--out", str(run), "--loss", "l_con", "--epochs", "6"]
    # 1. killed while caching graphs (in the zoo's cache folder, empty until now)
    proc = start(*args)
    kill_when(proc, lambda: any((zoo / "cache").glob("*.graph-v*.safetensors")))
    cached = snapshot((zoo / "cache").glob("*.graph-v*.safetensors"))
    # 2. restarted, killed again once an epoch is committed
    proc = start(*args, *(["--resume"] if (run / "checkpoints" / "resume.pt").exists() else []))
    kill_when(proc, lambda: (run / "checkpoints" / "resume.pt").exists())
    # 3. restarted to the end
    assert main([*args, "--resume"]) == 0
    assert snapshot(cached) == cached  # graphs cached before the first kill were not rebuilt
    assert len(list((zoo / "cache").glob("*.graph-v*.safetensors"))) == 8  # train and val NeRFs
    for p in (zoo / "cache").glob("*.safetensors"):
        assert load_file(p)
    assert temps(zoo / "cache") == []
    check_run(run, 6)


def test_a_kill_between_checkpoint_writes_keeps_the_run_consistent(zoo, tmp_path, monkeypatch):
    run = tmp_path / "run"
    cfg = TrainConfig(loss="l_con", epochs=4)
    real = trainer_mod.save_resume

    def killed_at_epoch_3(path, state):
        if state["epoch"] == 3:
            raise KeyboardInterrupt  # best and last of epoch 3 are written, resume.pt is not
        real(path, state)

    monkeypatch.setattr(trainer_mod, "save_resume", killed_at_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(zoo, run, cfg)
    assert load_weights(run / "checkpoints" / "last.safetensors")[1]["epoch"] == 3
    with open(run / "log.csv", "a") as f:
        f.write("3,")  # a row cut short by the kill
    (run / "checkpoints" / ".nerfspace-tmp.best.safetensors.999999999.x.tmp").write_bytes(b"partial")
    monkeypatch.undo()
    train(zoo, run, cfg, resume=True)
    check_run(run, 4)


def test_embed_killed_mid_run_leaves_no_partial_file(zoo, tmp_path):
    run = tmp_path / "run"
    train(zoo, run, TrainConfig(loss="l_con", epochs=1))
    fresh = tmp_path / "zoo"  # the same zoo with an empty graph cache
    for p in [zoo / "manifest.json", *(zoo / "nerfs").glob("*/*.safetensors")]:
        (fresh / p.relative_to(zoo)).parent.mkdir(parents=True, exist_ok=True)
        (fresh / p.relative_to(zoo)).write_bytes(p.read_bytes())
    out = tmp_path / "emb.safetensors"
    args = ["embed", str(run), str(fresh), "--out", str(out)]
    proc = start(*args)
    kill_when(proc, lambda: any((fresh / "cache").glob("*.graph-v*.safetensors")))
    cached = snapshot((fresh / "cache").glob("*.graph-v*.safetensors"))
    (tmp_path / ".nerfspace-tmp.emb.safetensors.999999999.x.tmp").write_bytes(b"partial")  # killed mid-write
    assert not out.exists() or load_embeddings(out).vectors.shape[0] == 12
    assert main(args) == 0
    assert load_embeddings(out).vectors.shape[0] == 12
    assert snapshot(cached) == cached
    assert temps(tmp_path) == []


def _children(pid: int) -> list[int]:
    """Pids of the live spawn workers whose parent is ``pid``."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and b"spawn_main" in cmdline:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")
def test_a_killed_parallel_build_leaves_no_worker_running(tmp_path):
    out = tmp_path / "zoo"
    proc = start(
        "zoo",
        "build",
        str(out),
        "--classes",
        "chair,car",
        "-n",
        "2",
        "--archs",
        "mlp,hash",
        "--steps",
        "400",
        "--workers",
        "2",
    )
    deadline = time.monotonic() + 120
    while len(workers := _children(proc.pid)) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "the build did not start its workers"
        time.sleep(0.1)
    time.sleep(1.0)  # the workers are fitting
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers)  # before: they fitted on, writing into the unlocked folder

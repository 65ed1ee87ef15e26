"""Executors: the same zoo bytes inline, in local processes and on Ray; a Ray worker killed mid-build
loses nothing; bad executor settings are one clear error."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from tests.test_crash_safety import start

from helpers import one_error_line, run
from nerfspace.errors import InputError
from nerfspace.executors import Executor

ZOO = ("--classes", "chair,car", "-n", "2", "--archs", "mlp,hash", "--steps", "20", "--workers", "2")


def _bytes(zoo: Path) -> dict:
    return {p.relative_to(zoo): p.read_bytes() for p in (zoo / "nerfs").glob("*/*.safetensors")}


def _build(zoo: Path, *extra: str) -> None:
    proc = start("zoo", "build", str(zoo), *ZOO, *extra)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]


@pytest.mark.parametrize(
    "kind, workers, address, match",
    [
        ("spark", 1, None, "--executor"),
        ("local", 0, None, "--workers"),
        ("local", 2, "127.0.0.1:6379", "--ray-address needs --executor ray"),
    ],
)
def test_bad_executor_settings_are_refused(kind, workers, address, match):
    with pytest.raises(InputError, match=match):
        Executor(kind, workers, address)


def test_a_ray_address_that_does_not_answer_is_one_clear_error(tmp_path, capsys):
    pytest.importorskip("ray")
    for address, match in (("127.0.0.1:1", "nothing answers"), ("nowhere", "host:port")):
        err = one_error_line(
            capsys, "zoo", "build", tmp_path / "z", *ZOO, "--executor", "ray", "--ray-address", address
        )
        assert match in err
    assert not (tmp_path / "z" / "nerfs").exists()


def _ray_workers_fitting() -> list[int]:
    """Pids of Ray worker processes running a zoo batch (Ray titles them ray::<task>)."""
    pids = []
    for cmd in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmd.read_bytes().startswith(b"ray::_fit_batch"):
                pids.append(int(cmd.parent.name))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")
def test_ray_writes_the_local_bytes_even_when_a_worker_is_killed(tmp_path):
    pytest.importorskip("ray")
    _build(tmp_path / "local")
    proc = start("zoo", "build", str(tmp_path / "ray"), *ZOO, "--executor", "ray")
    deadline, killed = time.monotonic() + 300, None
    while killed is None:
        assert proc.poll() is None and time.monotonic() < deadline, "no Ray worker ever fitted a batch"
        if pids := _ray_workers_fitting():
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]  # the killed worker's task ran again
    local, ray = _bytes(tmp_path / "local"), _bytes(tmp_path / "ray")
    assert len(local) == 8 and ray == local


def test_ray_embeds_the_local_shard_bytes(tmp_path, capsys):
    pytest.importorskip("ray")
    from nerfspace.demo import shipped

    s = next(s for s in shipped() if s.track == "independent")
    embed = ("embed", s.encoder, s.zoo, "--shard-rows", "200", "--workers", "2")
    assert run(capsys, *embed, "--out", tmp_path / "local")[0] == 0
    assert run(capsys, *embed, "--out", tmp_path / "ray", "--executor", "ray")[0] == 0
    shards = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert len(shards) == 5  # 676 rows: 4 shards and the list
    for name in shards:
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    err = one_error_line(
        capsys, "embed", s.encoder, s.zoo, "--out", tmp_path / "e.safetensors", "--workers", "2"
    )
    assert "--shard-rows" in err

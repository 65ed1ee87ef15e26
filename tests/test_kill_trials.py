"""kill -9 at random moments of `zoo build`, `train` and `embed` (20 trials): every restart ends with the
same bytes as a run that was never killed. Slow (about 10 minutes on 2 cores): `pytest -m slow`."""

import json
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from tests.test_crash_safety import read_csv, start, temps

from nerfspace.embeddings import load_embeddings

pytestmark = pytest.mark.slow

ZOO_ARGS = ["--classes", "chair,car", "-n", "2", "--archs", "mlp,hash", "--steps", "20"]
TRIALS = {"zoo": 8, "train": 6, "embed": 6}


def run_to_end(*args: str) -> float:
    """Run a nerfspace command to its end (exit 0); its wall seconds."""
    t0 = time.monotonic()
    proc = start(*args)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]
    return time.monotonic() - t0


def kill_after(seconds: float, *args: str) -> bool:
    """Start a nerfspace command and SIGKILL it after ``seconds``; False if it ended first (exit 0)."""
    proc = start(*args)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return True
    finally:
        proc.stderr.close()
    assert proc.returncode == 0
    return False


def zoo_bytes(zoo: Path) -> dict:
    files = {p.relative_to(zoo): p.read_bytes() for p in (zoo / "nerfs").glob("*/*.safetensors")}
    return {"nerfs": files, "manifest": json.loads((zoo / "manifest.json").read_text())}


def run_bytes(run: Path) -> dict:
    ckpt = run / "checkpoints"
    steps = [{k: v for k, v in r.items() if k != "seconds"} for r in read_csv(run / "log.csv")]
    return {
        "best": (ckpt / "best.safetensors").read_bytes(),
        "last": (ckpt / "last.safetensors").read_bytes(),
        "log": steps,
        "validation": read_csv(run / "validation.csv"),
    }


def emb_bytes(emb: Path, zoo: Path) -> dict:
    """The vectors' bytes and the items, their files relative to the zoo (each trial has its own zoo)."""
    e = load_embeddings(emb)
    items = [{**it, "file": str(Path(it["file"]).relative_to(zoo))} for it in e.items]
    return {"vectors": e.vectors.numpy().tobytes(), "items": items, "encoder": e.encoder}


def test_kill_9_at_random_moments_then_restart_gives_the_bytes_of_an_uninterrupted_run(tmp_path):
    rng = random.Random(0)
    ref_zoo, ref_run, ref_emb = tmp_path / "zoo", tmp_path / "run", tmp_path / "emb.safetensors"
    train_args = ["--loss", "l_con", "--preset", "invariant", "--views", "1", "--epochs", "6"]
    took = {
        "zoo": run_to_end("zoo", "build", str(ref_zoo), *ZOO_ARGS),
        "train": run_to_end("train", str(ref_zoo), "--out", str(ref_run), *train_args),
    }
    shutil.rmtree(ref_zoo / "cache")  # embed builds its inputs again, as on a fresh zoo
    took["embed"] = run_to_end("embed", str(ref_run), str(ref_zoo), "--out", str(ref_emb))
    expected = {"zoo": zoo_bytes(ref_zoo), "train": run_bytes(ref_run), "embed": emb_bytes(ref_emb, ref_zoo)}

    killed = 0
    for stage, trials in TRIALS.items():
        for trial in range(trials):
            out = tmp_path / f"{stage}{trial}"
            when = rng.uniform(0.5, 0.8 * took[stage])
            if stage == "zoo":
                args = ["zoo", "build", str(out), *ZOO_ARGS]
                killed += kill_after(when, *args)
                run_to_end(*args)
                assert zoo_bytes(out) == expected["zoo"], f"zoo build killed after {when:.1f} s"
            elif stage == "train":
                zoo = tmp_path / f"zoo_for_{out.name}"
                shutil.copytree(ref_zoo, zoo)  # each trial fills its own cache
                args = ["train", str(zoo), "--out", str(out), *train_args]
                killed += kill_after(when, *args)
                resume = ["--resume"] if (out / "checkpoints" / "resume.pt").exists() else []
                run_to_end(*args, *resume)
                assert run_bytes(out) == expected["train"], f"train killed after {when:.1f} s"
            else:
                zoo = tmp_path / f"zoo_for_{out.name}"
                shutil.copytree(ref_zoo, zoo, ignore=shutil.ignore_patterns("cache"))
                emb = out.with_suffix(".safetensors")
                args = ["embed", str(ref_run), str(zoo), "--out", str(emb)]
                if kill_after(when, *args):
                    killed += 1
                    if not emb.exists():  # a file written before the kill is whole (atomic) and kept
                        run_to_end(*args)
                assert emb_bytes(emb, zoo) == expected["embed"], f"embed killed after {when:.1f} s"
            assert temps(tmp_path) == []
    assert killed >= 18  # a trial whose command ended before its kill time tests nothing

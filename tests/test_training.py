import csv
from dataclasses import replace

import pytest
import torch

from nerfspace.cli import main
from nerfspace.embeddings import load_embeddings
from nerfspace.errors import InputError
from nerfspace.inference import Encoder
from nerfspace.training.trainer import TrainConfig, train, train_config
from nerfspace.zoo import ZooConfig, build_zoo
from nerfspace.zoo.items import zoo_items


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    from tests.conftest import TINY_FIT

    out = tmp_path_factory.mktemp("zoo")
    fit_cfg = replace(TINY_FIT, steps=60, image_size=16, samples_per_diagonal=48, occ_res=16)
    cfg = ZooConfig(classes=("chair", "car"), objects_per_class=4, archs=("mlp", "hash"))
    build_zoo(out, cfg, fit_cfg=fit_cfg)
    return out


def test_lrc_training_learns_and_resumes(zoo, tmp_path):
    run = tmp_path / "run"
    cfg = TrainConfig(loss="l_rec_con", epochs=15, lr=3e-3)
    summary = train(zoo, run, cfg)
    rows = summary["history"]
    assert rows[-1]["psnr"] > rows[0]["psnr"] + 0.5  # validation PSNR rises
    with open(run / "log.csv") as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    assert len(losses) == 15  # 4 training objects, 4 per step: one step an epoch
    assert sum(losses[-4:]) < sum(losses[:4])  # training loss falls

    # same object in two architectures ends closer than two different objects
    encoder = Encoder.load(run / "checkpoints" / "last.safetensors")
    items = [it for it in zoo_items(zoo) if it.split == "train"]
    emb = encoder.embed([zoo])
    rows = {it["file"]: i for i, it in enumerate(emb.items)}
    z = emb.vectors[[rows[str(it.file)] for it in items]]
    z = torch.nn.functional.normalize(z, dim=1)
    cos = z @ z.T
    same = torch.tensor([[a.object == b.object for b in items] for a in items])
    cross = torch.tensor([[a.preset != b.preset for b in items] for a in items])
    assert cos[same & cross].mean() > cos[~same & cross].mean() + 0.2  # measured 0.98 vs 0.37

    # resuming a finished run for more epochs continues from its checkpoint
    more = train(zoo, run, replace(cfg, epochs=16), resume=True)
    assert [h["epoch"] for h in more["history"]] == [16]
    with open(run / "log.csv") as f:
        assert len(list(csv.DictReader(f))) == 16


def test_invariant_training_reads_turned_views_and_trains_both_objectives(zoo, tmp_path):
    run = tmp_path / "run"
    cfg = train_config("l_con", encoder="invariant", epochs=12, views=1, objects_per_batch=4)
    assert cfg.views == 1 and cfg.encoder.needs == ("invariant",)
    with pytest.raises(InputError, match="reads none"):
        train_config("l_con", encoder="paper", views=2)
    with pytest.raises(InputError, match="--views"):
        train_config("l_con", encoder="invariant", views=-1)
    train(zoo, run, cfg)
    with open(run / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert all(r["l_cat"] and r["l_con"] and not r["l_rec"] for r in rows)
    con = [float(r["l_con"]) for r in rows]
    cat = [float(r["l_cat"]) for r in rows]
    assert sum(con[-3:]) < sum(con[:3]) and sum(cat[-3:]) < sum(cat[:3])
    # every training NeRF was read in its stored view and one turned view, the others only as stored
    turned = list((zoo / "cache").glob("*.invariant-v1.view1.safetensors"))
    plain = list((zoo / "cache").glob("*.invariant-v1.safetensors"))
    trained = [it for it in zoo_items(zoo) if it.split in ("train", "val")]
    assert len(turned) == sum(it.split == "train" for it in trained) and len(plain) == len(trained)
    emb = Encoder.load(run).embed([zoo])
    assert emb.vectors.shape == (16, 512)
    assert torch.allclose(emb.vectors[:, :256].norm(dim=1), torch.ones(16), atol=1e-4)
    assert emb.vectors.std(0).min() > 0  # no entry constant over the zoo


def test_the_decoder_reads_every_part_while_the_contrastive_loss_reads_the_object_part(zoo, tmp_path):
    cfg = train_config("l_rec_con", encoder="invariant", epochs=1, views=0, objects_per_batch=4)
    history = train(zoo, tmp_path / "run", cfg)["history"]
    assert {"psnr", "siglip", "recall@1"} <= set(history[0])


def test_a_resumed_run_with_dropout_writes_the_same_checkpoint_as_an_uninterrupted_one(zoo, tmp_path):
    cfg = train_config("l_con", encoder="invariant", epochs=3, views=1, objects_per_batch=4)
    train(zoo, tmp_path / "whole", cfg)
    train(zoo, tmp_path / "cut", replace(cfg, epochs=1))
    train(zoo, tmp_path / "cut", cfg, resume=True)
    last = "checkpoints/last.safetensors"
    assert (tmp_path / "whole" / last).read_bytes() == (tmp_path / "cut" / last).read_bytes()


def test_embed_writes_items_with_their_labels(zoo, tmp_path):
    run = tmp_path / "run"
    train(zoo, run, TrainConfig(loss="l_con", epochs=1))
    out = tmp_path / "emb.safetensors"
    assert main(["embed", str(run), str(zoo), "--out", str(out)]) == 0
    emb = load_embeddings(out)
    assert emb.vectors.shape == (16, 512)
    assert {i["preset"] for i in emb.items} == {"mlp", "hash"}
    assert {i["split"] for i in emb.items} == {"train", "val", "test"}
    one = Encoder.load(run).embed([zoo / "nerfs" / "mlp" / "chair_0000.safetensors"])
    row = [i["file"] for i in emb.items].index(str(zoo / "nerfs" / "mlp" / "chair_0000.safetensors"))
    assert torch.allclose(one.vectors[0], emb.vectors[row], atol=1e-5)


def test_bad_inputs_fail_with_one_line_and_write_nothing(zoo, tmp_path, capsys):
    single = tmp_path / "single"
    from tests.conftest import TINY_FIT

    build_zoo(single, ZooConfig(classes=("car",), objects_per_class=2, archs=("mlp",)), fit_cfg=TINY_FIT)
    run = tmp_path / "run"
    assert main(["train", str(single), "--loss", "l_con", "--out", str(run)]) == 2
    assert "two architectures" in capsys.readouterr().err
    assert not run.exists()
    assert main(["train", str(zoo), "--out", str(run), "--scale", "huge"]) == 2
    assert main(["train", str(zoo), "--out", str(run), "--lr", "0"]) == 2
    assert not run.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", str(empty), "--out", str(run)]) == 2
    assert not run.exists()

    assert main(["train", str(zoo), "--loss", "l_con", "--out", str(run), "--epochs", "1"]) == 0
    capsys.readouterr()
    from nerfspace.locks import folder_lock

    with folder_lock(run):  # another training of this run, still going
        args = ["train", str(zoo), "--loss", "l_con", "--out", str(run), "--epochs", "2", "--resume"]
        assert main(args) == 2
        assert "in use by another nerfspace process" in capsys.readouterr().err
    args = ["train", str(zoo), "--out", str(run), "--resume", "--preset", "paper", "--loss", "l_con"]
    assert main(args) == 2
    assert "encoder" in capsys.readouterr().err
    (run / "config.json").rename(run / "config.moved")
    assert main(["train", str(zoo), "--out", str(run), "--resume"]) == 2
    assert "run config" in capsys.readouterr().err
    (run / "config.moved").rename(run / "config.json")
    with pytest.raises(InputError, match="another encoder configuration"):
        from nerfspace.checkpoint import load_into, load_weights
        from nerfspace.encoders import ComposedEncoder, Composition, GMNConfig

        state, _ = load_weights(run / "checkpoints" / "best.safetensors")
        encoder_state = {k[8:]: v for k, v in state.items() if k.startswith("encoder.")}
        load_into(ComposedEncoder(Composition((GMNConfig(hidden=32),))), encoder_state, run)

    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"not a checkpoint")
    assert main(["embed", str(bogus), str(zoo), "--out", str(tmp_path / "e.safetensors")]) == 2
    assert not (tmp_path / "e.safetensors").exists()


def _rewrite(src, dst, edit_meta=None, edit_tensors=None):
    import json as js

    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(src, framework="pt") as f:
        meta = js.loads(f.metadata()["nerfspace"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if edit_meta:
        edit_meta(meta)
    if edit_tensors:
        edit_tensors(tensors)
    save_file(tensors, dst, metadata={"nerfspace": js.dumps(meta)})


def test_embedding_bad_nerf_files_fails_with_one_line(zoo, tmp_path, capsys):
    run = tmp_path / "run"
    train(zoo, run, TrainConfig(loss="l_con", epochs=1))
    src = zoo / "nerfs" / "mlp" / "chair_0000.safetensors"

    def unknown_family(meta):
        meta["spec"] = meta["spec"].replace('"family": "mlp"', '"family": "siren"')

    def nan_weight(tensors):
        tensors["mlp.1.weight"][0, 0] = float("inf")

    for name, kw, reason in [
        ("family.safetensors", {"edit_meta": unknown_family}, "unknown family"),
        ("nan.safetensors", {"edit_tensors": nan_weight}, "NaN or Inf"),
    ]:
        bad = tmp_path / name
        _rewrite(src, bad, **kw)
        out = tmp_path / f"{name}.emb.safetensors"
        assert main(["embed", str(run), str(bad), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and reason in err[0] and str(bad) in err[0]
        assert not out.exists()


def _losses(run) -> list[dict]:
    with open(run / "log.csv") as f:
        return [{k: float(r[k]) for k in ("loss", "l_rec", "l_con")} for r in csv.DictReader(f)]


def _torchrun(*args) -> None:
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    done = subprocess.run(
        [*cmd, "-m", "nerfspace", "train", *map(str, args)], capture_output=True, timeout=600
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def test_torchrun_on_two_processes_follows_the_single_process_loss_curve_and_resumes(zoo, tmp_path):
    first, then = ("--loss", "l_rec_con", "--lr", "3e-3", "--epochs", "3"), ("--epochs", "6", "--resume")
    for part in (first, (*first, *then)):  # 3 epochs, then resumed to 6: in one process, and under torchrun
        assert main(["train", str(zoo), "--out", str(tmp_path / "one"), *part]) == 0
        _torchrun(zoo, "--out", tmp_path / "two", *part)
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(one) == len(two) == 6  # the same steps: each rank encodes half of each step's 8 NeRFs
    for a, b in zip(one, two, strict=True):
        assert all(b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-6) for k in a), (a, b)
    assert (tmp_path / "two" / "checkpoints" / "best.safetensors").exists()


def test_ranks_share_every_nerf_of_a_step_once_and_too_many_are_refused(zoo, tmp_path, monkeypatch):
    from nerfspace.training import distributed
    from nerfspace.training.distributed import Ranks

    for n, world in ((8, 2), (7, 3), (2, 4)):
        shares = [range(n)[Ranks(r, world).share(n)] for r in range(world)]
        assert [i for s in shares for i in s] == list(range(n))
    monkeypatch.setattr(distributed, "start", lambda device: Ranks(0, 9))
    with pytest.raises(InputError, match="at most 8"):
        train(zoo, tmp_path / "run", TrainConfig(loss="l_con", epochs=1))
    assert not (tmp_path / "run").exists()

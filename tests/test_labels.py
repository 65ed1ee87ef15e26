"""Your own labels: a labels CSV over an embeddings file, `classify fit` and `classify predict`."""

import json

import pytest
import torch

from nerfspace.cli import main
from nerfspace.embeddings import Embeddings, save_embeddings
from nerfspace.errors import InputError
from nerfspace.evaluation.classify import (
    MLP_MIN_PER_CLASS,
    EmbeddingClassifier,
    NearestClassMean,
    fit_classifier,
    load_classifier,
)
from nerfspace.labels import read_labels


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def classify_fit(capsys, tmp_path, labels, out):
    """`nerfspace classify fit` of the fixture's embeddings: (exit code, stdout, stderr)."""
    return run(capsys, "classify", "fit", tmp_path / "emb.safetensors", "--labels", labels, "--out", out)


@pytest.fixture
def emb(tmp_path):
    """12 NeRFs of 3 objects (a, b: mugs near +x; c: a chair near +y) in 4 architectures each."""
    g = torch.Generator().manual_seed(0)
    centre = {"a": [1.0, 0, 0], "b": [0.9, 0.1, 0], "c": [0, 1.0, 0]}
    items, rows = [], []
    for o in "abc":
        for arch in ("mlp", "hash", "triplane", "mlp_2l"):
            items.append({"file": str(tmp_path / "nerfs" / arch / f"{o}.safetensors"), "object": o})
            rows.append(torch.tensor(centre[o]) + 0.05 * torch.randn(3, generator=g))
    for it in items:
        it |= {"category": "?", "preset": "mlp", "split": "test"}
    e = Embeddings(torch.stack(rows), items, {"parts": []}, "c" * 64)
    save_embeddings(tmp_path / "emb.safetensors", e)
    return e


def test_a_few_labels_fit_class_means_that_label_every_nerf(emb, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\nnerfs/mlp/a.safetensors,mug\nnerfs/mlp/c.safetensors,chair\n")
    clf_file = tmp_path / "clf.safetensors"
    code, out, err = classify_fit(capsys, tmp_path, labels, clf_file)
    assert code == 0, err
    assert "nearest class mean over 2 classes from 2 labelled NeRFs" in out
    code, out, err = run(capsys, "classify", "predict", clf_file, tmp_path / "emb.safetensors", "--json")
    assert code == 0, err
    pred = {(r["object"], r["file"]): r["label"] for r in json.loads(out)}
    assert len(pred) == 12
    assert all(label == ("chair" if o == "c" else "mug") for (o, _), label in pred.items())
    code, _, err = classify_fit(capsys, tmp_path, labels, tmp_path / "no" / "c")
    assert code == 2 and "output folder does not exist" in err
    # an existing classifier is kept unless --overwrite
    code, _, err = classify_fit(capsys, tmp_path, labels, clf_file)
    assert code == 2 and "--overwrite" in err


def test_labels_by_object_and_the_mlp_with_enough_examples(emb, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("object,label\na,mug\nb,mug\nc,chair\n")
    labelled = read_labels(labels, emb.items)
    assert len(labelled) == 12 and sorted(set(labelled.values())) == ["chair", "mug"]
    x = emb.vectors.repeat(MLP_MIN_PER_CLASS, 1)
    y = [labelled[i] for i in range(12)] * MLP_MIN_PER_CLASS
    clf = fit_classifier(x, y)
    assert isinstance(clf, EmbeddingClassifier) and clf.score(x, y) == 1.0
    clf.save(tmp_path / "mlp.safetensors", {"checkpoint": emb.checkpoint})
    again, meta = load_classifier(tmp_path / "mlp.safetensors")
    assert again.predict(x) == clf.predict(x) and meta["dim"] == 3
    means = fit_classifier(x[:12], y[:12])
    assert isinstance(means, NearestClassMean)
    means.save(tmp_path / "means.safetensors")
    assert load_classifier(tmp_path / "means.safetensors")[0].predict(x) == means.predict(x)


@pytest.mark.parametrize(
    "text, message",
    [
        ("name,label\na,mug\n", "a label column and a file or object column"),
        ("object,label\na,mug\nzzz,chair\n", "1 object(s) not in the embeddings: zzz"),
        ("object,label\na,mug\n", "two classes or more"),
        ("object,label\na,mug\na,chair\n", "labelled both"),
        ("object,label\na,\n", "empty object or label"),
        (
            "file,label\n/etc/passwd,mug\nnerfs/mlp/c.safetensors,chair\n",
            "not in the embeddings: /etc/passwd",
        ),
    ],
)
def test_bad_labels_give_one_error_line(emb, tmp_path, capsys, text, message):
    labels = tmp_path / "labels.csv"
    labels.write_text(text)
    code, out, err = classify_fit(capsys, tmp_path, labels, tmp_path / "c.st")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c.st").exists()


def test_predict_refuses_embeddings_of_another_encoder(emb, tmp_path, capsys):
    NearestClassMean().fit(emb.vectors, ["x"] * 6 + ["y"] * 6).save(
        tmp_path / "c.st", {"checkpoint": "d" * 64}
    )
    code, _, err = run(capsys, "classify", "predict", tmp_path / "c.st", tmp_path / "emb.safetensors")
    assert code == 2 and "another encoder" in err
    (tmp_path / "junk.st").write_bytes(b"not a classifier")
    code, _, err = run(capsys, "classify", "predict", tmp_path / "junk.st", tmp_path / "emb.safetensors")
    assert code == 2 and "classifier" in err
    with pytest.raises(InputError, match="not fitted"):
        NearestClassMean().predict(emb.vectors)

"""Classifiers of embeddings in scikit-learn style (``fit``, ``predict``, ``score``), storable as
safetensors so a trained one can ship: the protocol's classifier (DESIGN.md §7), an MLP (D -> 512 -> 256
-> classes, BatchNorm, dropout 0.5) trained with AdamW, and `NearestClassMean` for a few labelled
examples per class (k-shot). `fit_classifier` picks one by the number of examples, `load_classifier`
reads either."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nerfspace.errors import InputError
from nerfspace.index import unit
from nerfspace.tagged import read_tagged, write_tagged

FORMAT = "nerfspace-classifier/1"
MEANS_FORMAT = "nerfspace-class-means/1"
MLP_MIN_PER_CLASS = 10  # with fewer labelled examples in some class, `fit_classifier` takes class means


@dataclass(frozen=True)
class ClassifierConfig:
    hidden: tuple[int, ...] = (512, 256)
    dropout: float = 0.5
    epochs: int = 150
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    seed: int = 0


def _network(dim: int, classes: int, cfg: ClassifierConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in cfg.hidden:
        layers += [nn.Linear(dim, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(cfg.dropout)]
        dim = width
    return nn.Sequential(*layers, nn.Linear(dim, classes))


def _unit(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.normalize(torch.as_tensor(x, dtype=torch.float32), dim=1)


class EmbeddingClassifier:
    """Predicts one of ``labels`` from an embedding (inputs are L2-normalised, as for retrieval)."""

    def __init__(self, labels: list[str], config: ClassifierConfig | None = None):
        self.labels = list(labels)
        self.config = config or ClassifierConfig()
        self.net: nn.Sequential | None = None

    def fit(self, x: torch.Tensor, y: list[str]) -> EmbeddingClassifier:
        cfg = self.config
        unknown = sorted(set(y) - set(self.labels))
        if unknown:
            raise InputError(f"labels {unknown} are not among the classifier's {self.labels}")
        x = _unit(x)
        target = torch.tensor([self.labels.index(v) for v in y])
        gen = torch.Generator().manual_seed(cfg.seed)
        with torch.random.fork_rng():
            torch.manual_seed(cfg.seed)  # initialisation and dropout
            self.net = _network(x.shape[1], len(self.labels), cfg)
            opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            self.net.train()
            for _ in range(cfg.epochs):
                order = torch.randperm(len(x), generator=gen)
                for i in range(0, len(x), cfg.batch_size):
                    batch = order[i : i + cfg.batch_size]
                    if len(batch) < 2:  # BatchNorm needs two samples
                        continue
                    loss = nn.functional.cross_entropy(self.net(x[batch]), target[batch])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
        self.net.eval()
        return self

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> list[str]:
        if self.net is None:
            raise InputError("the classifier is not fitted")
        return [self.labels[i] for i in self.net(_unit(x)).argmax(1).tolist()]

    def score(self, x: torch.Tensor, y: list[str]) -> float:
        """Top-1 accuracy."""
        pred = self.predict(x)
        return sum(p == t for p, t in zip(pred, y, strict=True)) / max(len(y), 1)

    def save(self, path: Path, extra: dict | None = None) -> None:
        """Store weights and labels; ``extra`` (e.g. the encoder's checkpoint hash) goes in the metadata."""
        if self.net is None:
            raise InputError("the classifier is not fitted")
        meta = {"labels": self.labels, "config": asdict(self.config), **(extra or {})}
        meta["dim"] = self.net[0].in_features
        write_tagged(path, self.net.state_dict(), FORMAT, meta)

    @classmethod
    def load(cls, path: Path) -> tuple[EmbeddingClassifier, dict]:
        """A stored classifier and its metadata."""
        state, meta = read_tagged(path, FORMAT, "nerfspace classifier file")
        return cls.from_state(state, meta), meta

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], meta: dict) -> EmbeddingClassifier:
        """A classifier from the weights and metadata of its file."""
        cfg = meta["config"]
        clf = cls(meta["labels"], ClassifierConfig(**{**cfg, "hidden": tuple(cfg["hidden"])}))
        clf.net = _network(meta["dim"], len(clf.labels), clf.config)
        clf.net.load_state_dict(state)
        clf.net.eval()
        return clf


class NearestClassMean:
    """k-shot classification: each class is the normalised mean of its examples' unit embeddings; an
    embedding takes the class of the nearest mean by cosine."""

    def __init__(self) -> None:
        self.labels: list[str] = []
        self.means: np.ndarray | None = None

    def fit(self, x: torch.Tensor | np.ndarray, y: Sequence[str]) -> NearestClassMean:
        x, y = unit(x, np.float64), np.asarray(y)
        self.labels = sorted(set(y.tolist()))
        self.means = unit(np.stack([x[y == c].mean(0) for c in self.labels]), np.float64)
        return self

    def predict(self, x: torch.Tensor | np.ndarray) -> list[str]:
        if self.means is None:
            raise InputError("the classifier is not fitted")
        return [self.labels[i] for i in (unit(x, np.float64) @ self.means.T).argmax(1)]

    def score(self, x: torch.Tensor | np.ndarray, y: Sequence[str]) -> float:
        """Top-1 accuracy."""
        pred = self.predict(x)
        return sum(p == t for p, t in zip(pred, y, strict=True)) / max(len(y), 1)

    def save(self, path: Path, extra: dict | None = None) -> None:
        if self.means is None:
            raise InputError("the classifier is not fitted")
        meta = {"labels": self.labels, "dim": self.means.shape[1], **(extra or {})}
        write_tagged(path, {"means": torch.from_numpy(self.means)}, MEANS_FORMAT, meta)


Classifier = EmbeddingClassifier | NearestClassMean


def fit_classifier(x: torch.Tensor, y: Sequence[str], config: ClassifierConfig | None = None) -> Classifier:
    """The protocol's MLP when every class has `MLP_MIN_PER_CLASS` labelled examples or more, else the
    nearest class mean; at least two classes."""
    counts = {c: list(y).count(c) for c in set(y)}
    if len(counts) < 2:
        raise InputError(f"a classifier needs labelled examples of two classes or more, got {sorted(counts)}")
    if min(counts.values()) >= MLP_MIN_PER_CLASS:
        return EmbeddingClassifier(sorted(counts), config).fit(x, list(y))
    return NearestClassMean().fit(x, y)


def load_classifier(path: Path) -> tuple[Classifier, dict]:
    """A stored classifier of either kind and its metadata."""
    state, meta = read_tagged(path, (FORMAT, MEANS_FORMAT), "nerfspace classifier file")
    if meta["format"] == FORMAT:
        return EmbeddingClassifier.from_state(state, meta), meta
    means = state.get("means")
    labels = meta.get("labels")
    if means is None or means.ndim != 2 or not isinstance(labels, list) or len(labels) != len(means):
        raise InputError(f"{path}: a class-means file whose means and labels do not match")
    clf = NearestClassMean()
    clf.labels, clf.means = [str(v) for v in labels], means.double().numpy()
    return clf, meta

"""Anomaly scores on embeddings in scikit-learn style (``fit``, ``score_samples``, ``predict``): a part is
as anomalous as it is far from its nearest normal parts. Storable as safetensors.

`KNNAnomaly` scores an embedding by its mean cosine distance to the ``k`` nearest normals; the threshold
is the (1 - ``false_alarm``) quantile of the normals' own leave-one-out scores (leaving out every row of
the same object, when objects are given), so about ``false_alarm`` of normal parts like the fitted ones
are flagged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from nerfspace.errors import InputError
from nerfspace.index import unit
from nerfspace.tagged import read_tagged, write_tagged

FORMAT = "nerfspace-anomaly/1"


@dataclass(frozen=True)
class AnomalyConfig:
    k: int = 3  # normals each score averages over
    false_alarm: float = 0.05  # share of normals (left out one at a time) above the threshold

    def __post_init__(self) -> None:
        if not (isinstance(self.k, int) and 1 <= self.k <= 1000):
            raise InputError(f"k must be an integer in [1, 1000], got {self.k!r}")
        if not 0.0 < self.false_alarm < 1.0:
            raise InputError(f"the false-alarm rate must be in (0, 1), got {self.false_alarm!r}")

    @property
    def min_normals(self) -> int:
        """Normals needed: ``k`` neighbours left for each one left out, and enough of them that the
        quantile at the false-alarm rate lies below the largest score."""
        return max(self.k + 1, math.ceil(1.0 / self.false_alarm))


def threshold_at(scores: np.ndarray, false_alarm: float) -> float:
    """The score above which ``false_alarm`` of ``scores`` (normals, each left out) lie."""
    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    return float(ordered[math.ceil((1.0 - false_alarm) * len(ordered)) - 1])


class KNNAnomaly:
    """Mean cosine distance to the ``k`` nearest normals, and a threshold set from the normals."""

    def __init__(self, config: AnomalyConfig | None = None) -> None:
        self.config = config or AnomalyConfig()
        self.normals: np.ndarray | None = None
        self.threshold: float | None = None
        self.left_out: np.ndarray | None = None  # [N, k]: each normal's nearest normals of other objects

    def fit(self, x: torch.Tensor | np.ndarray, objects: Sequence[str] | None = None) -> KNNAnomaly:
        """Store the normals ``x`` [N, D] and set the threshold from their leave-one-out scores (rows of
        the same entry of ``objects`` are left out together)."""
        cfg, x = self.config, unit(x, np.float64)
        groups = (
            np.arange(len(x)) if objects is None else np.unique(np.asarray(objects), return_inverse=True)[1]
        )
        if len(set(groups.tolist())) < cfg.min_normals:
            raise InputError(
                f"{len(set(groups.tolist()))} normal parts are too few to set a threshold at a "
                f"{cfg.false_alarm:g} false-alarm rate with k={cfg.k}: give at least {cfg.min_normals}"
            )
        distance = 1.0 - x @ x.T
        distance[groups[:, None] == groups[None, :]] = np.inf
        self.left_out = np.argsort(distance, axis=1, kind="stable")[:, : cfg.k]
        self.normals = x
        self.threshold = threshold_at(np.take_along_axis(distance, self.left_out, 1).mean(1), cfg.false_alarm)
        return self

    def kneighbors(self, x: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cosine distances [M, k] to the ``k`` nearest normals, nearest first, and their rows [M, k]."""
        if self.normals is None:
            raise InputError("the anomaly model is not fitted")
        x = unit(x, np.float64)
        if x.shape[1] != self.normals.shape[1]:
            raise InputError(
                f"embeddings of size {x.shape[1]}, but the model was fitted on size {self.normals.shape[1]}"
            )
        distance = 1.0 - x @ self.normals.T
        rows = np.argsort(distance, axis=1, kind="stable")[:, : self.config.k]
        return np.take_along_axis(distance, rows, axis=1), rows

    def score_samples(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        """Anomaly scores [M]: mean cosine distance to the ``k`` nearest normals (higher: more anomalous)."""
        return self.kneighbors(x)[0].mean(1)

    def predict(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        """True where a part is flagged (its score above the threshold)."""
        return self.score_samples(x) > self.threshold

    def save(self, path: Path, extra: dict | None = None) -> None:
        """Store normals, threshold and config; ``extra`` (e.g. the encoder's checkpoint) in the metadata."""
        if self.normals is None:
            raise InputError("the anomaly model is not fitted")
        meta = {"config": asdict(self.config), "threshold": self.threshold, **(extra or {})}
        write_tagged(path, {"normals": torch.from_numpy(self.normals)}, FORMAT, meta)

    @classmethod
    def load(cls, path: Path) -> tuple[KNNAnomaly, dict]:
        """A stored model and its metadata."""
        state, meta = read_tagged(path, FORMAT, "nerfspace anomaly model")
        normals, threshold = state.get("normals"), meta.get("threshold")
        try:
            model = cls(AnomalyConfig(**meta["config"]))
        except (KeyError, TypeError) as e:
            raise InputError(f"{path}: an anomaly model without a valid config ({e})") from e
        if (
            normals is None
            or normals.ndim != 2
            or not isinstance(threshold, float)
            or not math.isfinite(threshold)
        ):
            raise InputError(f"{path}: an anomaly model without normals [N, D] and a finite threshold")
        model.normals, model.threshold = normals.double().numpy(), threshold
        return model, meta

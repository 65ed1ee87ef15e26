"""Architecture mixing: can the architecture be read off an embedding (a good shared space makes
this hard), and a 2-D map of the embeddings (t-SNE) to colour by category and by architecture."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def _unit(x: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(torch.as_tensor(x, dtype=torch.float32), dim=1).numpy()


def arch_identifiability(
    vectors: torch.Tensor, presets: Sequence[str], objects: Sequence[str], folds: int = 5
) -> float:
    """Cross-validated accuracy of a linear probe (standardised logistic regression) predicting the
    architecture from an embedding. Folds split by object, so an object is never both trained on
    and tested. Chance is 1 / number of architectures."""
    x, y, groups = _unit(vectors), np.asarray(presets), np.asarray(objects)
    folds = min(folds, len(set(objects)))
    if len(set(presets)) < 2 or folds < 2:
        raise ValueError("architecture identifiability needs >= 2 architectures and >= 2 objects")
    correct = 0
    for train, test in GroupKFold(folds).split(x, y, groups):
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        probe.fit(x[train], y[train])
        correct += int((probe.predict(x[test]) == y[test]).sum())
    return correct / len(y)


def embedding_map(vectors: torch.Tensor, seed: int = 0) -> np.ndarray:
    """2-D t-SNE coordinates [N, 2] of the embeddings (cosine distance)."""
    x = _unit(vectors)
    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
    tsne = TSNE(2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed)
    return tsne.fit_transform(x)

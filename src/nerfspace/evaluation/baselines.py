"""The two baselines of the evaluation protocol, on the same zoo objects as the weight-space methods.

`render_then_classify` does what a user would do without weight-space learning: render every NeRF
and classify its images with a small CNN. `raw_weights_knn` classifies a NeRF's flattened weights
(PCA, then k nearest neighbours) within one architecture, since raw weights of different
architectures share no space.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier
from torch import nn

from nerfspace.archs import SEEN
from nerfspace.errors import InputError
from nerfspace.render import orbit_cameras
from nerfspace.shapes import CATEGORIES
from nerfspace.zoo.items import Item
from nerfspace.zoo.storage import load_nerf

BATCH = 64
LR = 2e-3


def _labels(items: list[Item]) -> np.ndarray:
    return np.array([CATEGORIES.index(it.category) for it in items])


def _cnn(classes: int) -> nn.Module:
    """Three conv blocks (16/32/64 channels, BatchNorm, ReLU, max-pool), global average pool, linear."""
    blocks, c_in = [], 3
    for c in (16, 32, 64):
        blocks += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
        c_in = c
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, classes))


def _render(item: Item, views: int, size: int) -> tuple[torch.Tensor, float]:
    """Orbit views [V, 3, H, W] of one NeRF and the seconds its rendering took (file loading excluded)."""
    nerf, cams = load_nerf(item.file), orbit_cameras(views, size)
    start = time.perf_counter()
    with torch.no_grad():
        images = nerf.render(cams)
    return images.permute(0, 3, 1, 2).contiguous(), time.perf_counter() - start


def _train(images: torch.Tensor, labels: torch.Tensor, seed: int, epochs: int) -> nn.Module:
    """A CNN trained with AdamW on ``images`` [N, 3, H, W]; its init and batches drawn from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _cnn(len(CATEGORIES))
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    batches = -(-len(images) // BATCH)
    # decayed to zero: at a constant rate the last steps could leave a broken model (seed 1 of the
    # benchmark: 71 % training accuracy after 60 epochs, 43 % on test, against 75-81 % for seeds 0, 2, 3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * batches)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        for idx in order.tensor_split(batches):
            loss = nn.functional.cross_entropy(model(images[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
    return model.eval()


def _accuracy(items: list[Item], correct: list[bool], presets: Collection[str]) -> float | None:
    """Share of ``correct`` over the items of ``presets`` (None if there is none)."""
    hits = [c for it, c in zip(items, correct, strict=True) if it.preset in presets]
    return sum(hits) / len(hits) if hits else None


def render_then_classify(
    items: list[Item],
    seed: int = 0,
    views: int = 4,
    size: int = 32,
    epochs: int = 60,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Render ``views`` orbit views of ``size`` px of every NeRF, train a CNN on the train NeRFs' views
    (each view one image) and classify each test NeRF by the mean of its views' logits. Reports accuracy
    (seen and unseen presets, per preset) and per test NeRF the seconds of rendering and of CNN
    inference (one batch of all test views). ``progress(done, total)`` is called as NeRFs are rendered."""
    train = [it for it in items if it.split == "train"]
    test = [it for it in items if it.split == "test"]
    if not train or not test:
        raise InputError("render-then-classify needs NeRFs of both the train and the test split")
    rendered, render_seconds = [], 0.0
    for i, it in enumerate(train + test, 1):
        images, seconds = _render(it, views, size)
        rendered.append(images)
        render_seconds += seconds if it.split == "test" else 0.0
        if progress:
            progress(i, len(train) + len(test))
    x_train, x_test = torch.cat(rendered[: len(train)]), torch.cat(rendered[len(train) :])
    y_train = torch.from_numpy(_labels(train)).repeat_interleave(views)
    model = _train(x_train, y_train, seed, epochs)
    start = time.perf_counter()
    with torch.no_grad():
        logits = model(x_test)
    classify_seconds = time.perf_counter() - start
    pred = logits.reshape(len(test), views, -1).mean(1).argmax(-1).numpy()
    correct = (pred == _labels(test)).tolist()
    n, presets = len(test), sorted({it.preset for it in test})
    return {
        "accuracy": {
            "seen": _accuracy(test, correct, SEEN),
            "unseen": _accuracy(test, correct, [p for p in presets if p not in SEEN]),
            "per_arch": {p: _accuracy(test, correct, [p]) for p in presets},
        },
        "seconds_per_nerf": {
            "render": render_seconds / n,
            "classify": classify_seconds / n,
            "total": (render_seconds + classify_seconds) / n,
        },
        "views": views,
        "size": size,
        "epochs": epochs,
        "train_nerfs": len(train),
        "test_nerfs": n,
    }


def _flat_weights(item: Item) -> np.ndarray:
    """A NeRF's parameter tensors, sorted by name, flattened into one vector."""
    params = load_nerf(item.file).params
    return torch.cat([params[name].flatten() for name in sorted(params)]).numpy()


def raw_weights_knn(items: list[Item], components: int = 32, k: int = 1) -> dict:
    """Per preset with test NeRFs and at least two train NeRFs (PCA needs two): PCA of the flattened
    weights fitted on the train NeRFs (``min(components, n_train - 1, dim)`` components), then a
    k-nearest-neighbour classifier (k capped at n_train). Returns the test accuracy per preset."""
    per_arch = {}
    for preset in sorted({it.preset for it in items}):
        train = [it for it in items if it.preset == preset and it.split == "train"]
        test = [it for it in items if it.preset == preset and it.split == "test"]
        if len(train) < 2 or not test:
            continue
        x_train, x_test = (np.stack([_flat_weights(it) for it in group]) for group in (train, test))
        n = min(components, len(train) - 1, x_train.shape[1])
        pca = PCA(n_components=n, random_state=0).fit(x_train)
        knn = KNeighborsClassifier(n_neighbors=min(k, len(train))).fit(pca.transform(x_train), _labels(train))
        per_arch[preset] = float((knn.predict(pca.transform(x_test)) == _labels(test)).mean())
    return {"per_arch": per_arch, "components": components, "k": k}

"""Metrics read off the embedding space: 1-NN, class mAP over other objects, k-shot."""

from __future__ import annotations

import torch

from nerfspace.evaluation.neighbours import k_shot, nearest_neighbour, neighbour_metrics, other_object_map


def _items(objects_per_cat: int, split: str, presets=("mlp", "hash", "mlp_2l")) -> list[dict]:
    return [
        {"object": f"{c}_{split}_{o}", "category": c, "preset": p, "split": split}
        for c in ("car", "chair", "lamp")
        for o in range(objects_per_cat)
        for p in presets
    ]


def _vectors(items: list[dict], noise: float, seed: int = 0) -> torch.Tensor:
    """One direction per category plus noise: a space where category is readable to a degree."""
    gen = torch.Generator().manual_seed(seed)
    base = {c: torch.randn(16, generator=gen) for c in ("car", "chair", "lamp")}
    return torch.stack([base[it["category"]] + noise * torch.randn(16, generator=gen) for it in items])


def test_a_clean_space_scores_one_and_noise_scores_less():
    items = _items(3, "test") + _items(4, "train")
    clean = neighbour_metrics(_vectors(items, 0.01), items)
    assert clean["1nn"] == {"seen": 1.0, "unseen": 1.0}
    assert abs(clean["map_other_objects"] - 1.0) < 1e-9
    assert clean["k_shot"]["1"]["seen"] == 1.0
    assert clean["k_shot"]["5"] is None  # 4 train objects per category, 3 test ones
    noisy = neighbour_metrics(_vectors(items, 3.0), items)
    assert noisy["1nn"]["seen"] < 1.0 and noisy["map_other_objects"] < 0.9


def test_own_object_is_left_out():
    # every object sits alone in its own direction: its other architectures are its only neighbours
    items = _items(2, "test")
    gen = torch.Generator().manual_seed(1)
    dirs = {it["object"]: torch.randn(32, generator=gen) for it in items}
    x = torch.stack([dirs[it["object"]] for it in items])
    assert other_object_map(x, items) < 0.9  # not 1.0: the object's own copies do not count as hits
    assert nearest_neighbour(x, items)["seen"] < 1.0


def test_k_shot_from_the_test_split_leaves_the_labelled_objects_out():
    items = _items(3, "test")
    result = k_shot(_vectors(items, 0.01), items, k=1)
    assert result == {"seen": 1.0, "unseen": 1.0}
    assert k_shot(_vectors(items, 0.01), items, k=3) is None  # no object left to query

"""The evaluation protocol of DESIGN.md §7 on one trained encoder: embed a zoo, then classification
(architecture-agnostic and per architecture), cross-architecture retrieval, architecture mixing, the
cost of weight-space classification, and retrieval examples for the report.

Results are a JSON-ready dict; its headline keys (``classification``, ``retrieval``,
``arch_identifiability``) are the contract of ``nerfspace demo --json`` (docs/cli.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nerfspace.archs import SEEN
from nerfspace.embeddings import Embeddings, load_embeddings
from nerfspace.encoders.inputs import collate, nerf_inputs
from nerfspace.errors import InputError
from nerfspace.evaluation.classify import ClassifierConfig, EmbeddingClassifier
from nerfspace.evaluation.mixing import arch_identifiability, embedding_map
from nerfspace.evaluation.neighbours import neighbour_metrics
from nerfspace.index import EmbeddingIndex
from nerfspace.inference import Encoder
from nerfspace.metrics import class_map, mean_recall, pair_recall
from nerfspace.shapes import CATEGORIES
from nerfspace.zoo.storage import load_nerf

MIN_TEST = 3  # test NeRFs below which neither the map nor the metrics mean anything


@dataclass(frozen=True)
class EvalConfig:
    seed: int = 0
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    ks: tuple[int, ...] = (1, 5, 10)
    examples: int = 4  # retrieval examples (unseen-architecture queries) for the report
    timed_nerfs: int = 26  # NeRFs timed end to end (file -> inputs -> embedding -> class)


def embeddings_for(
    encoder: Encoder, source: Path, progress: Callable[[int, int], None] | None = None
) -> Embeddings:
    """Embeddings of a zoo by ``encoder``, or a stored embeddings file made by it."""
    source = Path(source)
    if source.is_file():
        emb = load_embeddings(source)
        encoder.check(emb.checkpoint, source)
        return emb
    return encoder.embed([source], progress=progress)


def _rows(emb: Embeddings, split: str | None = None, presets: set[str] | None = None) -> list[int]:
    return [
        i
        for i, it in enumerate(emb.items)
        if (split is None or it["split"] == split) and (presets is None or it["preset"] in presets)
    ]


def _confusion(true: list[str], pred: list[str]) -> list[list[int]]:
    m = [[0] * len(CATEGORIES) for _ in CATEGORIES]
    for t, p in zip(true, pred, strict=True):
        m[CATEGORIES.index(t)][CATEGORIES.index(p)] += 1
    return m


def _accuracy(true: list[str], pred: list[str]) -> float | None:
    return sum(t == p for t, p in zip(true, pred, strict=True)) / len(true) if true else None


def classification(
    emb: Embeddings, cfg: EvalConfig, classifier: EmbeddingClassifier | None
) -> tuple[dict, EmbeddingClassifier]:
    """Architecture-agnostic classifier (fitted on the seen architectures' train embeddings unless
    given) tested on every architecture's test embeddings; per-architecture classifiers where an
    architecture has train embeddings."""
    z, items = emb.vectors, emb.items
    seen = set(SEEN)
    if classifier is None:
        train = _rows(emb, "train", seen)
        if not train:
            raise InputError("no train-split NeRF of a seen architecture to fit the classifier on")
        classifier = EmbeddingClassifier(list(CATEGORIES), cfg.classifier)
        classifier.fit(z[train], [items[i]["category"] for i in train])
    test = _rows(emb, "test")
    true = [items[i]["category"] for i in test]
    pred = classifier.predict(z[test])
    presets = [items[i]["preset"] for i in test]

    def pooled(keep: Callable[[str], bool]) -> tuple[list[str], list[str]]:
        pairs = [(t, p) for t, p, a in zip(true, pred, presets, strict=True) if keep(a)]
        return [t for t, _ in pairs], [p for _, p in pairs]

    per_arch = {a: _accuracy(*pooled(lambda x, a=a: x == a)) for a in sorted(set(presets), key=presets.index)}
    seen_tp, unseen_tp = pooled(lambda a: a in seen), pooled(lambda a: a not in seen)
    own = {}
    for a in sorted({it["preset"] for it in items}):
        tr, te = _rows(emb, "train", {a}), _rows(emb, "test", {a})
        if tr and te:
            clf = EmbeddingClassifier(list(CATEGORIES), cfg.classifier).fit(
                z[tr], [items[i]["category"] for i in tr]
            )
            own[a] = clf.score(z[te], [items[i]["category"] for i in te])
    result = {
        "seen": _accuracy(*seen_tp),
        "unseen": _accuracy(*unseen_tp),
        "per_arch": per_arch,
        "per_arch_classifier": own,
        "confusion": {"seen": _confusion(*seen_tp), "unseen": _confusion(*unseen_tp)},
        "labels": list(CATEGORIES),
    }
    return result, classifier


def retrieval(emb: Embeddings, cfg: EvalConfig) -> dict:
    """Instance recall@k over the test split for every architecture pair, aggregated over seen pairs
    and unseen -> seen; class-level mAP."""
    test = _rows(emb, "test")
    z = emb.vectors[test]
    objects = [emb.items[i]["object"] for i in test]
    presets = [emb.items[i]["preset"] for i in test]
    pairs = pair_recall(z, objects, presets, cfg.ks)
    seen, present = set(SEEN), set(presets)
    out = {
        f"recall@{k}": {
            "seen": mean_recall(pairs, k, seen, seen),
            "unseen_to_seen": mean_recall(pairs, k, present - seen, seen),
        }
        for k in cfg.ks
    }
    out["pairs"] = {f"{a}->{b}": {str(k): v for k, v in r.items()} for (a, b), r in pairs.items()}
    out["map"] = class_map(z, [emb.items[i]["category"] for i in test])
    return out


def examples(emb: Embeddings, cfg: EvalConfig, k: int = 5) -> list[dict]:
    """Retrieval examples: test queries of unseen architectures (seen ones if there are none)
    against the test embeddings of the seen architectures."""
    seen = set(SEEN)
    gallery = _rows(emb, "test", seen)
    queries = _rows(emb, "test", {it["preset"] for it in emb.items} - seen) or gallery
    if not gallery:
        return []
    step = max(1, len(queries) // cfg.examples)
    index = EmbeddingIndex.build(emb.vectors[gallery], "Flat")
    out = []
    for q in queries[::step][: cfg.examples]:
        scores, rows = index.search(emb.vectors[q : q + 1], min(k, index.size))
        hits = [{**emb.items[gallery[r]], "score": float(s)} for s, r in zip(scores[0], rows[0], strict=True)]
        out.append({"query": emb.items[q], "hits": hits})
    return out


@torch.no_grad()
def time_weight_space(
    encoder: Encoder, files: list[Path], classifier: EmbeddingClassifier
) -> dict[str, float]:
    """Seconds per NeRF of weight-space classification from the file: read, the encoder's inputs (only
    those its parts read), encode, classify (one NeRF at a time, nothing cached)."""
    t = {"read": 0.0, "inputs": 0.0, "encode": 0.0, "classify": 0.0}
    for f in files:
        t0 = time.perf_counter()
        nerf = load_nerf(f)
        t1 = time.perf_counter()
        inputs = collate([nerf_inputs(nerf, encoder.composition.needs)])
        t2 = time.perf_counter()
        z = encoder.module(inputs)
        t3 = time.perf_counter()
        classifier.predict(z)
        t4 = time.perf_counter()
        for key, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            t[key] += dt
    out = {k: v / max(len(files), 1) for k, v in t.items()}
    out["total"] = sum(out.values())
    return out


def _check_test_rows(emb: Embeddings) -> list[int]:
    test = _rows(emb, "test")
    if not test:
        raise InputError("no test-split NeRF to evaluate on")
    if not _rows(emb, "test", set(SEEN)):
        raise InputError(
            "the evaluated NeRFs share no architecture with the encoder's training architectures"
            f" ({', '.join(SEEN)}): the classifier and the seen-pair retrieval need them"
        )
    if len(test) < MIN_TEST:
        raise InputError(f"evaluation needs at least {MIN_TEST} test-split NeRFs, got {len(test)}")
    return test


def evaluate_space(emb: Embeddings, cfg: EvalConfig | None = None, mixing: bool = True) -> dict:
    """The tables that read the embedding space without a trained head: retrieval, the neighbour metrics
    (1-NN, k-shot, class mAP over other objects) and, with ``mixing``, architecture identifiability
    (a cross-validated probe: the slow part for wide embeddings)."""
    cfg = cfg or EvalConfig()
    test = _check_test_rows(emb)
    z = emb.vectors[test]
    presets = [emb.items[i]["preset"] for i in test]
    objects = [emb.items[i]["object"] for i in test]
    return {
        "retrieval": retrieval(emb, cfg),
        "neighbours": neighbour_metrics(emb.vectors, emb.items, cfg.seed),
        "arch_identifiability": (
            arch_identifiability(z, presets, objects) if mixing and len(set(presets)) > 1 else None
        ),
        "arch_chance": 1 / len(set(presets)),
    }


def evaluate_embeddings(
    emb: Embeddings, cfg: EvalConfig | None = None, classifier: EmbeddingClassifier | None = None
) -> tuple[dict, EmbeddingClassifier]:
    """Every table of the protocol from embeddings with their items (object, category, preset, split)."""
    cfg = cfg or EvalConfig()
    test = _check_test_rows(emb)
    cls, classifier = classification(emb, cfg, classifier)
    z = emb.vectors[test]
    presets = [emb.items[i]["preset"] for i in test]
    xy = embedding_map(z, cfg.seed)
    results = {
        "n": {"test": len(test), "train": len(_rows(emb, "train")), "archs": sorted(set(presets))},
        "classification": cls,
        **evaluate_space(emb, cfg),
        "map": {
            "xy": xy.round(4).tolist(),
            "category": [emb.items[i]["category"] for i in test],
            "preset": presets,
        },
        "examples": examples(emb, cfg),
        "encoder": emb.encoder,
        "checkpoint": emb.checkpoint,
    }
    return results, classifier


def evaluate(
    run: Path,
    source: Path,
    cfg: EvalConfig | None = None,
    classifier: EmbeddingClassifier | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict, EmbeddingClassifier, Embeddings]:
    """Embed ``source`` (a zoo, or an embeddings file of this run's encoder) and evaluate; adds the
    per-NeRF cost of weight-space classification measured on test NeRFs."""
    cfg = cfg or EvalConfig()
    encoder = Encoder.load(run)
    emb = embeddings_for(encoder, source, progress)
    results, classifier = evaluate_embeddings(emb, cfg, classifier)
    files = [Path(emb.items[i]["file"]) for i in _rows(emb, "test")]
    step = max(1, len(files) // cfg.timed_nerfs)
    results["seconds_per_nerf"] = time_weight_space(encoder, files[::step][: cfg.timed_nerfs], classifier)
    return results, classifier, emb

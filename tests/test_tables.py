"""The benchmark's tables: both tracks, the best no-learning baseline beside each learned method."""

from __future__ import annotations

from nerfspace.evaluation.tables import benchmark_markdown, best_baseline, write_overview


def _method(r1_unseen: float, nn: float, arch: float | None = 0.1) -> dict:
    return {
        "classification": {"seen": 0.9, "unseen": 0.85, "per_arch": {"mlp": 0.9}, "per_arch_classifier": {}},
        "retrieval": {
            "recall@1": {"seen": r1_unseen, "unseen_to_seen": r1_unseen},
            "recall@5": {"seen": 1.0, "unseen_to_seen": 1.0},
            "recall@10": {"seen": 1.0, "unseen_to_seen": 1.0},
            "map": 0.5,
        },
        "neighbours": {
            "1nn": {"seen": nn, "unseen": nn},
            "map_other_objects": 0.4,
            "k_shot": {"1": {"seen": 0.5, "unseen": 0.5}, "5": None},
        },
        "arch_identifiability": arch,
        "arch_chance": 1 / 13,
        "seconds_per_nerf": {"total": 0.01},
    }


def _track(probe_r1: float) -> dict:
    return {
        "zoo": {"objects": 26, "nerfs": 130, "splits": {"train": 18, "val": 2, "test": 6}, "fit_steps": 10},
        "runs": {"l_rec_con": {"step_seconds": 0.2}},
        "results": {"l_rec_con": _method(0.7, 0.8)},
        "baselines": {
            "field": {"field-probe": _method(probe_r1, 0.6), "field-invariant": _method(0.6, 0.9)},
            "render_then_classify": {
                "accuracy": {"seen": 0.8, "unseen": 0.7, "per_arch": {"mlp": 0.8}},
                "seconds_per_nerf": {"render": 0.01, "classify": 0.001, "total": 0.011},
            },
            "raw_weights_knn": {"per_arch": {"mlp": 0.2}},
        },
    }


def test_two_tracks_with_the_best_baseline_beside_the_learned_method(tmp_path):
    summary = {
        "date": "2026-12-03",
        "config": {"objects_per_class": 2, "fit_steps": 10, "epochs": 1, "seed": 0, "tracks": ["a", "b"]},
        "tracks": {"aligned": _track(1.0), "independent": _track(0.3)},
        "timings": {
            "aligned/zoo": {"seconds": 60.0, "nerfs": 130},
            "independent/zoo": {"seconds": 90.0, "nerfs": 130},
        },
        "peak_memory_mb": 100.0,
        "machine": {"cpu": "x86_64", "torch": "2", "threads": 2},
    }
    best = best_baseline(summary["tracks"]["independent"])
    assert best["retrieval.recall@1.unseen_to_seen"] == (0.6, "field-invariant")
    assert best["neighbours.1nn.seen"] == (0.9, "field-invariant")
    md = "\n".join(benchmark_markdown([summary, summary]))
    assert "### Track: aligned" in md and "### Track: independent" in md
    assert "| best no-learning baseline (per column) |" in md
    assert "field-probe recall@1 unseen -> seen 30.0 % (<= 50 %): yes" in md
    assert "Fitting rate, independent / aligned captures (same run): 0.67." in md
    assert "L_R+C beats the best no-learning baseline on" in md
    page = write_overview(tmp_path / "report.html", "t", summary["tracks"], {}).read_text()
    assert page.count("<table>") == 2 and "field-invariant" in page


def test_the_invariant_encoder_is_held_to_the_best_baseline_of_each_metric():
    track = _track(0.3)
    track["results"]["invariant"] = _method(0.81, 0.96)
    track["runs"]["invariant"] = {"epochs": 250, "step_seconds": 0.03}
    summary = {
        "date": "2026-12-04",
        "config": {"objects_per_class": 2, "fit_steps": 10, "epochs": 30, "seed": 0},
        "tracks": {"independent": track},
        "timings": {},
        "peak_memory_mb": 1.0,
        "machine": {"cpu": "x86_64", "torch": "2", "threads": 2},
    }
    md = "\n".join(benchmark_markdown([summary]))
    # field-invariant misses 40 %: the goal is >= 90 % (stricter than 80 %, half its misses)
    assert "invariant recall@1 unseen -> seen: 81.0 % against 60.0 % (field-invariant); goal" in md
    assert "(>= 90.0 %): **not met**" in md
    assert "invariant 1-NN seen: 96.0 % against 90.0 % (field-invariant); goal >= baseline + 5: met" in md
    assert "invariant class mAP, other objects: 40.0 % against 40.0 % (field-probe)" in md
    assert "baseline + 5: **not met**" in md and "5-shot" not in md.split("Must-reach")[-1].split("Top-1")[0]
    assert "invariant classifier seen: 90.0 % (goal >= 90 %): met" in md
    assert "Runs trained for other lengths: invariant (L_C on objects and categories, turned views) 250" in md


def test_a_result_from_before_the_field_baselines_claims_no_comparison():
    old = _track(1.0)
    del old["baselines"]["field"]
    summary = {
        "date": "2026-11-29",
        "config": {"objects_per_class": 2, "fit_steps": 10, "epochs": 1, "seed": 0},
        **old,
        "timings": {"zoo": {"seconds": 60.0, "nerfs": 130}},
        "peak_memory_mb": 100.0,
        "machine": {"cpu": "x86_64", "torch": "2", "threads": 2},
    }
    md = "\n".join(benchmark_markdown([summary]))
    assert "### Track: aligned" in md and "earlier invocation" not in md
    kept = {**summary, "tracks": {"aligned": {**old, "made_by": {"command": "python old.py", "date": "d"}}}}
    assert "earlier invocation: `python old.py` (d)" in "\n".join(benchmark_markdown([kept]))
    assert "best no-learning baseline (per column)" not in md
    assert "predates them" in md and "beats the best no-learning baseline" not in md

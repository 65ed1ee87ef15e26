"""The benchmark's tables: every table of the protocol, per capture track, from one or more benchmark
summaries (one per seed), as Markdown (BENCHMARKS.md) and as an HTML overview page. Every learned method
stands beside the best no-learning baseline of the same run."""

from __future__ import annotations

from html import escape
from pathlib import Path

from nerfspace.archs import PRESETS, SEEN
from nerfspace.atomic import atomic_write_bytes
from nerfspace.report import figures
from nerfspace.report.html import image, page, pct, table

NAMES = {
    "l_rec": "L_R",
    "l_con": "L_C",
    "l_rec_con": "L_R+C",
    "paper_recipe": "paper recipe (L_R+C, paper encoder)",
    "field_only": "L_R+C, field encoder only (no GMN)",
    "invariant": "invariant (L_C on objects and categories, turned views)",
}
TRACK_TITLES = {
    "aligned": "aligned captures (the paper's protocol: an object's NeRFs from the same views, one frame)",
    "independent": "independent captures (every NeRF its own pose, cameras and light)",
}
GOALS = "classification >= 90 % seen, >= 85 % unseen; recall@1 >= 80 % seen pairs, >= 60 % unseen -> seen"


def _get(d: dict | None, *keys: str) -> float | None:
    for k in keys:
        if not isinstance(d, dict) or d.get(k) is None:
            return None
        d = d[k]
    return d


# metric (its path in a method's results) -> column header
METRICS = {
    "classification.seen": "classifier seen",
    "classification.unseen": "classifier unseen",
    "neighbours.1nn.seen": "1-NN seen",
    "neighbours.1nn.unseen": "1-NN unseen",
    "neighbours.k_shot.1.unseen": "1-shot unseen",
    "neighbours.k_shot.5.seen": "5-shot seen",
    "neighbours.k_shot.5.unseen": "5-shot unseen",
    "retrieval.recall@1.seen": "R@1 seen pairs",
    "retrieval.recall@1.unseen_to_seen": "R@1 unseen->seen",
    "retrieval.recall@5.unseen_to_seen": "R@5 unseen->seen",
    "retrieval.recall@10.unseen_to_seen": "R@10 unseen->seen",
    "neighbours.map_other_objects": "class mAP, other objects",
}


def metric(results: dict, path: str) -> float | None:
    """The value of a metric of `METRICS` in a method's results (None where it was not measured)."""
    return _get(results, *path.split("."))


def summary_tracks(s: dict) -> dict[str, dict]:
    """A summary's tracks (a summary from before the tracks holds the aligned track alone)."""
    return s.get("tracks") or {"aligned": s}


def best_baseline(track: dict) -> dict[str, tuple[float, str]]:
    """Per metric of `METRICS`, the best no-learning baseline's value and name (field baselines only)."""
    best = {}
    for name, r in track["baselines"].get("field", {}).items():
        for path in METRICS:
            v = metric(r, path)
            if v is not None and (path not in best or v > best[path][0]):
                best[path] = (v, name)
    return best


def _method_rows(track: dict) -> list[list[str]]:
    best = best_baseline(track)
    rows = []
    for name, r in track["results"].items():
        rows.append(
            [NAMES.get(name, name), *(pct(metric(r, p)) for p in METRICS), pct(r["arch_identifiability"])]
        )
    if best:  # results from before the field baselines have none
        rows.append(
            [
                "best no-learning baseline (per column)",
                *(pct(best[p][0]) if p in best else "–" for p in METRICS),
                "",
            ]
        )
    for name, r in track["baselines"].get("field", {}).items():
        rows.append(
            [
                f"{name} (no learning)",
                *(pct(metric(r, p)) for p in METRICS),
                pct(r.get("arch_identifiability")),
            ]
        )
    if "render_then_classify" in track["baselines"]:
        rtc = {"classification": track["baselines"]["render_then_classify"]["accuracy"]}
        rows.append(["render-then-classify (CNN on 4 views)", *(pct(metric(rtc, p)) for p in METRICS), "–"])
    return rows


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def _goals(name: str, track: dict) -> list[str]:
    """The must-reach lines of one track (met or not)."""
    r = track["results"]
    out = [f"Must-reach lines, {name} track:", ""]
    main = r.get("l_rec_con")
    if main:
        c, ret = main["classification"], main["retrieval"]

        def line(what: str, value: float | None, goal: float) -> str:
            met = "met" if value is not None and value >= goal else "**not met**"
            return f"- L_R+C {what}: {pct(value)} % (goal >= {100 * goal:.0f} %): {met}"

        out += [
            line("classification, seen architectures", c["seen"], 0.90),
            line("classification, unseen architectures", c["unseen"], 0.85),
            line("recall@1 between seen architectures", ret["recall@1"]["seen"], 0.80),
            line("recall@1 unseen -> seen", ret["recall@1"]["unseen_to_seen"], 0.60),
        ]
        if "l_rec" in r:
            a, b = main["arch_identifiability"], r["l_rec"]["arch_identifiability"]
            verdict = "less identifiable, as the paper claims" if a < b else "**not** less identifiable"
            out.append(f"- architecture identifiability: L_R+C {pct(a)} % vs L_R {pct(b)} %: {verdict}")
        best = best_baseline(track)
        wins = [METRICS[p] for p in best if (metric(main, p) or 0) > best[p][0]]
        out.append(
            f"- L_R+C beats the best no-learning baseline on {len(wins)} of {len(best)} metrics"
            + (f" ({', '.join(wins)})" if wins else "")
            if best
            else "- no no-learning field baselines in this run (it predates them)"
        )
    if "invariant" in r and best_baseline(track):
        out += _invariant_goals(r["invariant"], best_baseline(track))
    probe = _get(
        track["baselines"].get("field", {}), "field-probe", "retrieval", "recall@1", "unseen_to_seen"
    )
    if name == "independent" and probe is not None:
        ok = "yes" if probe <= 0.5 else "**no**: the captures are too tame"
        out.append(
            f"- the track discriminates: field-probe recall@1 unseen -> seen {pct(probe)} % (<= 50 %): {ok}"
        )
    return out


def _invariant_goals(r: dict, best: dict[str, tuple[float, str]]) -> list[str]:
    """The invariant encoder's must-reach lines against the best no-learning baseline of each metric."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    r1, (b1, m1) = metric(r, "retrieval.recall@1.unseen_to_seen"), best["retrieval.recall@1.unseen_to_seen"]
    goal = max(0.9, 1 - (1 - b1) / 2)  # at most half the baseline's misses
    out = [
        f"- invariant recall@1 unseen -> seen: {pct(r1)} % against {pct(b1)} % ({m1}); goal >= 90 % with at"
        f" most half the baseline's misses (>= {pct(goal)} %): {verdict(r1 >= goal)}"
    ]
    for path in (
        "neighbours.1nn.seen",
        "neighbours.1nn.unseen",
        "neighbours.map_other_objects",
        "neighbours.k_shot.5.seen",
        "neighbours.k_shot.5.unseen",
    ):
        v = metric(r, path)
        if v is None or path not in best:
            continue
        b, m = best[path]
        out.append(
            f"- invariant {METRICS[path]}: {pct(v)} % against {pct(b)} % ({m}); goal >= baseline + 5:"
            f" {verdict(v >= b + 0.05)}"
        )
    for path, goal in (("classification.seen", 0.90), ("classification.unseen", 0.85)):
        v = metric(r, path)
        out.append(
            f"- invariant {METRICS[path]}: {pct(v)} % (goal >= {100 * goal:.0f} %): {verdict(v >= goal)}"
        )
    return out


def _per_arch(track: dict) -> list[str]:
    names = list(track["results"])
    rtc = track["baselines"]["render_then_classify"]["accuracy"]["per_arch"]
    raw = track["baselines"]["raw_weights_knn"]["per_arch"]
    field = track["baselines"].get("field", {})
    rows = []
    for a in PRESETS:
        row = [a, "seen" if a in SEEN else "unseen"]
        row += [pct(track["results"][n]["classification"]["per_arch"].get(a)) for n in names]
        row += [pct(r["classification"]["per_arch"].get(a)) for r in field.values()]
        row += [pct(rtc.get(a)), pct(raw.get(a))]
        rows.append(row)
    head = [
        "arch",
        "",
        *(NAMES.get(n, n) for n in names),
        *field,
        "render-then-classify",
        "raw weights PCA+kNN",
    ]
    return [
        "Top-1 classification by architecture (the protocol's architecture-agnostic classifier):",
        "",
        *_md_table(head, rows),
    ]


def _costs(track: dict) -> list[str]:
    rc = track["baselines"]["render_then_classify"]["seconds_per_nerf"]
    rows = []
    for name, r in track["results"].items():
        ws = r["seconds_per_nerf"]
        parts = ", ".join(f"{k} {1000 * v:.1f}" for k, v in ws.items() if k != "total")
        rows.append([f"{NAMES.get(name, name)} (file -> class)", f"{1000 * ws['total']:.1f}", parts])
    for name, r in track["baselines"].get("field", {}).items():
        rows.append([f"{name} (file -> features)", f"{1000 * r['seconds_per_nerf']['total']:.1f}", ""])
    rows.append(
        [
            "render-then-classify",
            f"{1000 * rc['total']:.1f}",
            f"render {1000 * rc['render']:.1f}, classify {1000 * rc['classify']:.1f}",
        ]
    )
    return [
        "Cost per NeRF at inference (one NeRF at a time):",
        "",
        *_md_table(["method", "ms / NeRF", "breakdown"], rows),
    ]


def _track_section(name: str, track: dict, epochs: int) -> list[str]:
    zoo = track["zoo"]
    lines = [
        f"### Track: {TRACK_TITLES.get(name, name)}",
        "",
        f"Zoo: 13 categories, {zoo['objects']} objects (train {zoo['splits']['train']}, val"
        f" {zoo['splits']['val']}, test {zoo['splits']['test']}), {zoo['nerfs']} NeRFs"
        " (train/val objects in the 3 seen architectures, test objects in all 13), photometric fits of"
        f" {zoo['fit_steps']} steps. Encoders trained {epochs} epochs on the train objects' seen"
        " architectures; the protocol's classifier (MLP 512-256, 150 epochs, AdamW) on train embeddings;"
        " everything measured on the test objects. Metrics in % (DESIGN.md §7; 1-NN, k-shot and class mAP"
        " read the space directly: `evaluation/neighbours.py`).",
        "",
    ]
    if "made_by" in track:  # a track kept from an earlier invocation than the section's command
        made = track["made_by"]
        lines += [
            f"This track was measured by an earlier invocation: `{made['command']}` ({made['date']}).",
            "",
        ]
    other = [
        f"{NAMES.get(n, n)} {info['epochs']} epochs"
        for n, info in track["runs"].items()
        if info.get("epochs", epochs) != epochs
    ]
    if other:
        lines += [f"Runs trained for other lengths: {'; '.join(other)}.", ""]
    head = ["method", *METRICS.values(), "arch. identifiable"]
    lines += _md_table(head, _method_rows(track))
    chance = next(iter(track["results"].values()), {}).get("arch_chance")
    lines += ["", f"Architecture identifiability: chance {pct(chance)} %.", "", *_goals(name, track), ""]
    lines += [*_per_arch(track), "", *_costs(track), ""]
    return lines


def _stages(s: dict) -> list[str]:
    t = s["timings"]
    rows, rates = [], {}
    for name, track in summary_tracks(s).items():
        zt = t.get(f"{name}/zoo") or (t.get("zoo") if name == "aligned" else None)
        if zt:
            rates[name] = 60 * zt["nerfs"] / zt["seconds"]
            rows.append(
                [
                    f"zoo fitting, {name}",
                    f"{zt['seconds'] / 60:.1f} min",
                    f"{zt['nerfs']} NeRFs, {rates[name]:.1f} / min",
                ]
            )
        for n, r in track["runs"].items():
            tt = t.get(f"{name}/train_{n}") or t.get(f"train_{n}", {})
            took = f"{tt['seconds'] / 60:.1f} min" if tt else "–"
            rows.append(
                [f"train {NAMES.get(n, n)}, {name}", took, f"{r['step_seconds']:.2f} s / step (median)"]
            )
    lines = ["### Building and training", "", *_md_table(["stage", "wall time", "rate"], rows), ""]
    if len(rates) == 2:
        ratio = rates["independent"] / rates["aligned"]
        lines += [f"Fitting rate, independent / aligned captures (same run): {ratio:.2f}.", ""]
    return [*lines, f"Peak memory of the benchmark process: {s['peak_memory_mb']:.0f} MB.", ""]


def _seeds(summaries: list[dict], run: str) -> list[str]:
    """One row per seed and track that trained ``run``."""
    rows = []
    for x in summaries:
        for name, track in summary_tracks(x).items():
            r = track["results"].get(run)
            if not r:
                continue
            best = best_baseline(track)
            probe = best.get("retrieval.recall@1.unseen_to_seen")
            rows.append(
                [
                    str(x["config"]["seed"]),
                    name,
                    x.get("date", ""),
                    str(x["config"]["objects_per_class"]),
                    pct(r["classification"]["seen"]),
                    pct(r["classification"]["unseen"]),
                    pct(r["retrieval"]["recall@1"]["seen"]),
                    pct(r["retrieval"]["recall@1"]["unseen_to_seen"]),
                    f"{pct(probe[0])} ({probe[1]})" if probe else "–",
                    pct(track["baselines"]["render_then_classify"]["accuracy"]["seen"]),
                ]
            )
    head = [
        "seed",
        "track",
        "date",
        "objects / class",
        "class. seen %",
        "class. unseen %",
        "R@1 seen %",
        "R@1 unseen->seen %",
        "best no-learning R@1 unseen->seen %",
        "render-then-classify, seen %",
    ]
    if not rows:
        return []
    title = f"### Seeds (fresh objects, fits and trainings per seed), {NAMES.get(run, run)}"
    return [title, "", *_md_table(head, rows), ""]


def benchmark_markdown(summaries: list[dict]) -> list[str]:
    """Markdown lines for BENCHMARKS.md: the first summary in full, per track; all seeds compared."""
    s = summaries[0]
    cfg = s["config"]
    tracks = f" --tracks {','.join(cfg['tracks'])}" if "tracks" in cfg else ""
    lines = [
        "## Evaluation benchmark (DESIGN.md §7)",
        "",
        f"`nerfspace benchmark --objects-per-class {cfg['objects_per_class']} --fit-steps {cfg['fit_steps']}"
        f" --epochs {cfg['epochs']} --seed {cfg['seed']}{tracks}` ({s.get('date', '')},"
        f" {s['machine']['cpu']}, torch {s['machine']['torch']}, {s['machine']['threads']} threads).",
        "",
        f"Goals: {GOALS}.",
        "",
    ]
    for name, track in summary_tracks(s).items():
        lines += _track_section(name, track, cfg["epochs"])
    lines += _stages(s)
    if len(summaries) > 1:
        lines += _seeds(summaries, "l_rec_con") + _seeds(summaries, "invariant")
    return lines


def write_overview(path: Path, title: str, tracks: dict[str, dict], galleries: dict[str, list[dict]]) -> Path:
    """An HTML page: per track the method x metric table (the best no-learning baseline beside the learned
    methods), its must-reach lines and a retrieval gallery (``galleries[track]``: retrieval examples)."""
    body = [f"<h1>{escape(title)}</h1>"]
    for name, track in tracks.items():
        body.append(f"<h2>Track: {escape(TRACK_TITLES.get(name, name))}</h2>")
        body.append(table(["method", *METRICS.values(), "arch. identifiable"], _method_rows(track)))
        items = "".join(f"<li>{escape(g[2:])}</li>" for g in _goals(name, track) if g.startswith("- "))
        body.append(f"<ul>{items}</ul>")
        if galleries.get(name):
            body.append(
                "<p>L_R+C retrieval: queries in unseen architectures, gallery the seen architectures'"
                " test NeRFs, each rendered from the same camera (in the independent track every NeRF is in"
                " its own frame); green: the query's own object.</p>"
            )
            body.append(image(figures.retrieval_gallery(galleries[name]), f"retrieval gallery, {name}"))
    atomic_write_bytes(Path(path), page(title, body))
    return Path(path)

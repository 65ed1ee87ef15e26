"""The benchmark's Markdown: every table of the protocol from one or more benchmark summaries
(one per seed), as written to BENCHMARKS.md."""

from __future__ import annotations

from nerfspace.archs import PRESETS, SEEN

NAMES = {
    "l_rec": "L_R",
    "l_con": "L_C",
    "l_rec_con": "L_R+C",
    "paper_recipe": "paper recipe (L_R+C, paper encoder)",
}
GOALS = "classification >= 90 % seen, >= 85 % unseen; recall@1 >= 80 % seen pairs, >= 60 % unseen -> seen"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _methods(s: dict) -> list[list[str]]:
    rows = []
    for name, r in s["results"].items():
        c, ret = r["classification"], r["retrieval"]
        rows.append(
            [
                NAMES.get(name, name),
                _pct(c["seen"]),
                _pct(c["unseen"]),
                _pct(ret["recall@1"]["seen"]),
                _pct(ret["recall@1"]["unseen_to_seen"]),
                _pct(ret["recall@5"]["unseen_to_seen"]),
                _pct(ret["recall@10"]["unseen_to_seen"]),
                _pct(ret["map"]),
                f"{_pct(r['arch_identifiability'])} (chance {_pct(r['arch_chance'])})",
            ]
        )
    rtc = s["baselines"]["render_then_classify"]["accuracy"]
    rows.append(["render-then-classify (CNN on 4 views)", _pct(rtc["seen"]), _pct(rtc["unseen"])] + ["–"] * 6)
    return rows


def _goals(s: dict) -> list[str]:
    """The issue's must-reach lines, measured on this summary (met or not)."""
    r = s["results"]
    main = r.get("l_rec_con")
    if not main:
        return []
    c, ret = main["classification"], main["retrieval"]

    def line(what: str, value: float | None, goal: float) -> str:
        met = "met" if value is not None and value >= goal else "**not met**"
        return f"- {what}: {_pct(value)} % (goal >= {100 * goal:.0f} %): {met}"

    out = [
        "Must-reach lines, L_R+C:",
        "",
        line("classification, seen architectures", c["seen"], 0.90),
        line("classification, unseen architectures", c["unseen"], 0.85),
        line("recall@1 between seen architectures", ret["recall@1"]["seen"], 0.80),
        line("recall@1 unseen -> seen", ret["recall@1"]["unseen_to_seen"], 0.60),
    ]
    if "l_rec" in r:
        a, b = main["arch_identifiability"], r["l_rec"]["arch_identifiability"]
        verdict = "less identifiable, as the paper claims" if a < b else "**not** less identifiable"
        out.append(f"- architecture identifiability: L_R+C {_pct(a)} % vs L_R {_pct(b)} %: {verdict}")
    best = max(
        [v["classification"]["seen"] or 0 for v in r.values()]
        + [s["baselines"]["render_then_classify"]["accuracy"]["seen"] or 0]
    )
    out.append(
        f"- the benchmark discriminates (not every method >= 98 %): best seen-architecture accuracy"
        f" {_pct(best)} %: {'yes' if best < 0.98 else '**no**'}"
    )
    return out


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def benchmark_markdown(summaries: list[dict]) -> list[str]:
    """Markdown lines for BENCHMARKS.md: the first summary in full, the others (other seeds) compared."""
    s = summaries[0]
    cfg, zoo, t = s["config"], s["zoo"], s["timings"]
    lines = [
        "## Evaluation benchmark (DESIGN.md §7)",
        "",
        f"`nerfspace benchmark --objects-per-class {cfg['objects_per_class']} --fit-steps {cfg['fit_steps']}"
        f" --epochs {cfg['epochs']} --seed {cfg['seed']}` ({s.get('date', '')}, {s['machine']['cpu']},"
        f" torch {s['machine']['torch']}, {s['machine']['threads']} threads).",
        "",
        f"Zoo: 13 categories, {zoo['objects']} objects (train {zoo['splits']['train']}, val"
        f" {zoo['splits']['val']}, test {zoo['splits']['test']}), {zoo['nerfs']} NeRFs"
        " (train/val objects in the 3 seen architectures, test objects in all 13), photometric fits of"
        f" {zoo['fit_steps']} steps."
        f" Encoders trained {cfg['epochs']} epochs on the train objects' seen architectures; classifiers"
        " (MLP 512-256, 150 epochs, AdamW) on their train embeddings; everything measured on the test"
        " objects.",
        "",
        f"Goals: {GOALS}.",
        "",
    ]
    lines += _table(
        [
            "method",
            "class. seen %",
            "class. unseen %",
            "R@1 seen pairs %",
            "R@1 unseen->seen %",
            "R@5 unseen->seen %",
            "R@10 unseen->seen %",
            "class mAP %",
            "arch. identifiable %",
        ],
        _methods(s),
    )
    lines += ["", *_goals(s)]
    lines += [
        "",
        "Top-1 classification by architecture (architecture-agnostic classifier; test objects):",
        "",
    ]
    names = list(s["results"])
    rtc = s["baselines"]["render_then_classify"]["accuracy"]["per_arch"]
    raw = s["baselines"]["raw_weights_knn"]["per_arch"]
    rows = []
    for a in PRESETS:
        row = [a, "seen" if a in SEEN else "unseen"]
        row += [_pct(s["results"][n]["classification"]["per_arch"].get(a)) for n in names]
        row += [_pct(rtc.get(a)), _pct(raw.get(a))]
        own = s["results"].get("l_rec_con", {}).get("classification", {}).get("per_arch_classifier", {})
        row.append(_pct(own.get(a)))
        rows.append(row)
    lines += _table(
        [
            "arch",
            "",
            *(NAMES.get(n, n) for n in names),
            "render-then-classify",
            "raw weights PCA+kNN",
            "L_R+C, own-arch classifier",
        ],
        rows,
    )
    rc = s["baselines"]["render_then_classify"]["seconds_per_nerf"]
    ws = s["results"].get("l_rec_con", next(iter(s["results"].values())))["seconds_per_nerf"]
    zt = t.get("zoo", {})
    lines += [
        "",
        "Cost per NeRF at inference (one NeRF at a time, from its file):",
        "",
        *_table(
            ["method", "ms / NeRF", "breakdown"],
            [
                [
                    "weight space (L_R+C encoder)",
                    f"{1000 * ws['total']:.1f}",
                    ", ".join(f"{k} {1000 * v:.1f}" for k, v in ws.items() if k != "total"),
                ],
                [
                    "render-then-classify",
                    f"{1000 * rc['total']:.1f}",
                    f"render {1000 * rc['render']:.1f}, classify {1000 * rc['classify']:.1f}",
                ],
            ],
        ),
        "",
        f"Weight-space classification is **{rc['total'] / ws['total']:.1f}x** faster per NeRF than"
        " render-then-classify (goal >= 20x).",
        "",
        "Training and building:",
        "",
    ]
    rows = []
    if zt:
        rows.append(
            [
                "zoo fitting",
                f"{zt['seconds'] / 60:.1f} min",
                f"{zt['nerfs']} NeRFs, {60 * zt['nerfs'] / zt['seconds']:.1f} / min",
            ]
        )
    for n, r in s["runs"].items():
        tt = t.get(f"train_{n}", {})
        took = f"{tt['seconds'] / 60:.1f} min" if tt else "–"
        rows.append([f"train {NAMES.get(n, n)}", took, f"{r['step_seconds']:.2f} s / step (median)"])
    lines += _table(["stage", "wall time", "rate"], rows)
    lines += ["", f"Peak memory of the benchmark process: {s['peak_memory_mb']:.0f} MB.", ""]
    if len(summaries) > 1:
        lines += ["Seeds (fresh objects, fits and trainings per seed), L_R+C:", ""]
        rows = []
        for x in summaries:
            r = x["results"].get("l_rec_con")
            if r:
                rows.append(
                    [
                        str(x["config"]["seed"]),
                        x.get("date", ""),
                        str(x["config"]["objects_per_class"]),
                        _pct(r["classification"]["seen"]),
                        _pct(r["classification"]["unseen"]),
                        _pct(r["retrieval"]["recall@1"]["seen"]),
                        _pct(r["retrieval"]["recall@1"]["unseen_to_seen"]),
                        _pct(x["baselines"]["render_then_classify"]["accuracy"]["seen"]),
                    ]
                )
        head = [
            "seed",
            "date",
            "objects / class",
            "class. seen %",
            "class. unseen %",
            "R@1 seen %",
            "R@1 unseen->seen %",
            "render-then-classify, seen %",
        ]
        lines += _table(head, rows)
        lines.append("")
    return lines

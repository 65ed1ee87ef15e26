"""The evaluation report: one self-contained ``report.html`` (figures inlined as PNG) plus the same
figures as files in ``figures/``."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from nerfspace.archs import PRESETS, SEEN
from nerfspace.atomic import atomic_write_bytes
from nerfspace.report import figures


def pct(v: float | None) -> str:
    """A fraction as a percent with one decimal; '–' for a value not measured."""
    return "–" if v is None else f"{100 * v:.1f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table of escaped strings."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def headline_rows(results: dict) -> list[list[str]]:
    """The headline table (also printed by the CLI): metric, value in %."""
    c, r = results["classification"], results["retrieval"]
    rows = [
        ["classification, seen architectures", pct(c["seen"])],
        ["classification, unseen architectures", pct(c["unseen"])],
    ]
    for k in (1, 5, 10):
        rows += [
            [f"retrieval recall@{k}, seen pairs", pct(r[f"recall@{k}"]["seen"])],
            [f"retrieval recall@{k}, unseen -> seen", pct(r[f"recall@{k}"]["unseen_to_seen"])],
        ]
    nb = results.get("neighbours")
    if nb:  # the metrics read off the space itself, no trained head
        rows += [[f"1-NN classification, {k} architectures", pct(nb["1nn"][k])] for k in ("seen", "unseen")]
        rows += [
            [
                f"{k}-shot classification (nearest class mean), unseen architectures",
                pct((v or {}).get("unseen")),
            ]
            for k, v in nb["k_shot"].items()
        ]
        rows.append(["class mAP over other objects", pct(nb["map_other_objects"])])
    rows += [
        ["class-level mAP", pct(r["map"])],
        [
            f"architecture identifiability (chance {pct(results['arch_chance'])})",
            pct(results["arch_identifiability"]),
        ],
    ]
    return rows


def _sections(results: dict) -> list[tuple[str, str]]:
    c, r = results["classification"], results["retrieval"]
    archs = [a for a in PRESETS if a in c["per_arch"]]
    per_arch = table(
        ["architecture", "seen?", "agnostic classifier %", "own classifier %"],
        [
            [
                a,
                "seen" if a in SEEN else "unseen",
                pct(c["per_arch"][a]),
                pct(c["per_arch_classifier"].get(a)),
            ]
            for a in archs
        ],
    )
    pairs = r["pairs"]
    matrix = table(
        ["query \\ gallery", *archs],
        [[a] + [pct(pairs[f"{a}->{b}"]["1"]) if f"{a}->{b}" in pairs else "" for b in archs] for a in archs],
    )
    out = [
        ("Headline (%)", table(["metric", "value"], headline_rows(results))),
        ("Classification by architecture (top-1 %, test split)", per_arch),
        ("Instance retrieval recall@1 (%) for every architecture pair", matrix),
    ]
    if "baselines" in results:
        b = results["baselines"]
        rows = [[name, pct(v["seen"]), pct(v["unseen"]), v.get("note", "")] for name, v in b.items()]
        out.append(("Baselines (classification top-1 %)", table(["method", "seen", "unseen", "note"], rows)))
    if "seconds_per_nerf" in results:
        s = results["seconds_per_nerf"]
        rows = [[k, f"{1000 * v:.1f}"] for k, v in s.items()]
        out.append(("Weight-space classification cost (ms per NeRF)", table(["stage", "ms"], rows)))
    return out


def write_report(out: Path, results: dict, title: str = "nerfspace evaluation") -> Path:
    """Write ``out/report.html`` and ``out/figures/*.png``; returns the report's path."""
    out = Path(out)
    m, c = results["map"], results["classification"]
    pngs = {
        "map_category": figures.embedding_map(m["xy"], m["category"], "test embeddings (t-SNE) by category"),
        "map_architecture": figures.embedding_map(
            m["xy"], m["preset"], "test embeddings (t-SNE) by architecture"
        ),
        "confusion_seen": figures.confusion(c["confusion"]["seen"], c["labels"], "seen architectures"),
        "confusion_unseen": figures.confusion(c["confusion"]["unseen"], c["labels"], "unseen architectures"),
    }
    if results["examples"]:
        pngs["retrieval_gallery"] = figures.retrieval_gallery(results["examples"])
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for name, data in pngs.items():
        atomic_write_bytes(out / "figures" / f"{name}.png", data)

    def img(name: str) -> str:
        return image(pngs[name], name) if name in pngs else ""

    body = [f"<h1>{html.escape(title)}</h1>"]
    n, enc = results["n"], html.escape(str(results["encoder"]))
    body.append(f"<p>{n['test']} test NeRFs in {len(n['archs'])} architectures; encoder {enc}.</p>")
    for heading, content in _sections(results):
        body.append(f"<h2>{html.escape(heading)}</h2>{content}")
    body.append(f"<h2>Embedding maps</h2>{img('map_category')}{img('map_architecture')}")
    body.append("<h2>Confusion matrices (architecture-agnostic classifier)</h2>")
    body.append(img("confusion_seen") + img("confusion_unseen"))
    body.append(
        "<h2>Retrieval gallery</h2><p>Queries in unseen architectures, gallery: the seen architectures'"
        " test NeRFs; green: the query's own object.</p>" + img("retrieval_gallery")
    )
    path = out / "report.html"
    atomic_write_bytes(path, page(title, body))
    return path


def image(png: bytes, alt: str) -> str:
    """A PNG inlined as an <img>."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def page(title: str, body: list[str]) -> bytes:
    """A self-contained HTML page of ``body`` fragments under the heading ``title``."""
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%;margin:4px}"
    )
    head = f"<meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(body)}</body></html>".encode()

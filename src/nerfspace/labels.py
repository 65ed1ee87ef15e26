"""A user's own labels: a CSV with a ``label`` column and a ``file`` column (NeRF files, relative to the
CSV's folder or absolute) or an ``object`` column (every NeRF of the object), matched against the items
of an embeddings file."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from nerfspace.errors import InputError

MAX_ROWS = 1_000_000


def _key(value: str, column: str, base: Path) -> str:
    """A file resolved against ``base`` (an object name as it is)."""
    return str((base / value).resolve()) if column == "file" else value


def read_labels(path: Path, items: Sequence[dict], among: str = "the embeddings") -> dict[int, str]:
    """Row index of ``items`` -> label, for the items the CSV at ``path`` names; every name must match
    (``among`` names the items in the error)."""
    path = Path(path)
    rows = []
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):  # read row by row: a huge file is refused at the cap
                if len(rows) == MAX_ROWS:
                    raise InputError(f"{path}: more than {MAX_ROWS} rows")
                rows.append(row)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: not a readable labels CSV ({e})") from e
    header = set(rows[0]) if rows else set()
    column = next((c for c in ("file", "object") if c in header), None)
    if "label" not in header or column is None:
        raise InputError(f"{path}: a labels CSV needs a label column and a file or object column")
    index: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        index.setdefault(_key(str(it[column]), column, Path.cwd()), []).append(i)
    out: dict[int, str] = {}
    unknown = []
    for n, row in enumerate(rows, start=2):
        name, label = (row.get(column) or "").strip(), (row.get("label") or "").strip()
        if not name or not label:
            raise InputError(f"{path}, line {n}: empty {column} or label")
        rows_of = index.get(_key(name, column, path.parent))
        if rows_of is None:
            unknown.append(name)
            continue
        for i in rows_of:
            if out.setdefault(i, label) != label:
                raise InputError(f"{path}, line {n}: {name} is labelled both {out[i]!r} and {label!r}")
    if unknown:
        shown = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
        raise InputError(f"{path}: {len(unknown)} {column}(s) not in {among}: {shown}"[:300])
    return out

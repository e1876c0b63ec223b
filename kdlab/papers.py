"""The papers' published numbers, kept once in papers.json beside this file.

Read by notebooks 01, 04 and 05 (our results beside the paper's), by the book's results page
(kdlab.tools.book) and named by the parameter files of the full runs. Each entry has a
`source` (paper, setting, unit), a `cite` key of book/references.bib, `columns` and `rows`,
the `decimals` the paper prints, and sometimes a `note`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

PAPERS_FILE = Path(__file__).with_name("papers.json")


@lru_cache(maxsize=None)
def _all() -> dict:
    return json.loads(PAPERS_FILE.read_text())


def entry(name: str) -> dict:
    """One table of papers.json: source, cite, columns, rows (and note, if any)."""
    if name not in _all():
        raise KeyError(f"no paper table {name!r}; papers.json has {sorted(_all())}")
    return _all()[name]


def table(name: str):
    """The table as a pandas DataFrame indexed by its first column."""
    import pandas as pd

    e = entry(name)
    return pd.DataFrame(e["rows"], columns=e["columns"]).set_index(e["columns"][0])


def markdown(name: str) -> str:
    """The table as Markdown with its source line (and note), for the book."""
    e = entry(name)
    lines = [f"{e['source']} {{cite}}`{e['cite']}`:", "",
             "| " + " | ".join(e["columns"]) + " |", "|" + "---|" * len(e["columns"])]
    digits = e.get("decimals", 2)
    lines += ["| " + " | ".join(f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row)
              + " |" for row in e["rows"]]
    if e.get("note"):
        lines += ["", e["note"]]
    return "\n".join(lines)

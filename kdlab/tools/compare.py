"""Which numbers moved? A run's results against the committed notebooks' results.

    python -m kdlab.tools.compare runs/cpu [--against notebooks/] [--tolerance 0.02]

Every committed notebook carries the results record it saved (kdlab.runtime.notebook.save_results,
in its outputs' metadata); a course run writes the same record to <run folder>/<notebook>.json.
This lines the two up number by number (lists of per-model records are matched by position)
and prints, per notebook, how many numbers were compared and which moved by more than
`tolerance` (absolute, or relative for numbers above 1), and which computed verdicts
(kdlab.verdicts.OUTCOMES, and older records' "not resolved") changed -- the check that a fresh
clone reproduces what the notebooks show, e.g. after a new torch release or on another machine.

What could not be compared is never counted as unmoved: a number or verdict on one side only,
a number that is null (a NaN when saved) or NaN on one side only, and a notebook with a record
on one side only (a run that skipped it, a notebook whose outputs were cleared) are listed and
counted in the summary line, and the exit status is then 1. Null on both sides (a number the
notebook leaves undefined, such as a teacher's seed) agrees.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ..runtime.files import PROJECT_ROOT
from ..runtime.notebook import NotebookFileError
from ..verdicts import OUTCOMES
from .book import BookError, embedded_records, find_notebooks, run_folder_records


def numbers(value, prefix: str = "") -> dict[str, float]:
    """Every number in a nested record, keyed by its path ('mean / kd / detectors'); a null
    (how a NaN is saved) is NaN."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return {prefix: float(value) if is_number else math.nan} if is_number or value is None else {}
    found = {}
    for key, inner in items:
        found.update(numbers(inner, f"{prefix} / {key}" if prefix else str(key)))
    return found


VERDICTS = (*OUTCOMES, "not resolved")  # kdlab.verdicts.Verdict.verdict; "not resolved": older records


def verdicts(value, prefix: str = "") -> dict[str, str]:
    """Every verdict in a nested record, keyed by its path, like `numbers`."""
    if isinstance(value, (dict, list)):
        items = value.items() if isinstance(value, dict) else ((str(i), v) for i, v in enumerate(value))
        found = {}
        for key, inner in items:
            found.update(verdicts(inner, f"{prefix} / {key}" if prefix else str(key)))
        return found
    return {prefix: value} if isinstance(value, str) and value in VERDICTS else {}


TIMINGS = ("seconds", "wall_time", "images_per_s")  # how fast, not what: never compared


def moved(before: dict[str, float], after: dict[str, float], tolerance: float) -> list[tuple]:
    """(path, before, after) for the numbers present in both whose difference exceeds tolerance
    (timings left out)."""
    out = []
    for path in sorted(comparable(before) & comparable(after)):
        a, b = before[path], after[path]
        if math.isnan(a) and math.isnan(b):
            continue
        scale = max(1.0, abs(a))
        if not abs(a - b) <= tolerance * scale:  # NaN against a number counts as moved
            out.append((path, a, b))
    return out


def comparable(found: dict[str, float]) -> set[str]:
    return {path for path in found if not any(t in path for t in TIMINGS)}


def unmatched(before: dict, after: dict) -> list[tuple[str, str]]:
    """(path, why) for what cannot be compared between two flattened records: a path on one
    side only, or a number that is NaN (null) on one side only."""
    def nan(found, path):
        return isinstance(found[path], float) and math.isnan(found[path])

    out = [(path, "only in the committed record") for path in sorted(before.keys() - after.keys())]
    out += [(path, "only in the run") for path in sorted(after.keys() - before.keys())]
    for path in sorted(before.keys() & after.keys()):
        if nan(before, path) != nan(after, path):
            side, other = (("the run", before[path]) if nan(after, path)
                           else ("the committed record", after[path]))
            out.append((path, f"null or NaN in {side}, {other:.4g} in the other"))
    return out


def compare_records(before: dict, after: dict, tolerance: float) -> dict:
    """One notebook's comparison of its committed metrics (`before`) with a run's (`after`)."""
    b, a = ({path: found[path] for path in comparable(found)}  # timings left out
            for found in (numbers(before), numbers(after)))
    said, says = verdicts(before), verdicts(after)
    skipped = unmatched(b, a) + unmatched(said, says)
    skip = {path for path, _ in skipped}
    both = sorted(b.keys() & a.keys() - skip)
    return {"compared": len(both),
            "moved": moved({k: b[k] for k in both}, {k: a[k] for k in both}, tolerance),
            "verdicts": len(said.keys() & says.keys()),
            "changed": [(k, said[k], says[k]) for k in sorted(said.keys() & says.keys())
                        if said[k] != says[k]],
            "not_compared": skipped, "no_record": None}


def no_record(why: str) -> dict:
    """The report of a notebook with a results record on one side only."""
    return {"compared": 0, "moved": [], "verdicts": 0, "changed": [], "not_compared": [],
            "no_record": why}


def compare(run: Path, committed: Path, tolerance: float = 0.02) -> dict[str, dict]:
    """{notebook: {"compared": n, "moved": [(path, committed, run), ...], "verdicts": n,
    "changed": [(path, committed verdict, run verdict), ...], "not_compared": [(path, why),
    ...], "no_record": None or why the notebook has a record on one side only}}."""
    notebooks, report = find_notebooks(committed), {}
    ours = {r["notebook"]: r["metrics"] for r in run_folder_records(run, {nb.stem for nb in notebooks})}
    for nb in notebooks:
        records = embedded_records(nb)
        if records and nb.stem in ours:
            report[nb.stem] = compare_records(records[-1]["metrics"], ours[nb.stem], tolerance)
        elif records:
            report[nb.stem] = no_record(f"no {nb.stem}.json in {run} (not run, or it failed)")
        elif nb.stem in ours:
            report[nb.stem] = no_record(f"{nb} holds no results record (were its outputs "
                                        "cleared?); compare against executed notebooks")
    for stem in sorted(ours.keys() - {nb.stem for nb in notebooks}):
        report[stem] = no_record(f"no notebook {stem}.ipynb in {committed}")
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a course run folder (runs/<params name>)")
    parser.add_argument("--against", type=Path, default=PROJECT_ROOT / "notebooks",
                        help="folder of executed notebooks to compare with (default: the committed ones)")
    parser.add_argument("--tolerance", type=float, default=0.02)
    args = parser.parse_args(argv)
    try:
        report = compare(args.run, args.against, args.tolerance)
    except (BookError, NotebookFileError) as err:
        print(f"kdlab.tools.compare: {err}", file=sys.stderr)
        return 1
    if not report:
        print(f"nothing to compare: no notebook has results in {args.run} or {args.against}")
        return 1
    for name, r in report.items():
        print_notebook(name, r, args.tolerance)
    print(summary_line(report))
    return 1 if not_compared(report) != (0, 0) else 0


def print_notebook(name: str, r: dict, tolerance: float) -> None:
    if r["no_record"]:
        print(f"{name}: NOT COMPARED: {r['no_record']}")
        return
    skipped = f"; {len(r['not_compared'])} could not be compared" if r["not_compared"] else ""
    print(f"{name}: {len(r['moved'])} of {r['compared']} numbers moved by more than {tolerance:g}{skipped}")
    for path, a, b in r["moved"]:
        print(f"    {path}: {a:.4g} -> {b:.4g}")
    if r["verdicts"]:
        print(f"{name}: {len(r['changed'])} of {r['verdicts']} verdicts changed")
    for path, a, b in r["changed"]:
        print(f"    {path}: {a} -> {b}")
    for path, why in r["not_compared"]:
        print(f"    {path}: {why}")


def not_compared(report: dict) -> tuple[int, int]:
    """(numbers and verdicts, notebooks) that could not be compared."""
    return (sum(len(r["not_compared"]) for r in report.values()),
            sum(bool(r["no_record"]) for r in report.values()))


def summary_line(report: dict) -> str:
    total = sum(r["compared"] for r in report.values())
    n_moved = sum(len(r["moved"]) for r in report.values())
    n_changed = sum(len(r["changed"]) for r in report.values())
    line = (f"{n_moved} of {total} numbers moved; "
            f"{n_changed} of {sum(r['verdicts'] for r in report.values())} verdicts changed.")
    values, notebooks = not_compared(report)
    if values or notebooks:
        line += (f" NOT COMPARED (listed above): numbers or verdicts: {values}, notebooks: "
                 f"{notebooks}; the comparison is incomplete.")
    return line

if __name__ == "__main__":
    sys.exit(main())

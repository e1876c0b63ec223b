"""Which numbers moved? A run's results against the committed notebooks' results.

    python -m kdlab.tools.compare runs/cpu [--against notebooks/] [--tolerance 0.02]

Every committed notebook carries the results record it saved (kdlab.notebook.save_results,
in its outputs' metadata); a course run writes the same record to <run folder>/<notebook>.json.
This lines the two up number by number (lists of per-model records are matched by position)
and prints, per notebook, how many numbers were compared and which moved by more than
`tolerance` (absolute, or relative for numbers above 1), and which computed verdicts
(kdlab.verdicts: shown, opposite, not resolved) changed -- the check that a fresh clone
reproduces what the notebooks show, e.g. after a new torch release or on another machine.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ..files import PROJECT_ROOT
from .book import embedded_records, find_notebooks, run_folder_records


def numbers(value, prefix: str = "") -> dict[str, float]:
    """Every number in a nested record, keyed by its path ('mean / kd / detectors')."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return {prefix: float(value)} if is_number else {}
    found = {}
    for key, inner in items:
        found.update(numbers(inner, f"{prefix} / {key}" if prefix else str(key)))
    return found


VERDICTS = ("shown", "opposite", "not resolved")  # kdlab.verdicts.Verdict.verdict


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


def compare(run: Path, committed: Path, tolerance: float = 0.02) -> dict[str, dict]:
    """{notebook: {"compared": n, "moved": [(path, committed, run), ...], "verdicts": n,
    "changed": [(path, committed verdict, run verdict), ...]}}."""
    ours = {r["notebook"]: r["metrics"] for r in run_folder_records(run)}
    report = {}
    for nb in find_notebooks(committed):
        records = embedded_records(nb)
        if not records or nb.stem not in ours:
            continue
        before, after = numbers(records[-1]["metrics"]), numbers(ours[nb.stem])
        said, says = verdicts(records[-1]["metrics"]), verdicts(ours[nb.stem])
        report[nb.stem] = {"compared": len(comparable(before) & comparable(after)),
                           "moved": moved(before, after, tolerance),
                           "verdicts": len(said.keys() & says.keys()),
                           "changed": [(k, said[k], says[k]) for k in sorted(said.keys() & says.keys())
                                       if said[k] != says[k]]}
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a course run folder (runs/<params name>)")
    parser.add_argument("--against", type=Path, default=PROJECT_ROOT / "notebooks",
                        help="folder of executed notebooks to compare with (default: the committed ones)")
    parser.add_argument("--tolerance", type=float, default=0.02)
    args = parser.parse_args(argv)
    report = compare(args.run, args.against, args.tolerance)
    if not report:
        print(f"nothing to compare: no notebook has results in both {args.run} and {args.against}")
        return 1
    total = sum(r["compared"] for r in report.values())
    n_moved = sum(len(r["moved"]) for r in report.values())
    for name, r in report.items():
        print(f"{name}: {len(r['moved'])} of {r['compared']} numbers moved by more than {args.tolerance:g}")
        for path, a, b in r["moved"]:
            print(f"    {path}: {a:.4g} -> {b:.4g}")
        if r["verdicts"]:
            print(f"{name}: {len(r['changed'])} of {r['verdicts']} verdicts changed")
        for path, a, b in r["changed"]:
            print(f"    {path}: {a} -> {b}")
    n_changed = sum(len(r["changed"]) for r in report.values())
    print(f"{n_moved} of {total} numbers moved; "
          f"{n_changed} of {sum(r['verdicts'] for r in report.values())} verdicts changed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

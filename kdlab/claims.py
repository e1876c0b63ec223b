"""The claims each notebook tests (02, 04, 05, 06), fixed in params/claims.yaml before the runs,
decided from a per-seed table. `decide` is the one place kdlab.verdicts' rule is applied:
manipulation checks first (one passes, `shown`, only if its interval lies beyond its margin on the
claimed side; a claim whose check failed is `not testable`), then the one or two primary claims
together at Holm's levels, then every other claim (exploratory, matched) on its own. A claim whose
kinds or statistic the table lacks is left out: the run had no such experiment. `record` saves a
decision in a notebook's results, `recompute` makes it again; `gather`, `beside` show runs together.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from . import verdicts as v
from .runtime.files import PROJECT_ROOT
from .runtime.notebook import did_you_mean

PATH = PROJECT_ROOT / "params" / "claims.yaml"
TOP = {"written", "changes", "level", "runs", "notebooks"}
REQUIRED = ("id", "text", "role", "statistic", "a", "b", "direction")
OPTIONAL = {"margin": 0.0, "check": None, "needs": {}, "prediction": ""}
ROLES = ("primary", "exploratory", "check", "matched")
COLUMNS = ["claim", "role", "statistic", "a", "b", "direction", "margin", "n", "mean", "low", "high",
           "p", "level", "verdict", "reason", "run"]
_LOADED: dict = {}


class ClaimsError(ValueError):
    """The claims file breaks its schema; the message names the file and the claim."""


def load(path=None) -> dict:
    """The validated claims file (default PATH), read again when it changes."""
    import yaml

    path = Path(path or PATH)
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _LOADED:
        _LOADED[key] = _validate(yaml.safe_load(path.read_text()) or {}, path)
    return _LOADED[key]


def _validate(data: dict, path: Path) -> dict:
    def fail(where, what):
        raise ClaimsError(f"{path}: {where}: {what}")

    def number(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    if not isinstance(data, dict) or set(data) - TOP or "notebooks" not in data:
        fail("top level", f"a mapping with the keys {sorted(TOP)} ('notebooks' required) expected")
    data = {"level": 0.95, "changes": [], "written": None, **data}
    data["runs"] = {"pilot": "cpu", "confirmatory": "evidence", **(data.get("runs") or {})}
    seen = set()
    for nb, entry in data["notebooks"].items():
        if not isinstance(entry, dict) or set(entry) - {"seeds", "claims"}:
            fail(nb, "a mapping with the keys 'seeds' and 'claims' expected")
        seeds, claims = entry.setdefault("seeds", {}), entry.setdefault("claims", [])
        if not all(isinstance(s, list) and all(isinstance(i, int) for i in s) for s in seeds.values()):
            fail(nb, f"seeds must be lists of integers per run, got {seeds}")
        pilot, confirmatory = seeds.get("pilot", []), seeds.get("confirmatory")
        if confirmatory is not None and confirmatory[:len(pilot)] != pilot:
            fail(nb, f"the pilot seeds {pilot} are not the first confirmatory seeds {confirmatory}")
        for c in claims:
            if not isinstance(c, dict):
                fail(f"{nb}, claim {c!r}", "a mapping expected")
            c.update({k: d for k, d in OPTIONAL.items() if c.get(k) is None})
            role, direction, margin, needs = c.get("role"), c.get("direction"), c["margin"], c["needs"]
            unknown = sorted(set(c) - set(REQUIRED) - set(OPTIONAL))
            wrong = [what for what, bad in {
                f"unknown keys {unknown}": unknown,
                f"missing keys {[k for k in REQUIRED if k not in c]}": set(REQUIRED) - set(c),
                "its id is used twice": c.get("id") in seen,
                f"role must be one of {ROLES}": role not in ROLES,
                f"direction must be one of {v.DIRECTIONS}": direction not in v.DIRECTIONS,
                "margin must be a number >= 0, > 0 for 'equal'":
                    not number(margin) or margin < 0 or direction == "equal" and not margin,
                "a matched claim has direction 'equal', a check has not":
                    (role == "matched") != (direction == "equal") and role in ("matched", "check"),
                "needs may only say how many teachers":
                    not isinstance(needs, dict) or set(needs) - {"teachers"},
                "a must be a kind, b a kind or a number":
                    not isinstance(c.get("a"), str) or not (isinstance(c.get("b"), str) or number(c.get("b"))),
            }.items() if bad]
            if wrong:
                fail(f"{nb}, claim {c.get('id')!r}", "; ".join(wrong))
            seen.add(c["id"])
        roles = {c["id"]: c["role"] for c in claims}
        if sum(r == "primary" for r in roles.values()) > 2:
            fail(nb, f"at most 2 primary claims, got {[i for i, r in roles.items() if r == 'primary']}")
        for c in claims:
            if c["check"] is not None and roles.get(c["check"]) != "check":
                fail(f"{nb}, claim {c['id']}", f"check {c['check']!r} is no check claim of this notebook"
                     + did_you_mean(c["check"], [i for i, r in roles.items() if r == "check"]))
    return data


def _notebook(notebook: str) -> dict:
    listed = load()["notebooks"]
    if notebook not in listed:
        raise KeyError(f"{notebook!r} has no claims in {PATH}{did_you_mean(notebook, listed)}")
    return listed[notebook]


def seeds(notebook: str, run: str = "pilot") -> list[int]:
    """The seeds `run` (pilot, confirmatory) trains for `notebook`."""
    listed = _notebook(notebook)["seeds"]
    if run not in listed:
        raise KeyError(f"{notebook} lists no {run!r} seeds{did_you_mean(run, listed)}; "
                       f"runs: {sorted(listed)}")
    return list(listed[run])


def run_name(run: str | None = None) -> str:
    """`run`, or the one KDLAB_PARAMS names (via the file's runs:; unset or 'defaults': pilot)."""
    if run:
        return run
    name = os.environ.get("KDLAB_PARAMS") or "defaults"
    by_file = {file: r for r, file in load()["runs"].items()}
    return by_file.get(name, "pilot" if name == "defaults" else name)


def decide(notebook: str, per_seed, kind_column: str = "kind", seed_column: str = "seed",
           teachers: int | None = None, run: str | None = None, ids=None):
    """The verdicts on `notebook`'s claims from `per_seed` (a row per model: kind, seed, one
    column per statistic): a pandas table indexed by claim id (COLUMNS). `teachers`: how many
    teachers the run trained (claims that need more are not testable); `ids`: only these."""
    import pandas as pd

    entry, data, run = _notebook(notebook), load(), run_name(run)
    alpha, every = 1 - data["level"], [c["id"] for c in entry["claims"]]
    for i in ids or []:
        if i not in every:
            raise KeyError(f"{notebook} has no claim {i!r}{did_you_mean(i, every)}")
    kinds = set(per_seed[kind_column])
    todo = [c for c in entry["claims"] if c["statistic"] in per_seed and c["a"] in kinds
            and (c["b"] in kinds or not isinstance(c["b"], str))]
    decided = {}

    def claim(c):  # decide's keywords, with why the claim cannot be tested
        need, check = c["needs"].get("teachers"), decided.get(c["check"])
        why = (f"needs {need} teachers, decide() was told {teachers}" if need and (teachers or 0) < need
               else f"manipulation check {c['check']} was not run" if c["check"] and not check
               else f"manipulation check {c['check']} failed: {check.verdict}, interval "
                    f"[{check.low:+.3g}, {check.high:+.3g}]" if check and check.verdict != "shown" else "")
        a, b = v.paired(per_seed, c["text"], c["statistic"], c["a"], c["b"], kind_column, seed_column)
        return {"claim": c["text"], "a": a, "b": b, "direction": c["direction"], "margin": c["margin"],
                "reason": why}

    for c in (c for c in todo if c["role"] == "check"):
        got = v.decide(**claim(c), level=1 - alpha)
        clears = got.low > c["margin"] if c["direction"] == "greater" else got.high < -c["margin"]
        if got.verdict == "shown" and not clears:  # shown, but the manipulation may be too small
            got = replace(got, verdict="inconclusive", reason=f"the interval reaches inside ±{c['margin']}")
        decided[c["id"]] = got
    primary = [c for c in todo if c["role"] == "primary"]
    decided.update(zip([c["id"] for c in primary], v.decide_holm([claim(c) for c in primary], alpha)))
    for c in (c for c in todo if c["role"] not in ("check", "primary")):
        decided[c["id"]] = v.decide(**claim(c), level=1 - alpha)
    rows = {c["id"]: {**{k: c[k] for k in ("role", "statistic", "a", "b", "direction")},
                      **{k: getattr(decided[c["id"]], k) for k in COLUMNS[6:15]},
                      "claim": c["text"], "run": run}
            for c in todo if not ids or c["id"] in ids}
    return pd.DataFrame.from_dict(rows, orient="index", columns=COLUMNS).rename_axis("id")


def record(notebook: str, per_seed, verdicts, **decide_kwargs) -> dict:
    """What a notebook saves under the key "claims" of its results (kdlab.save_results): the
    per-seed rows its claims use, how `decide` was called, and the verdicts it gave."""
    kind_column = decide_kwargs.pop("kind_column", "kind")
    seed_column = decide_kwargs.pop("seed_column", "seed")
    decide_kwargs["run"] = run_name(decide_kwargs.get("run"))
    used = {c["statistic"] for c in _notebook(notebook)["claims"]} & set(per_seed.columns)
    return {"per_seed": per_seed[[kind_column, seed_column, *sorted(used)]].to_dict(orient="records"),
            "kind_column": kind_column, "seed_column": seed_column, "decide": decide_kwargs,
            "verdicts": verdicts.to_dict(orient="index"), "run": decide_kwargs["run"],
            "claims_written": load()["written"]}


def committed(notebook: str, run: str = "evidence"):
    """The verdicts of `notebook`'s claims in a committed run (results/<run>/<notebook>.json),
    recomputed from its per-seed rows with today's rule; None if that run is not committed."""
    import json

    path = PROJECT_ROOT / "results" / run / f"{notebook}.json"
    if not path.is_file():
        return None
    return recompute(json.loads(path.read_text())["metrics"]["claims"], notebook)


def gather(notebook: str, verdicts, runs=("evidence", "numerics"), others: dict | None = None) -> dict:
    """{label: verdicts}: this run's, the committed `runs`' (`committed`) and `others`' (e.g. real
    data), for `beside` and kdlab.figures.plots.plot_verdicts (notebooks 02, 04, 05, 06)."""
    here = verdicts["run"].iloc[0] if len(verdicts) else run_name()
    tables = {f"{here} (this run)": verdicts}
    for run in runs:
        found = committed(notebook, run)
        if found is not None and len(found):
            tables[f"{found['run'].iloc[0]} (results/{run})"] = found
    return tables | (others or {})


def beside(tables: dict, columns=("verdict", "mean", "low", "high", "n")):
    """The runs' verdicts (`gather`) side by side: a column group per run, a row per claim."""
    import pandas as pd

    order = list(dict.fromkeys(i for t in tables.values() for i in t.index))
    table = pd.concat({label: t.reindex(order)[list(columns)] for label, t in tables.items()}, axis=1)
    return table.round(3).astype(object).fillna("–")


def recompute(record_claims: dict, notebook: str):
    """`decide` again from a record's per-seed rows, as `record` saved them."""
    import pandas as pd

    return decide(notebook, pd.DataFrame(record_claims["per_seed"]), record_claims["kind_column"],
                  record_claims["seed_column"], **record_claims["decide"])

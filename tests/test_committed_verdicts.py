"""The committed verdicts are the rule's: every committed results record with a "claims" key
(results/**/*.json, and the records the committed notebooks carry in their outputs) gives the
same verdicts, means and intervals when kdlab.claims decides its per-seed rows again; and the
seeds params/claims.yaml fixes are the ones the notebooks and params/evidence.yaml train."""

from __future__ import annotations

import json
import math

import pytest

from kdlab import claims
from kdlab.runtime.files import PROJECT_ROOT
from kdlab.runtime.notebook import notebook_defaults
from kdlab.tools.book import NOTEBOOK_DIR, NOTEBOOK_GLOB, embedded_records
from kdlab.tools.run import load_params_file, notebook_parameters

EVIDENCE = PROJECT_ROOT / "params" / "evidence.yaml"


def committed_records() -> list[tuple[str, dict]]:
    """(where, record) for every committed results record whose metrics have "claims"."""
    found = []
    for path in sorted((PROJECT_ROOT / "results").rglob("*.json")):
        try:
            record = json.loads(path.read_text())
        except ValueError:
            continue
        found.append((str(path.relative_to(PROJECT_ROOT)), record))
    for nb in sorted(NOTEBOOK_DIR.glob(NOTEBOOK_GLOB)):
        found += [(f"notebooks/{nb.name} (record {i})", record)
                  for i, record in enumerate(embedded_records(nb))]
    return [(where, record) for where, record in found
            if isinstance(record, dict) and "claims" in (record.get("metrics") or {})]


RECORDS = committed_records()
NO_RECORD = pytest.param(None, None, marks=pytest.mark.skip(
    reason="no committed results record has a 'claims' key yet"))


@pytest.mark.parametrize("where, record", [pytest.param(w, r, id=w) for w, r in RECORDS] or [NO_RECORD])
def test_committed_verdicts_are_what_the_rule_gives(where, record):
    committed = record["metrics"]["claims"]
    again = claims.recompute(committed, record["notebook"])
    assert sorted(again.index) == sorted(committed["verdicts"]), where
    for claim_id, said in committed["verdicts"].items():
        assert again.at[claim_id, "verdict"] == said["verdict"], (where, claim_id)
        for key in ("mean", "low", "high"):
            now, then = again.at[claim_id, key], said[key]
            assert (then is None and math.isnan(now)) or now == pytest.approx(then, abs=1e-9), \
                (where, claim_id, key, then, now)


def listed_notebooks() -> list[str]:
    return list(claims.load()["notebooks"]) if claims.PATH.exists() else []


NO_FILE = pytest.param(None, marks=pytest.mark.skip(reason=f"{claims.PATH} is not written yet"))


@pytest.mark.parametrize("notebook", listed_notebooks() or [NO_FILE])
def test_pilot_seeds_are_the_notebook_defaults_and_the_first_confirmatory_seeds(notebook):
    path = NOTEBOOK_DIR / f"{notebook}.ipynb"
    assert path.exists(), f"{claims.PATH} lists {notebook}, which is no notebook"
    pilot, confirmatory = claims.seeds(notebook, "pilot"), claims.seeds(notebook, "confirmatory")
    assert notebook_defaults(path).get("seeds") == pilot, (
        f"{notebook}'s parameters cell trains seeds {notebook_defaults(path).get('seeds')}, "
        f"{claims.PATH.name} fixes the pilot's as {pilot}")
    assert confirmatory[:len(pilot)] == pilot


@pytest.mark.parametrize("notebook", listed_notebooks() or [NO_FILE])
def test_the_evidence_run_trains_the_confirmatory_seeds(notebook):
    if not EVIDENCE.exists():
        pytest.skip(f"{EVIDENCE} is not written yet")
    _, spec = load_params_file("evidence")
    given = notebook_parameters(NOTEBOOK_DIR / f"{notebook}.ipynb", spec).get("seeds")
    assert given == claims.seeds(notebook, "confirmatory"), (
        f"params/evidence.yaml gives {notebook} seeds {given}, {claims.PATH.name} fixes "
        f"{claims.seeds(notebook, 'confirmatory')}")


@pytest.mark.parametrize("notebook", listed_notebooks() or [NO_FILE])
def test_the_committed_pilot_is_the_committed_notebook(notebook):
    """results/cpu/ (the pilot column of kdlab.figures.tables.overview, the table each
    notebook opens with) holds the same pilot claims as the notebook's own outputs: re-execute
    a notebook, then copy runs/committed/<notebook>.json to results/cpu/."""
    path = PROJECT_ROOT / "results" / "cpu" / f"{notebook}.json"
    assert path.is_file(), f"{path} is missing: copy runs/committed/{notebook}.json there"
    pilot = json.loads(path.read_text())["metrics"]["claims"]
    shown = [r["metrics"]["claims"] for r in embedded_records(NOTEBOOK_DIR / f"{notebook}.ipynb")
             if "claims" in (r.get("metrics") or {})]
    assert shown, f"notebooks/{notebook}.ipynb shows no claims record"
    assert pilot["run"] == "pilot" and pilot["per_seed"] == shown[-1]["per_seed"], (
        f"results/cpu/{notebook}.json is not the committed notebook's pilot: copy "
        f"runs/committed/{notebook}.json there after executing the notebook")

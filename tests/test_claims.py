"""kdlab.claims: the claims file's schema, and deciding a notebook's claims from a per-seed table."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from kdlab import claims
from kdlab.runtime.files import jsonable

NOTEBOOK = "02_demo"
FILE = {
    "written": "2026-12-06", "changes": [], "level": 0.95,
    "runs": {"pilot": "cpu", "confirmatory": "evidence"},
    "notebooks": {NOTEBOOK: {
        "seeds": {"pilot": [0, 1, 2], "confirmatory": [0, 1, 2, 3, 4, 5]},
        "claims": [
            {"id": "check-big", "text": "the manipulation is large", "role": "check", "statistic": "share",
             "a": "kd", "b": "scratch", "direction": "greater", "margin": 0.05},
            {"id": "check-small", "text": "a manipulation too small", "role": "check", "statistic": "share",
             "a": "ls", "b": "scratch", "direction": "greater", "margin": 0.5},
            {"id": "acc", "text": "KD more accurate", "role": "primary", "statistic": "accuracy",
             "a": "kd", "b": "scratch", "direction": "greater", "margin": 0.01, "check": "check-big",
             "prediction": "shown"},
            {"id": "ls-acc", "text": "LS more accurate", "role": "primary", "statistic": "accuracy",
             "a": "ls", "b": "scratch", "direction": "greater", "margin": 0.01, "check": "check-small"},
            {"id": "above", "text": "KD above 0.5", "role": "exploratory", "statistic": "accuracy",
             "a": "kd", "b": 0.5, "direction": "greater", "check": None, "needs": {}},
            {"id": "teachers", "text": "a claim about teachers", "role": "exploratory",
             "statistic": "accuracy", "a": "kd", "b": "scratch", "direction": "greater",
             "needs": {"teachers": 3}},
            {"id": "matched", "text": "LS and scratch equally accurate", "role": "matched",
             "statistic": "accuracy", "a": "ls", "b": "scratch", "direction": "equal", "margin": 0.05},
            {"id": "soft", "text": "soft students (absent from the run)", "role": "exploratory",
             "statistic": "accuracy", "a": "soft", "b": "scratch", "direction": "greater"},
            {"id": "missing-stat", "text": "a statistic the run lacks", "role": "exploratory",
             "statistic": "epg", "a": "kd", "b": "scratch", "direction": "greater"},
        ]}},
}


def write(tmp_path, monkeypatch, data=FILE):
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setattr(claims, "PATH", path)
    return path


def per_seed(n=5):
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(n):
        base = 0.8 + 0.02 * rng.standard_normal()
        rows += [{"kind": "scratch", "seed": seed, "accuracy": base, "share": 0.40 + 0.01 * rng.standard_normal()},
                 {"kind": "kd", "seed": seed, "accuracy": base + 0.05 + 0.005 * rng.standard_normal(),
                  "share": 0.60 + 0.01 * rng.standard_normal()},
                 {"kind": "ls", "seed": seed, "accuracy": base + 0.002 * rng.standard_normal(),
                  "share": 0.42 + 0.01 * rng.standard_normal()}]
    return pd.DataFrame(rows)


def test_decide_applies_checks_holm_and_the_roles(tmp_path, monkeypatch):
    write(tmp_path, monkeypatch)
    monkeypatch.delenv("KDLAB_PARAMS", raising=False)
    table = claims.decide(NOTEBOOK, per_seed())
    assert list(table.columns) == claims.COLUMNS and table.index.name == "id"
    assert list(table.index) == ["check-big", "check-small", "acc", "ls-acc", "above", "teachers", "matched"]
    v = table.verdict
    assert v["check-big"] == "shown" and v["check-small"] != "shown"
    assert v["acc"] == "shown" and table.level["acc"] == pytest.approx(0.95)  # the only testable primary
    assert v["ls-acc"] == "not testable"
    assert table.reason["ls-acc"].startswith("manipulation check check-small failed: ")
    assert v["above"] == "shown" and table.b["above"] == 0.5
    assert v["teachers"] == "not testable" and "3 teachers" in table.reason["teachers"]
    assert claims.decide(NOTEBOOK, per_seed(), teachers=3).verdict["teachers"] == "shown"
    assert v["matched"] == "equivalent" and table.level["matched"] == pytest.approx(0.90)
    assert set(table.run) == {"pilot"}


def test_two_testable_primary_claims_share_alpha(tmp_path, monkeypatch):
    data = json.loads(json.dumps(FILE))
    data["notebooks"][NOTEBOOK]["claims"][3]["check"] = None  # ls-acc now testable
    write(tmp_path, monkeypatch, data)
    table = claims.decide(NOTEBOOK, per_seed())
    assert sorted(table.level[["acc", "ls-acc"]]) == pytest.approx([0.95, 0.975])  # Holm, 2 claims
    assert table.verdict["ls-acc"] != "not testable" and table.reason["ls-acc"] == ""


def test_a_check_shown_but_not_beyond_its_margin_does_not_pass(tmp_path, monkeypatch):
    data = json.loads(json.dumps(FILE))
    data["notebooks"][NOTEBOOK]["claims"][0]["margin"] = 0.19  # the gain is about 0.2
    write(tmp_path, monkeypatch, data)
    table = claims.decide(NOTEBOOK, per_seed())
    assert table.low["check-big"] > 0 and table.verdict["check-big"] == "inconclusive"
    assert table.verdict["acc"] == "not testable"


def test_run_names_and_seeds(tmp_path, monkeypatch):
    write(tmp_path, monkeypatch)
    for env, run in (("evidence", "confirmatory"), ("cpu", "pilot"), ("defaults", "pilot"),
                     ("ten_seeds", "ten_seeds")):
        monkeypatch.setenv("KDLAB_PARAMS", env)
        assert claims.run_name() == run
    assert claims.run_name("pilot") == "pilot"
    assert claims.seeds(NOTEBOOK) == [0, 1, 2] and claims.seeds(NOTEBOOK, "confirmatory")[-1] == 5
    with pytest.raises(KeyError, match="did you mean 'pilot'"):
        claims.seeds(NOTEBOOK, "pilott")


def test_mistyped_names_are_errors_naming_the_close_match(tmp_path, monkeypatch):
    write(tmp_path, monkeypatch)
    with pytest.raises(KeyError, match="did you mean 'ls-acc'"):
        claims.decide(NOTEBOOK, per_seed(), ids=["ls-ac"])
    with pytest.raises(KeyError, match="did you mean '02_demo'"):
        claims.decide("02_dem", per_seed())
    assert list(claims.decide(NOTEBOOK, per_seed(), ids=["acc"]).index) == ["acc"]


def test_record_and_recompute_round_trip_through_json(tmp_path, monkeypatch):
    write(tmp_path, monkeypatch)
    table = per_seed()
    verdicts = claims.decide(NOTEBOOK, table, teachers=1, run="confirmatory")
    record = claims.record(NOTEBOOK, table, verdicts, teachers=1, run="confirmatory")
    assert record["run"] == "confirmatory" and record["claims_written"] == "2026-12-06"
    saved = json.loads(json.dumps(jsonable(record)))  # as kdlab.save_results writes it
    again = claims.recompute(saved, NOTEBOOK)
    assert list(again.verdict) == [saved["verdicts"][i]["verdict"] for i in again.index]
    for i in again.index:
        for key in ("mean", "low", "high"):
            committed = saved["verdicts"][i][key]
            assert (committed is None and math.isnan(again.at[i, key])
                    or again.at[i, key] == pytest.approx(committed, abs=1e-9))


def commit_run(tmp_path, rows, run="confirmatory") -> dict:
    """Decide `rows` as `run` and commit its record as results/evidence/<NOTEBOOK>.json."""
    record = claims.record(NOTEBOOK, rows, claims.decide(NOTEBOOK, rows, teachers=1, run=run),
                           teachers=1, run=run)
    (tmp_path / "results" / "evidence").mkdir(parents=True)
    (tmp_path / "results" / "evidence" / f"{NOTEBOOK}.json").write_text(
        json.dumps(jsonable({"metrics": {"claims": record}})))
    return record


def test_a_committed_run_is_read_back_with_todays_rule(tmp_path, monkeypatch):
    write(tmp_path, monkeypatch)
    monkeypatch.setattr(claims, "PROJECT_ROOT", tmp_path)
    assert claims.committed(NOTEBOOK, "evidence") is None  # not committed: None, not an error
    record = commit_run(tmp_path, per_seed(), run=None)  # the run KDLAB_PARAMS names
    again = claims.committed(NOTEBOOK, "evidence")
    assert list(again.verdict) == [record["verdicts"][i]["verdict"] for i in again.index]


def test_beside_puts_a_run_next_to_the_committed_runs(tmp_path, monkeypatch):
    write(tmp_path, monkeypatch)
    monkeypatch.setattr(claims, "PROJECT_ROOT", tmp_path)
    pilot_rows, full_rows = per_seed(3), per_seed(6)
    pilot = claims.decide(NOTEBOOK, pilot_rows, teachers=1, run="pilot")
    alone = claims.beside(claims.gather(NOTEBOOK, pilot))  # nothing committed: the pilot alone
    assert list(alone.columns.get_level_values(0).unique()) == ["pilot (this run)"]
    record = commit_run(tmp_path, full_rows)
    fewer = pilot.drop(index="acc")  # a claim only the committed run decided
    table = claims.beside(claims.gather(NOTEBOOK, fewer, others={"real data": pilot.loc[["acc"]]}))
    groups = list(table.columns.get_level_values(0).unique())
    assert groups == ["pilot (this run)", "confirmatory (results/evidence)", "real data"]
    assert table.at["acc", ("pilot (this run)", "verdict")] == "–"
    assert table.at["acc", ("confirmatory (results/evidence)", "n")] == 6
    assert table.at["acc", ("real data", "verdict")] == pilot.at["acc", "verdict"]
    assert set(table.index) == set(pilot.index) | set(record["verdicts"])


def test_overview_opens_a_notebook_with_every_committed_runs_verdict(tmp_path, monkeypatch):
    from kdlab.figures import tables

    write(tmp_path, monkeypatch)
    monkeypatch.setattr(claims, "PROJECT_ROOT", tmp_path)
    commit_run(tmp_path, per_seed(6))
    real = claims.decide(NOTEBOOK, per_seed(3), teachers=1, run="real").drop(index="acc")
    table = tables.overview(NOTEBOOK, others={"real data": real})
    # primary claims and checks only, in the file's order; one column per run found
    assert list(table.index) == ["check-big", "check-small", "acc", "ls-acc"]
    assert list(table.columns) == ["claim", "role", "confirmatory (results/evidence)", "real data"]
    confirmed = claims.committed(NOTEBOOK, "evidence")
    assert table.at["check-big", "confirmatory (results/evidence)"].startswith("passes: +0.")
    assert table.at["check-small", "confirmatory (results/evidence)"].startswith("fails (")
    acc = confirmed.loc["acc"]
    assert table.at["acc", "confirmatory (results/evidence)"] == (
        f"{acc.verdict}: {acc['mean']:+.3f} [{acc.low:+.3f}, {acc.high:+.3f}]")
    assert table.at["acc", "real data"] == "–"  # a run that did not decide it


@pytest.mark.parametrize("edit, message", [
    (lambda c, nb: c[0].update(colour="red"), "unknown keys"),
    (lambda c, nb: c[0].update(role="main"), "role must be"),
    (lambda c, nb: c[0].update(direction="bigger"), "direction must be"),
    (lambda c, nb: c[0].pop("statistic"), "missing keys"),
    (lambda c, nb: c[1].update(id="check-big"), "used twice"),
    (lambda c, nb: c[4].update(role="primary"), "at most 2 primary"),
    (lambda c, nb: c[2].update(check="acc"), "no check claim"),
    (lambda c, nb: c[6].update(margin=0), "margin"),
    (lambda c, nb: c[6].update(direction="greater"), "matched claim"),
    (lambda c, nb: nb["seeds"].update(pilot=[1, 2]), "not the first confirmatory seeds"),
])
def test_the_file_is_validated(tmp_path, monkeypatch, edit, message):
    data = json.loads(json.dumps(FILE))
    entry = data["notebooks"][NOTEBOOK]
    edit(entry["claims"], entry)
    path = write(tmp_path, monkeypatch, data)
    with pytest.raises(claims.ClaimsError, match=message) as err:
        claims.load()
    assert str(path) in str(err.value)


def test_the_committed_claims_file_is_valid():
    if not claims.PATH.exists():
        pytest.skip(f"{claims.PATH} is not written yet")
    assert claims.load()["notebooks"]


def test_overview_is_shown_whole(capsys):
    """tables.show prints (outside IPython) every claim's text uncut; pandas would cut it."""
    from kdlab.figures import tables

    text = "a claim whose text runs well past the fifty characters pandas shows of a column"
    tables.show(pd.DataFrame({"claim": [text], "pilot": ["shown: +0.100 [+0.010, +0.190]"]}))
    assert text in capsys.readouterr().out

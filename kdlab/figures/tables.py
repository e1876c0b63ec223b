"""The table each claims notebook opens with (02, 04, 05, 06): what the papers claim, and the
verdict every committed run of the course gave it, before the prose discusses the evidence.

    show(overview("04_kd_interpretability"))

One row per primary claim and manipulation check in params/claims.yaml; one column per
committed run (results/cpu: the pilot, `make run`; results/evidence: the confirmatory run;
results/numerics: the same seeds under other numerics) and per extra table passed in `others`
(real data). Each verdict is recomputed from the run's per-seed numbers with today's rule
(kdlab.claims.committed), so the table cannot drift from the results it reads.
"""

from __future__ import annotations

from .. import claims

RUNS = {"cpu": "pilot", "evidence": "confirmatory", "numerics": "other numerics"}
SHOWN_ROLES = ("primary", "check")


def verdict_text(row) -> str:
    """'shown: +0.033 [+0.010, +0.057]': the verdict, the mean paired difference a − b and its
    interval. A manipulation check reads 'passes' (shown beyond its margin) or 'fails (its
    verdict)'. The verdict alone when the statistic has no interval."""
    said = str(row["verdict"])
    if row["role"] == "check":
        said = "passes" if said == "shown" else f"fails ({said})"
    numbers = (row["mean"], row["low"], row["high"])
    if any(x is None or x != x for x in numbers):  # None or NaN
        return said
    return f"{said}: {numbers[0]:+.3f} [{numbers[1]:+.3f}, {numbers[2]:+.3f}]"


def overview(notebook: str, others: dict | None = None, roles=SHOWN_ROLES):
    """The claims of `notebook` with `roles`, beside each committed run's verdict on them and
    `others` ({column label: verdicts as kdlab.claims.decide returns them}); "–" where a run
    did not decide a claim (it had no such experiment)."""
    import pandas as pd

    listed = [c for c in claims.load()["notebooks"][notebook]["claims"] if c["role"] in roles]
    table = pd.DataFrame({"claim": [c["text"] for c in listed], "role": [c["role"] for c in listed]},
                         index=pd.Index([c["id"] for c in listed], name="id"))
    runs = {f"{label} (results/{run})": claims.committed(notebook, run) for run, label in RUNS.items()}
    for label, verdicts in (runs | (others or {})).items():
        if verdicts is None:
            continue
        table[label] = [verdict_text(verdicts.loc[i]) if i in verdicts.index else "–"
                        for i in table.index]
    return table


def show(table) -> None:
    """Display `table` whole: every claim's full text, left-aligned (pandas would cut text
    columns at 50 characters). Printed as text outside IPython."""
    import pandas as pd

    with pd.option_context("display.max_colwidth", None, "display.width", 200):
        text = table.to_string()
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(text)
        return
    html = table.style.set_properties(**{"text-align": "left"}).to_html()
    display({"text/html": html, "text/plain": text}, raw=True)

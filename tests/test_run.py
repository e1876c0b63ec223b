"""papermill runs of a real notebook through the course runner (kdlab.tools.run)."""
import json

import papermill
import pytest
import yaml

from kdlab.runtime.notebook import notebook_defaults
from kdlab.tools import run


def params_file(tmp_path, notebooks):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({"description": "test", "hardware": "any", "all": {"seed": 1},
                                    "notebooks": notebooks}))
    return str(path)


@pytest.mark.notebooks
def test_alternative_parameters_run_and_resume(tmp_path, capsys):
    spec = params_file(tmp_path, {"00_tour": {"n_images": 64, "gallery": 4}})
    out = tmp_path / "run"
    assert run.run_course(spec, only=["00"], out=str(out)) == 0
    result = json.loads((out / "00_tour.json").read_text())
    assert result["params"] == {"n_images": 64, "seed": 1, "gallery": 4, "design": "v2"}
    assert result["metrics"]["images"] == 64
    assert result["environment"]["torch"] and result["params_file"] == "small"
    assert json.loads((out / "summary.json").read_text())["notebooks"][0]["status"] == "ran"
    # a second run finds the executed copy complete and skips it
    capsys.readouterr()
    assert run.run_course(spec, only=["00"], out=str(out)) == 0
    assert "already complete in the run folder, skipped" in capsys.readouterr().out


def test_mistyped_parameter_in_a_file_stops_before_any_notebook_runs(tmp_path):
    spec = params_file(tmp_path, {"00_tour": {"n_image": 64}})
    with pytest.raises(SystemExit, match="00_tour has no parameter 'n_image' \\(did you mean 'n_images'\\?\\)"):
        run.run_course(spec, only=["00"], out=str(tmp_path / "bad"))
    assert not (tmp_path / "bad").exists()  # nothing ran, nothing was written


@pytest.mark.notebooks
def test_mistyped_parameter_given_to_papermill_fails_in_the_first_cell(tmp_path):
    nb, out = run.notebooks(["00"])[0], tmp_path / "out.ipynb"
    with pytest.raises(Exception):
        run.execute(nb, out, {"n_image": 64}, {"KDLAB_RUN_DIR": str(tmp_path)})
    assert "unknown parameter 'n_image' (did you mean 'n_images'?)" in run.failing_cell(out)


def test_out_of_range_parameter_names_it(tmp_path, capsys):
    spec = params_file(tmp_path, {"00_tour": {"gallery": 0}})
    assert run.run_course(spec, only=["00"], out=str(tmp_path / "bad")) == 1
    assert "parameter 'gallery' = 0 is out of range" in capsys.readouterr().err


def test_parameter_file_errors(tmp_path):
    with pytest.raises(SystemExit, match="not found; available"):
        run.load_params_file("no_such_params")
    bad = tmp_path / "bad.yaml"
    bad.write_text("notebook: {}\n")
    with pytest.raises(SystemExit, match="unknown top-level keys"):
        run.load_params_file(str(bad))
    with pytest.raises(SystemExit, match="section '99_nothing' matches 0 notebooks"):
        run.check_params_file(bad, {"notebooks": {"99_nothing": {}}})


def test_shipped_parameter_files_are_valid():
    assert "claims" not in [p.stem for p in run.parameter_files()]
    with pytest.raises(run.ParamsFileError, match="holds the claims"):
        run.load_params_file("claims")
    for path in run.parameter_files():
        name, spec = run.load_params_file(str(path))
        for nb in run.notebooks():
            declared = notebook_defaults(nb)
            assert declared, f"{nb.name} has no parseable parameters cell"
            for key in run.notebook_parameters(nb, spec):
                assert key in declared, f"{path.name} gives {nb.stem} the unknown parameter {key}"


def test_papermill_reads_every_parameter_a_notebook_declares():
    # papermill skips a line with a second '=' (one in its comment) when it inspects the
    # parameters cell; a run then warns "Unable to parse line" and "Passed unknown parameter"
    # for a parameter the notebook does declare
    for nb in run.notebooks():
        seen_by_papermill = set(papermill.inspect_notebook(str(nb)))
        missed = sorted(set(notebook_defaults(nb)) - seen_by_papermill)
        assert not missed, f"papermill cannot read {nb.stem}'s parameters {missed}"


@pytest.mark.notebooks
def test_a_parameter_file_runs_the_notebooks_it_configures():
    stems = lambda nbs: [nb.stem[:2] for nb in nbs]
    _, fashion = run.load_params_file("fashion_mnist")
    _, voc = run.load_params_file("voc")
    _, default = run.load_params_file("cpu")
    assert stems(run.selected_notebooks(voc)) == ["06"]
    assert stems(run.selected_notebooks(fashion)) == [s[:2] for s in fashion["notebooks"]]
    assert "06" not in stems(run.selected_notebooks(fashion))   # 06 has no Fashion-MNIST setting
    assert run.selected_notebooks(default) == run.notebooks()   # no sections: every notebook
    assert stems(run.selected_notebooks(voc, only=["00"])) == ["00"]  # --only chooses instead

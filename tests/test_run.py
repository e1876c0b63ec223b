"""papermill runs of a real notebook through the course runner (kdlab.run)."""
import json

import pytest
import yaml

from kdlab import run


def params_file(tmp_path, notebooks):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({"description": "test", "hardware": "any", "all": {"seed": 1},
                                    "notebooks": notebooks}))
    return str(path)


def test_alternative_parameters_run_and_resume(tmp_path, capsys):
    spec = params_file(tmp_path, {"00_tour": {"n_images": 64, "gallery": 4}})
    out = tmp_path / "run"
    assert run.run_course(spec, only=["00"], out=str(out)) == 0
    result = json.loads((out / "00_tour.json").read_text())
    assert result["params"] == {"n_images": 64, "seed": 1, "gallery": 4}
    assert result["metrics"]["images"] == 64
    assert result["environment"]["torch"] and result["params_file"] == "small"
    assert json.loads((out / "summary.json").read_text())["notebooks"][0]["status"] == "ran"
    # a second run finds the executed copy complete and skips it
    capsys.readouterr()
    assert run.run_course(spec, only=["00"], out=str(out)) == 0
    assert "already complete in the run folder, skipped" in capsys.readouterr().out


def test_mistyped_parameter_fails_with_a_clear_message(tmp_path, capsys):
    spec = params_file(tmp_path, {"00_tour": {"n_image": 64}})
    assert run.run_course(spec, only=["00"], out=str(tmp_path / "bad")) == 1
    err = capsys.readouterr().err
    assert "00_tour: FAILED" in err
    assert "unknown parameter 'n_image' (did you mean 'n_images'?)" in err
    summary = json.loads((tmp_path / "bad" / "summary.json").read_text())
    assert summary["notebooks"][0]["status"] == "failed"


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
    with pytest.raises(SystemExit, match="names notebook '99_nothing'"):
        run.notebook_parameters(run.notebooks(["00"])[0], {"notebooks": {"99_nothing": {}}})


def test_shipped_parameter_files_are_valid():
    for path in sorted(run.PARAMS_DIR.glob("*.yaml")):
        name, spec = run.load_params_file(str(path))
        for nb in run.notebooks():
            declared = run.declared_parameters(nb)
            assert declared, f"{nb.name} has no parseable parameters cell"
            for key in run.notebook_parameters(nb, spec):
                assert key in declared, f"{path.name} gives {nb.stem} the unknown parameter {key}"

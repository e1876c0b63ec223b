import pytest

from kdlab.runtime.notebook import ParameterError, check_params, declared_parameters, validate

PARAMS_CELL = 'epochs = 6   # comment\nlr = 0.1\ndataset = "synthetic"\nseeds = [0, 1]\nfast = True\n'


def history(*injected_lines):
    cells = ["", "import kdlab", PARAMS_CELL]
    if injected_lines:
        cells.append("# Parameters\n" + "\n".join(injected_lines) + "\n")
    return cells + ["P = kdlab.check_params(globals())"]


def namespace(hist, **values):
    ns = {"In": hist, "epochs": 6, "lr": 0.1, "dataset": "synthetic", "seeds": [0, 1], "fast": True}
    ns.update(values)
    return ns


def test_defaults_and_injected_are_read_from_history():
    defaults, injected = declared_parameters(history('epochs = 3')[:-1])
    assert defaults == {"epochs": 6, "lr": 0.1, "dataset": "synthetic", "seeds": [0, 1], "fast": True}
    assert injected == {"epochs": 3}


def test_valid_override_passes():
    p = check_params(namespace(history("epochs = 3", "lr = 1"), epochs=3, lr=1), rules={"epochs": (1, None)})
    assert p["epochs"] == 3 and p["lr"] == 1 and set(p) == {"epochs", "lr", "dataset", "seeds", "fast"}


def test_unknown_parameter_names_valid_ones_and_closest():
    with pytest.raises(ParameterError) as err:
        check_params(namespace(history("epoch = 3"), epoch=3))
    msg = str(err.value)
    assert "unknown parameter 'epoch'" in msg and "did you mean 'epochs'" in msg
    assert "epochs=6" in msg and "dataset='synthetic'" in msg


@pytest.mark.parametrize("line,value,fragment", [
    ('epochs = "ten"', "ten", "'epochs' must be of type int"),
    ("fast = 1", 1, "'fast' must be of type bool"),
    ("lr = 'high'", "high", "'lr' must be of type float"),
])
def test_wrong_type_is_named(line, value, fragment):
    name = line.split(" =")[0]
    with pytest.raises(ParameterError, match=fragment):
        check_params(namespace(history(line), **{name: value}))


def test_range_and_choice_rules():
    rules = {"epochs": (1, 100), "dataset": ["synthetic", "cifar10"]}
    with pytest.raises(ParameterError, match=r"'epochs' = 0 is out of range \[1, 100\]"):
        check_params(namespace(history("epochs = 0"), epochs=0), rules=rules)
    with pytest.raises(ParameterError, match="'dataset' must be one of"):
        check_params(namespace(history("dataset = 'imagenet'"), dataset="imagenet"), rules=rules)
    with pytest.raises(ParameterError, match="not a parameter"):
        check_params(namespace(history()), rules={"epochz": (1, 2)})


def test_a_choice_rule_holds_for_each_item_of_a_list_parameter():
    rules = {"kinds": ["scratch", "ls", "kd"]}
    assert validate({"kinds": ["kd", "ls"]}, {"kinds": ["scratch"]}, {}, rules)["kinds"] == ["kd", "ls"]
    with pytest.raises(ParameterError, match=r"'kinds' must be one of .* \(each item\), got 'kdd' "
                                             r"\(did you mean 'kd'\?\)"):
        validate({"kinds": ["scratch", "kdd"]}, {"kinds": ["scratch"]}, {}, rules)


def test_explicit_defaults_outside_a_notebook():
    assert validate({"a": 2}, {"a": 1}, {})["a"] == 2
    with pytest.raises(ParameterError, match="no parameters cell"):
        check_params({"In": ["", "x = f()", "check"]}, rules={"x": (0, 1)})


def test_without_input_history_the_literal_globals_are_the_parameters():
    # nbval executes cells without storing input history: nothing can be injected then
    ns = {"In": [""], "Out": {}, "_i1": "x", "epochs": 6, "name": "a", "torch": object()}
    p = check_params(ns, rules={"epochs": (1, 10)})
    assert p == {"epochs": 6, "name": "a"}
    with pytest.raises(ParameterError, match="out of range"):
        check_params({**ns, "epochs": 0}, rules={"epochs": (1, 10)})


def test_did_you_mean_names_the_closest_valid_name_or_nothing():
    from kdlab.runtime.notebook import did_you_mean

    assert did_you_mean("epoch", ["epochs", "seed"]) == " (did you mean 'epochs'?)"
    assert did_you_mean("zzz", ["epochs", "seed"]) == ""
    assert did_you_mean(1, ["01_tour", "1"]) == " (did you mean '1'?)"  # YAML reads some names as numbers
    assert did_you_mean("batchsize", ["batch_size"], spell=lambda n: "--" + n.replace("_", "-")) == \
        " (did you mean --batch-size?)"


def test_list_items_of_the_wrong_type_are_named():
    with pytest.raises(ParameterError, match="'seeds' must hold items of type int .* 'a' is a str"):
        check_params(namespace(history("seeds = ['a', 1.5]"), seeds=["a", 1.5]))
    assert check_params(namespace(history("seeds = [3, 4]"), seeds=[3, 4]))["seeds"] == [3, 4]


def test_a_multiple_choice_check_names_no_answer():
    from kdlab.runtime.notebook import check_choice, choice_digest

    digest = choice_digest("Exercise 4", "b")
    assert digest != choice_digest("Exercise 5", "b") != choice_digest("Exercise 4", "c")
    check_choice("Exercise 4", " B ", options="abcd", digest=digest)  # case and spaces forgiven
    with pytest.raises(AssertionError, match="'c' is not it") as wrong:
        check_choice("Exercise 4", "c", options="abcd", digest=digest)
    assert "'b'" not in str(wrong.value)
    for bad in ("e", "bc", 2, None):
        with pytest.raises(AssertionError, match="one letter of a, b, c, d"):
            check_choice("Exercise 4", bad, options="abcd", digest=digest)

"""Train one teacher or student from the command line, on one device or several (torchrun).

Taught in the README's "Full runs at scale" section. A notebook's full run trains its models
through kdlab.course / kdlab.train.load_or_train; this entry point trains the same models
outside a notebook, into the same cache, so that the notebook run afterwards finds them:

    python -m kdlab.cli train --config run.yaml                    # one process
    torchrun --nproc_per_node=4 -m kdlab.cli train --config run.yaml   # four GPUs, DDP
    python -m kdlab.cli train --role teacher --dataset cifar100 --arch resnet32x4 --epochs 240
    python -m kdlab.cli --params run.yaml --epochs 3               # "train" may be left out

Every option can be given in the YAML file (`name: value`, the option's name with
underscores) or as a flag (`--name value`, dashes or underscores); flags win. An unknown or
mistyped option is an error that names the closest valid one. `--dry-run` prints the resolved
configuration and the checkpoint file the run would write, and trains nothing.
`python -m kdlab.cli --help` lists every option with its default.
"""

from __future__ import annotations

import argparse
import difflib
import glob
import os
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

DATASETS = ("synthetic", "fashion_mnist", "cifar10", "cifar100", "imagenet")
KINDS = {"teacher": ("scratch", "ls"), "student": ("scratch", "ls", "kd", "kd_from_ls", "e2kd")}


class CLIError(ValueError):
    """A bad option, option value or configuration file."""


# name: (default, type, help). Types: int, float, str, bool, tuple (of ints). None = not set.
RUN_OPTIONS = {
    "role": ("student", str, "teacher or student (names the cache file as kdlab.course does)"),
    "kind": ("scratch", str, "scratch | ls (label smoothing) | kd | kd_from_ls | e2kd (students)"),
    "name": (None, str, "cache/run name; default teacher, teacher-ls<eps> or student-<kind>-seed<seed>"),
    "dataset": ("synthetic", str, " | ".join(DATASETS)),
    "data_root": (None, str, "folder holding the dataset (default data/, or data/imagenet)"),
    "data_seed": (0, int, "seed of the synthetic data and of the few-shot selection"),
    "n_train": (None, int, "keep the first n training images (synthetic: generate n); default all"),
    "n_test": (None, int, "keep the first n test images; default all"),
    "n_images": (None, int, "train on the first n_images of those (the course's student_images)"),
    "shots": (None, int, "then keep this many images per class (few-shot, fixed data_seed)"),
    "image_size": (224, int, "imagenet: crop size"),
    "workers": (None, int, "imagenet: loader worker processes per training process"),
    "arch": ("resnet8_w8", str, "model to train (kdlab.models.get_model name)"),
    "teacher_arch": (None, str, "kd/e2kd: the teacher's architecture"),
    "teacher_checkpoint": (None, str, "kd/e2kd: the teacher's checkpoint (a path or a glob matching one file)"),
    "teacher_pretrained": (False, bool, "kd/e2kd: use torchvision's pretrained ImageNet weights as the teacher"),
    "temperature": (4.0, float, "KD temperature T"),
    "alpha": (0.9, float, "weight of the KD term (1 - alpha weights the labels), kdlab.losses.kd_loss"),
    "epsilon": (0.1, float, "label smoothing for kind ls"),
    "lam": (1.0, float, "e2kd: weight of the explanation term"),
    "explain_method": ("gradcam", str, "e2kd: gradcam | bcos | input_x_gradient"),
    "checkpoint": (None, str, "write and resume this checkpoint file instead of the cache"),
    "cache_dir": (None, str, "cache folder (default $KDLAB_CACHE or cache/)"),
    "results": (None, str, "results JSON file (default <run folder>/cli-<name>.json)"),
    "evaluate": (True, bool, "evaluate on the test (imagenet: val) split after training"),
    "device": ("auto", str, "auto | cpu | cuda | mps"),
    "progress": (True, bool, "show a progress bar (rank 0 only)"),
    "dry_run": (False, bool, "print the configuration and checkpoint path, train nothing"),
}
TRAIN_HELP = {
    "epochs": "training epochs", "batch_size": "global batch size (split over processes)",
    "optimizer": "sgd | adam", "lr": "peak learning rate", "momentum": "SGD momentum",
    "weight_decay": "weight decay", "schedule": "cosine | step", "gamma": "step schedule factor",
    "milestones": "step schedule epochs, e.g. 150,180,210", "warmup_epochs": "linear warm-up epochs",
    "augment": "random crops and flips", "pad": "crop padding (device-resident data)",
    "seed": "initialisation and batch-order seed", "bf16": "bf16 autocast on CUDA",
    "channels_last": "channels_last on CUDA", "compile": "torch.compile the model",
}


def option_table() -> dict:
    """Every option: the run options above plus every field of kdlab.train.TrainConfig."""
    from .train import TrainConfig

    table = dict(RUN_OPTIONS)
    for f in fields(TrainConfig):
        default = f.default if f.default is not f.default_factory else f.default_factory()
        kind = tuple if f.name == "milestones" else type(default)
        table[f.name] = (default, kind, TRAIN_HELP.get(f.name, f.name))
    return table


def _suggest(name: str, valid) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def coerce(name: str, value, kind):
    """`value` as the option's type; strings from the command line are parsed."""
    if value is None:
        return None
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        try:
            if kind is bool:
                if text.lower() in ("true", "yes", "1"):
                    return True
                if text.lower() in ("false", "no", "0"):
                    return False
                raise ValueError
            if kind is tuple:
                return tuple(int(v) for v in text.replace(" ", "").strip("()[]").split(",") if v)
            if text.lower() in ("none", "null"):
                return None
            return kind(text)
        except ValueError:
            raise CLIError(f"option {name!r} must be {kind.__name__}, got {value!r}") from None
    if kind is bool and not isinstance(value, bool):
        raise CLIError(f"option {name!r} must be true or false, got {value!r}")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise CLIError(f"option {name!r} must be an integer, got {value!r}")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CLIError(f"option {name!r} must be a number, got {value!r}")
        return float(value)
    if kind is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) for v in value):
            raise CLIError(f"option {name!r} must be a list of integers, got {value!r}")
        return tuple(value)
    if kind is str and not isinstance(value, str):
        raise CLIError(f"option {name!r} must be a string, got {value!r}")
    return value


def read_config(path: str | Path, table: dict) -> dict:
    """Options from a YAML file: a mapping of option names to values."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise CLIError(f"configuration file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise CLIError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise CLIError(f"{path} must hold a mapping of option names to values, not {type(raw).__name__}")
    values = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in table:
            raise CLIError(f"{path}: unknown option {key!r}{_suggest(name, table)}; "
                           "`python -m kdlab.cli --help` lists the options")
        values[name] = coerce(name, value, table[name][1])
    return values


def build_parser(table: dict) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kdlab.cli", allow_abbrev=False, argument_default=argparse.SUPPRESS,
        description="Train one teacher or student (run it under torchrun for several GPUs). "
                    "Options may also come from a YAML file; flags override it.")
    parser.add_argument("--config", "--params", dest="config", metavar="YAML", help="options file")
    for name, (default, kind, help_text) in table.items():
        text = f"{help_text} (default: {default})"
        # --batch-size in the help; --batch_size (the YAML spelling) accepted as well
        for flag, shown in ((f"--{name.replace('_', '-')}", text), (f"--{name}", argparse.SUPPRESS)):
            if shown is argparse.SUPPRESS and "_" not in name:
                continue
            if kind is bool:
                parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, help=shown)
            else:
                metavar = "N,N,..." if kind is tuple else kind.__name__.upper()
                parser.add_argument(flag, dest=name, metavar=metavar, help=shown)
    return parser


def parse_options(argv: list[str]) -> dict:
    """Defaults, then the YAML file, then the flags; validated. Raises CLIError."""
    table = option_table()
    argv = list(argv)
    if argv and not argv[0].startswith("-"):
        command = argv.pop(0)
        if command != "train":
            raise CLIError(f"unknown command {command!r}{_suggest(command, ['train'])}; "
                           "the only command is `train` (it may be left out)")
    parser = build_parser(table)
    given, unknown = parser.parse_known_args(argv)
    if unknown:
        bad = next((u for u in unknown if u.startswith("-")), unknown[0])
        if not bad.startswith("-"):
            raise CLIError(f"unexpected argument {bad!r} (options are --name value)")
        flag = bad.split("=")[0].lstrip("-").replace("-", "_")
        close = difflib.get_close_matches(flag, list(table) + ["config"], n=1)
        hint = f" (did you mean --{close[0].replace('_', '-')}?)" if close else ""
        raise CLIError(f"unknown option {bad.split('=')[0]!r}{hint}; "
                       "`python -m kdlab.cli --help` lists the options")
    given = vars(given)
    options = {name: spec[0] for name, spec in table.items()}
    if given.get("config"):
        options.update(read_config(given.pop("config"), table))
    given.pop("config", None)
    for name, value in given.items():
        options[name] = coerce(name, value, table[name][1])
    check(options)
    return options


def check(o: dict) -> None:
    """Values that are each fine but do not make a run together."""
    if o["role"] not in KINDS:
        raise CLIError(f"role must be 'teacher' or 'student', got {o['role']!r}")
    if o["kind"] not in KINDS[o["role"]]:
        raise CLIError(f"a {o['role']} can be of kind {', '.join(KINDS[o['role']])}; got {o['kind']!r}")
    if o["dataset"] not in DATASETS:
        raise CLIError(f"dataset must be one of {DATASETS}, got {o['dataset']!r}{_suggest(o['dataset'], DATASETS)}")
    if o["device"] not in ("auto", "cpu", "cuda", "mps"):
        raise CLIError(f"device must be auto, cpu, cuda or mps, got {o['device']!r}")
    distil = o["kind"] in ("kd", "kd_from_ls", "e2kd")
    if distil and not o["teacher_arch"]:
        raise CLIError(f"a {o['kind']} student needs --teacher-arch and --teacher-checkpoint "
                       "(or --teacher-pretrained)")
    if distil and not (o["teacher_checkpoint"] or o["teacher_pretrained"]):
        raise CLIError(f"a {o['kind']} student needs a teacher: --teacher-checkpoint PATH "
                       "(a finished fit/cache checkpoint) or --teacher-pretrained")
    if not distil and (o["teacher_checkpoint"] or o["teacher_pretrained"]):
        raise CLIError(f"a {o['kind']} {o['role']} uses no teacher; drop --teacher-checkpoint/--teacher-pretrained")
    for name in ("n_train", "n_test", "n_images", "shots", "workers"):
        if o[name] is not None and o[name] < (0 if name == "workers" else 1):
            raise CLIError(f"{name} must be at least {0 if name == 'workers' else 1}, got {o[name]}")
    try:
        train_config(o)
    except ValueError as err:
        raise CLIError(str(err)) from None


def train_config(o: dict):
    from .train import TrainConfig

    return TrainConfig(**{f.name: o[f.name] for f in fields(TrainConfig)})


def run_name(o: dict) -> str:
    """The name kdlab.course gives this model, so a notebook finds it in the cache."""
    if o["name"]:
        return o["name"]
    if o["role"] == "teacher":
        return "teacher" if o["kind"] == "scratch" else f"teacher-ls{o['epsilon']:g}"
    return f"student-{o['kind']}-seed{o['seed']}"


def load_data(o: dict):
    """(training data, evaluation data) as the notebooks select them (kdlab.course.course_data)."""
    import torch

    from .data import few_shot_indices, load_dataset

    if o["dataset"] == "imagenet":
        from .imagenet import load_imagenet

        train = load_imagenet("train", o["data_root"], o["image_size"], seed=o["data_seed"],
                              workers=o["workers"])
        test = load_imagenet("val", o["data_root"], o["image_size"], workers=o["workers"])
    else:
        train = load_dataset(o["dataset"], "train", n=o["n_train"], seed=o["data_seed"], root=o["data_root"])
        test = load_dataset(o["dataset"], "test", n=o["n_test"], seed=o["data_seed"], root=o["data_root"])
    if o["dataset"] == "imagenet":  # load_dataset's n= for the other datasets
        if o["n_train"] is not None:
            train = train.subset(torch.arange(min(o["n_train"], len(train))))
        if o["n_test"] is not None:
            test = test.subset(torch.arange(min(o["n_test"], len(test))))
    if o["n_images"] is not None:
        train = train.subset(torch.arange(min(o["n_images"], len(train))))
    if o["shots"] is not None:
        train = train.subset(few_shot_indices(train.labels, o["shots"], seed=o["data_seed"]))
    return train, test


def make_objective(o: dict):
    from . import losses

    kind = o["kind"]
    if kind == "scratch":
        return losses.CrossEntropy()
    if kind == "ls":
        return losses.CrossEntropy(o["epsilon"])
    if kind == "e2kd":
        if not hasattr(losses, "ExplanationDistillation"):
            raise CLIError("this kdlab has no e²KD objective (kdlab.losses.ExplanationDistillation)")
        return losses.ExplanationDistillation(o["temperature"], o["alpha"], lam=o["lam"],
                                              method=o["explain_method"])
    return losses.Distillation(o["temperature"], o["alpha"])


def teacher_file(o: dict) -> Path:
    """The one file --teacher-checkpoint names (it may be a glob such as cache/teacher-*.pt)."""
    pattern = os.path.expanduser(o["teacher_checkpoint"])
    matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    if len(matches) != 1:
        raise CLIError(f"--teacher-checkpoint {pattern!r} matches {len(matches)} files"
                       + (f": {', '.join(matches)}" if matches else "") + "; it must name exactly one")
    if not Path(matches[0]).is_file():
        raise CLIError(f"teacher checkpoint {matches[0]} does not exist; train the teacher first")
    return Path(matches[0])


def load_teacher(o: dict, num_classes: int, in_channels: int):
    """The teacher as load_or_train identifies it: a TrainedModel keyed like the cache's."""
    from .models import get_model
    from .train import TrainedModel, load_checkpoint

    if o["teacher_pretrained"]:
        return get_model(o["teacher_arch"], num_classes, in_channels, pretrained=True)
    path = teacher_file(o)
    model = get_model(o["teacher_arch"], num_classes, in_channels)
    state = load_checkpoint(path, model)  # an error, never random weights
    return TrainedModel(model, state["key"], path, state.get("history", []), loaded=True)


def cache_location(o: dict, name: str, model, train, objective, cfg, teacher) -> tuple[str, Path]:
    """(key, file) that load_or_train uses for this configuration (the same key formula)."""
    from .paths import CACHE_DIR
    from .train import TrainedModel, architecture_signature, config_key, weights_key

    teacher_id = None if teacher is None else (
        teacher.key if isinstance(teacher, TrainedModel) else weights_key(teacher))
    key = config_key(architecture_signature(model), asdict(cfg), objective.config(),
                     train.fingerprint(), teacher_id, "")
    return key, Path(o["cache_dir"] or CACHE_DIR) / f"{name}-{key}.pt"


def evaluate(o: dict, model, test, teacher) -> dict:
    """Accuracy (and agreement with the teacher) on the evaluation split."""
    from . import distributed, metrics
    from .train import TrainedModel

    teacher_model = teacher.model if isinstance(teacher, TrainedModel) else teacher
    if teacher_model is not None:
        teacher_model.to(next(model.parameters()).device).eval()
    if o["dataset"] == "imagenet":
        from .imagenet import evaluate_folder

        return evaluate_folder(model, test, teacher=teacher_model, workers=o["workers"],
                               progress=o["progress"])
    if not distributed.is_rank0():  # small test sets: rank 0 alone
        return {}
    teacher_logits = metrics.predict(teacher_model, test) if teacher_model is not None else None
    return metrics.evaluate(model, test, teacher_logits)


def run(o: dict) -> dict:
    """Train (or load from the cache) the configured model, evaluate it, write the results."""
    import torch

    from . import distributed
    from .models import get_model
    from .results import environment, write_json_atomic
    from .train import fit, load_or_train, pick_device

    started = time.time()
    info = distributed.init(device=o["device"] if o["device"] in ("cpu", "cuda") else "auto")
    if o["device"] == "mps" and info.distributed:
        raise CLIError("several processes need CUDA GPUs or CPUs, not mps")
    device = info.device if info.distributed else pick_device(o["device"])
    cfg = train_config(o)
    if o["teacher_checkpoint"]:
        teacher_file(o)  # fail now, not after loading the data
    train, test = load_data(o)
    teacher = None
    if o["kind"] in ("kd", "kd_from_ls", "e2kd"):
        teacher = load_teacher(o, train.num_classes, train.in_channels)
    objective = make_objective(o)
    name = run_name(o)

    def build():
        return get_model(o["arch"], train.num_classes, train.in_channels)

    torch.manual_seed(cfg.seed)  # as load_or_train: the same initial weights for the same seed
    model = build()
    key, path = cache_location(o, name, model, train, objective, cfg, teacher)
    if o["checkpoint"]:
        path = Path(o["checkpoint"])
    summary = {"name": name, "key": key, "checkpoint": str(path), "world_size": info.world_size,
               "train_images": len(train), "options": o}
    if o["dry_run"]:
        if info.rank == 0:
            for k, v in o.items():
                print(f"{k:>20}: {v}")
            print(f"would train {name} on {len(train)} images with {info.world_size} process(es) "
                  f"into {path}")
        return summary
    if o["checkpoint"]:
        from .train import TrainedModel

        teacher_model = teacher.model if isinstance(teacher, TrainedModel) else teacher
        loaded = path.exists() and torch.load(path, map_location="cpu", weights_only=False).get("complete")
        history = fit(model, train, objective, cfg, teacher=teacher_model, checkpoint=path, key=key,
                      device=device, progress=o["progress"], desc=name)  # resumes or finds it done
    else:
        trained = load_or_train(name, build, train, objective, cfg, teacher=teacher,
                                cache_dir=o["cache_dir"], device=device, progress=o["progress"])
        model, history, loaded, path = trained.model, trained.history, trained.loaded, trained.path
        summary.update(checkpoint=str(path), key=trained.key)
    summary.update(history=history, loaded=bool(loaded))
    if o["evaluate"]:
        summary["test"] = evaluate(o, model.to(device), test, teacher)
    if info.rank == 0:
        summary.update(environment=environment(device), wall_time_s=round(time.time() - started, 1),
                       finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        from .paths import run_dir

        out = Path(o["results"]) if o["results"] else run_dir() / f"cli-{name}.json"
        write_json_atomic(summary, out)
        test_text = ", ".join(f"{k} {v:.4f}" for k, v in summary.get("test", {}).items()
                              if isinstance(v, float))
        print(f"{name}: checkpoint {path}" + (f"; test {test_text}" if test_text else "")
              + f"; results {out}")
    distributed.barrier()
    return summary


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        options = parse_options(argv)
    except CLIError as err:
        print(f"python -m kdlab.cli: error: {err}", file=sys.stderr)
        return 2
    from . import distributed

    if os.environ.get("RANK", "0") != "0":  # one process speaks; errors still reach stderr
        sys.stdout = open(os.devnull, "w")
    try:
        run(options)
    except CLIError as err:
        print(f"python -m kdlab.cli: error: {err}", file=sys.stderr)
        return 2
    finally:
        distributed.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

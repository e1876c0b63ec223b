"""Train one teacher or student from the command line, on one device or several (torchrun).

Taught in the README's "Full runs at scale" section. A notebook's full run trains its models
through kdlab.recipes; this entry point trains the same models (the same names, objectives
and cache keys) outside a notebook, into the same cache, so that the notebook run afterwards
finds them:

    python -m kdlab.scale.cli train --config run.yaml                    # one process
    torchrun --nproc_per_node=4 -m kdlab.scale.cli train --config run.yaml   # four GPUs, DDP
    python -m kdlab.scale.cli train --role teacher --dataset cifar100 --arch resnet32x4 --epochs 240
    python -m kdlab.scale.cli --params run.yaml --epochs 3               # "train" may be left out

The options are the fields of three dataclasses: kdlab.recipes.Recipe (what to train),
kdlab.train.TrainConfig (how) and `Options` below (data, teacher, files); the comment beside
each field is its help. Every option can be given in the YAML file (`name: value`) or as a
flag (`--name value`, dashes or underscores); flags win. An unknown or mistyped option is an
error that names the closest valid one. `--dry-run` prints the resolved configuration and the
checkpoint file the run would write, and trains nothing. `python -m kdlab.scale.cli --help`
lists every option with its default.
"""

from __future__ import annotations

import argparse
import glob
import inspect
import math
import os
import re
import sys
import time
import typing
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

from ..runtime.notebook import did_you_mean
from ..recipes import Recipe
from ..train import TrainConfig

DATASETS = ("synthetic", "fashion_mnist", "cifar10", "cifar100", "imagenet")


@dataclass
class Options:
    """Which data, which teacher, which files: what the command line adds to a Recipe."""

    name: str | None = None          # cache/run name; default teacher, teacher-ls<eps> or student-<kind>-seed<seed>
    dataset: str = "synthetic"       # synthetic | fashion_mnist | cifar10 | cifar100 | imagenet
    data_root: str | None = None     # folder holding the dataset (default data/, or data/imagenet)
    data_seed: int = 0               # seed of the synthetic data and of the few-shot selection
    n_train: int | None = None       # keep the first n training images (synthetic: generate n); default all
    n_test: int | None = None        # keep the first n test images; default all
    n_images: int | None = None      # train on the first n_images of those (the course's student_images)
    shots: int | None = None         # then keep this many images per class (few-shot, fixed data_seed)
    image_size: int = 224            # imagenet: crop size
    workers: int | None = None       # imagenet: loader worker processes per training process
    teacher_arch: str | None = None  # kd/e2kd: the teacher's architecture
    teacher_checkpoint: str | None = None  # kd/e2kd: the teacher's checkpoint (a path or a glob matching one file)
    teacher_pretrained: bool = False  # kd/e2kd: torchvision's pretrained ImageNet weights as the teacher
    checkpoint: str | None = None    # write and resume this checkpoint file instead of the cache
    cache_dir: str | None = None     # cache folder (default $KDLAB_CACHE or cache/)
    results: str | None = None       # results JSON file (default <run folder>/cli-<name>.json)
    evaluate: bool = True            # evaluate on the test (imagenet: val) split after training
    device: str = "auto"             # auto | cpu | cuda | mps
    progress: bool = True            # show a progress bar (rank 0 only)
    dry_run: bool = False            # print the configuration and checkpoint path, train nothing


SECTIONS = (Recipe, TrainConfig, Options)


class CLIError(ValueError):
    """A bad option, option value or configuration file."""


# --- options generated from the dataclasses' fields ----------------------------------------------

def option_table() -> dict[str, tuple]:
    """name: (default, type, optional, help) for every field of the SECTIONS."""
    table = {}
    for cls in SECTIONS:
        hints = typing.get_type_hints(cls)
        comments = dict(re.findall(r"^\s+(\w+):[^#\n]*#\s*(.+)$", inspect.getsource(cls), re.M))
        for f in fields(cls):
            kind, args = hints[f.name], typing.get_args(hints[f.name])
            optional = type(None) in args
            if optional:
                kind = next(a for a in args if a is not type(None))
            kind = typing.get_origin(kind) or kind  # tuple[int, ...] -> tuple
            default = f.default if f.default is not MISSING else f.default_factory()
            table[f.name] = (default, kind, optional, comments.get(f.name, ""))
    return table


def _flag(name: str) -> str:
    """An option as typed on the command line: batch_size -> --batch-size."""
    return f"--{name.replace('_', '-')}"


KIND_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
              tuple: "a list of integers"}


def coerce(name: str, value, kind, optional: bool = False):
    """`value` as the option's type: a flag's text is parsed, a YAML value is checked."""
    if optional and (value is None or isinstance(value, str) and value.strip().lower() in ("none", "null")):
        return None
    if isinstance(value, str) and kind is not str:  # text from the command line (or quoted YAML)
        text = value.strip().lower()
        try:
            if kind is bool:
                value = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}[text]
            elif kind is tuple:
                value = tuple(int(v) for v in text.replace(" ", "").strip("()[]").split(",") if v)
            else:
                value = kind(text)
        except (ValueError, KeyError):
            pass  # reported below
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is tuple and isinstance(value, list):
        value = tuple(value)
    if (not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool))
            or (kind is tuple and not all(isinstance(v, int) for v in value))):
        raise CLIError(f"option {name!r} must be {KIND_WORDS[kind]}, got {value!r}")
    if kind is float and not math.isfinite(value):  # float("nan") parses, and passes every range check
        raise CLIError(f"option {name!r} must be a finite number, got {value!r}")
    return value


def read_config(path: str | Path, table: dict) -> dict:
    """The `name: value` mapping of a YAML file (names with dashes or underscores), unparsed."""
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
    values = {str(k).replace("-", "_"): v for k, v in raw.items()}
    for name in values:
        if name not in table:
            raise CLIError(f"{path}: unknown option {name!r}{did_you_mean(name, table)}; "
                           "`python -m kdlab.scale.cli --help` lists the options")
    return values


def build_parser(table: dict) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kdlab.scale.cli", allow_abbrev=False, argument_default=argparse.SUPPRESS,
        description="Train one teacher or student (run it under torchrun for several GPUs). "
                    "Options may also come from a YAML file; flags override it.")
    parser.add_argument("--config", "--params", dest="config", metavar="YAML", help="options file")
    for name, (default, kind, _, help_text) in table.items():
        # --batch-size in the help; --batch_size (the YAML spelling) accepted as well
        flags = [_flag(name)] + ([f"--{name}"] if "_" in name else [])
        text = help_text if "default" in help_text else f"{help_text} (default: {default})"
        for flag, shown in zip(flags, (text, argparse.SUPPRESS)):
            if kind is bool:
                parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, help=shown)
            else:
                metavar = "N,N,..." if kind is tuple else kind.__name__.upper()
                parser.add_argument(flag, dest=name, metavar=metavar, help=shown)
    return parser


def parse_options(argv: list[str]) -> tuple[Recipe, TrainConfig, Options]:
    """Defaults, then the YAML file, then the flags; validated. Raises CLIError."""
    table = option_table()
    argv = list(argv)
    if argv and not argv[0].startswith("-"):
        command = argv.pop(0)
        if command != "train":
            raise CLIError(f"unknown command {command!r}{did_you_mean(command, ['train'])}; "
                           "the only command is `train` (it may be left out)")
    given, unknown = build_parser(table).parse_known_args(argv)
    if unknown:
        bad = next((u for u in unknown if u.startswith("-")), unknown[0])
        if not bad.startswith("-"):
            raise CLIError(f"unexpected argument {bad!r} (options are --name value)")
        typed = bad.split("=")[0]
        hint = did_you_mean(typed.lstrip("-").replace("-", "_"), list(table) + ["config"], spell=_flag)
        raise CLIError(f"unknown option {typed!r}{hint}; "
                       "`python -m kdlab.scale.cli --help` lists the options")
    given = vars(given)
    values = read_config(given.pop("config"), table) if "config" in given else {}
    values.update(given)  # flags win
    values = {name: coerce(name, value, *table[name][1:3]) for name, value in values.items()}
    try:
        recipe, cfg, options = (cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})
                                for cls in SECTIONS)
    except ValueError as err:
        raise CLIError(str(err)) from None
    check(recipe, options)
    return recipe, cfg, options


def check(recipe: Recipe, o: Options) -> None:
    """Values that are each fine but do not make a run together."""
    if o.dataset not in DATASETS:
        raise CLIError(f"dataset must be one of {DATASETS}, "
                       f"got {o.dataset!r}{did_you_mean(o.dataset, DATASETS)}")
    if o.device not in ("auto", "cpu", "cuda", "mps"):
        raise CLIError(f"device must be auto, cpu, cuda or mps, got {o.device!r}")
    if recipe.distils and not o.teacher_arch:
        raise CLIError(f"a {recipe.kind} student needs --teacher-arch and --teacher-checkpoint "
                       "(or --teacher-pretrained)")
    if recipe.distils and not (o.teacher_checkpoint or o.teacher_pretrained):
        raise CLIError(f"a {recipe.kind} student needs a teacher: --teacher-checkpoint PATH "
                       "(a finished fit/cache checkpoint) or --teacher-pretrained")
    if not recipe.distils and (o.teacher_checkpoint or o.teacher_pretrained):
        raise CLIError(f"a {recipe.kind} {recipe.role} uses no teacher; drop --teacher-checkpoint/--teacher-pretrained")
    for name in ("n_train", "n_test", "n_images", "shots", "workers"):
        least = 0 if name == "workers" else 1
        if getattr(o, name) is not None and getattr(o, name) < least:
            raise CLIError(f"{name} must be at least {least}, got {getattr(o, name)}")
    try:
        recipe.objective()  # temperature, alpha, epsilon, lam, explain_method
    except ValueError as err:
        raise CLIError(str(err)) from None


# --- the run ----------------------------------------------------------------------------------

def load_data(o: Options):
    """(training data, evaluation data) selected as the notebooks select them (kdlab.recipes.course_data)."""
    import torch

    from ..data import few_shot_indices
    from ..recipes import course_data

    if o.dataset == "imagenet":
        from .imagenet import load_imagenet

        train = load_imagenet("train", o.data_root, o.image_size, seed=o.data_seed, workers=o.workers)
        test = load_imagenet("val", o.data_root, o.image_size, workers=o.workers)
        if o.n_train is not None:  # load_dataset's n= for the other datasets
            train = train.subset(torch.arange(min(o.n_train, len(train))))
        if o.n_test is not None:
            test = test.subset(torch.arange(min(o.n_test, len(test))))
    else:
        train, test = course_data(o.dataset, o.n_train, o.n_test, seed=o.data_seed, root=o.data_root)
    if o.n_images is not None:
        train = train.subset(torch.arange(min(o.n_images, len(train))))
    if o.shots is not None:
        train = train.subset(few_shot_indices(train.labels, o.shots, seed=o.data_seed))
    return train, test


def teacher_file(o: Options) -> Path:
    """The one file --teacher-checkpoint names (it may be a glob such as cache/teacher-*.pt)."""
    pattern = os.path.expanduser(o.teacher_checkpoint)
    matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    if len(matches) != 1:
        raise CLIError(f"--teacher-checkpoint {pattern!r} matches {len(matches)} files"
                       + (f": {', '.join(matches)}" if matches else "") + "; it must name exactly one")
    if not Path(matches[0]).is_file():
        raise CLIError(f"teacher checkpoint {matches[0]} does not exist; train the teacher first")
    return Path(matches[0])


def load_teacher(o: Options, num_classes: int, in_channels: int):
    """The teacher as load_or_train identifies it: a TrainedModel keyed like the cache's."""
    from ..models import get_model
    from ..runtime.checkpoints import CheckpointError, load_checkpoint
    from ..train import TrainedModel

    if o.teacher_pretrained:
        return get_model(o.teacher_arch, num_classes, in_channels, pretrained=True)
    path = teacher_file(o)
    model = get_model(o.teacher_arch, num_classes, in_channels)
    try:
        state = load_checkpoint(path, model)  # an error, never random weights
    except CheckpointError as err:
        raise CLIError(wrong_architecture(path, o.teacher_arch, model, num_classes, in_channels)
                       or str(err)) from None
    return TrainedModel(model, state["key"], path, state.get("history", []), loaded=True)


def shape_differences(weights: dict, model) -> list[str]:
    """How a checkpoint's weights differ from `model`'s parameters and buffers, one line each."""
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: list(v.shape) for k, v in weights.items() if hasattr(v, "shape")}
    lines = [f"{k} is {theirs[k]} in the checkpoint, {ours[k]} in the model"
             for k in ours if k in theirs and ours[k] != theirs[k]]
    lines += [f"{k} is missing from the checkpoint" for k in ours if k not in theirs]
    return lines + [f"{k} is in the checkpoint only" for k in theirs if k not in ours]


def wrong_architecture(path: Path, arch: str, model, num_classes: int, in_channels: int) -> str | None:
    """A short account of a teacher checkpoint whose weights do not fit `arch` (torch lists
    every mismatched tensor), naming the kdlab architectures that do fit; None when the
    checkpoint's trouble is something else."""
    from ..models import _REGISTRY as KDLAB_ARCHITECTURES  # the names get_model builds itself
    from ..models import get_model
    from ..runtime.checkpoints import read_checkpoint

    try:
        weights = read_checkpoint(path)["model"]
        differences = shape_differences(weights, model)
    except Exception:  # noqa: BLE001 - unreadable or foreign: load_checkpoint's message says so
        return None
    if not differences:
        return None
    fits = [name for name in sorted(KDLAB_ARCHITECTURES)
            if not shape_differences(weights, get_model(name, num_classes, in_channels))]
    fix = (f"It fits --teacher-arch {' or '.join(fits)}" if fits else
           "No kdlab architecture with this dataset's classes fits it: give the architecture "
           "(and dataset) the teacher was trained with")
    return (f"teacher checkpoint {path} does not fit --teacher-arch {arch}: {len(differences)} "
            f"tensors differ (first: {differences[0]}). {fix}.")


def evaluate(o: Options, model, test, teacher) -> dict:
    """Accuracy (and agreement with the teacher) on the evaluation split."""
    from . import distributed
    from .. import metrics

    if teacher is not None:
        teacher.to(next(model.parameters()).device).eval()
    if o.dataset == "imagenet":
        from .imagenet import evaluate_folder

        return evaluate_folder(model, test, teacher=teacher, workers=o.workers, progress=o.progress)
    if not distributed.is_rank0():  # small test sets: rank 0 alone
        return {}
    teacher_logits = metrics.predict(teacher, test) if teacher is not None else None
    return metrics.evaluate(model, test, teacher_logits)


def run(recipe: Recipe, cfg: TrainConfig, o: Options) -> dict:
    """Train (or load from the cache) the configured model, evaluate it, write the results."""
    import torch

    from . import distributed
    from ..runtime.files import run_dir, write_json_atomic
    from ..runtime.notebook import environment
    from ..runtime.checkpoints import read_checkpoint
    from ..runtime.device import pick_device
    from ..train import TrainedModel, cache_location, fit

    started = time.time()
    info = distributed.init(device=o.device if o.device in ("cpu", "cuda") else "auto")
    if o.device == "mps" and info.distributed:
        raise CLIError("several processes need CUDA GPUs or CPUs, not mps")
    device = info.device if info.distributed else pick_device(o.device)
    strategy = distributed.strategy()  # DDP under torchrun, else None: one process
    if o.teacher_checkpoint:
        teacher_file(o)  # fail now, not after loading the data
    train, test = load_data(o)
    teacher = load_teacher(o, train.num_classes, train.in_channels) if recipe.distils else None
    teacher_model = teacher.model if isinstance(teacher, TrainedModel) else teacher
    name = o.name or recipe.name(cfg.seed)
    key, path = cache_location(name, recipe.build(train), train, recipe.objective(), cfg, teacher,
                               cache_dir=o.cache_dir)
    options = {**asdict(recipe), **asdict(cfg), **asdict(o)}
    summary = {"name": name, "key": key, "checkpoint": o.checkpoint or str(path),
               "world_size": info.world_size, "train_images": len(train), "options": options}
    if o.dry_run:
        if info.rank == 0:
            for k, v in options.items():
                print(f"{k:>20}: {v}")
            print(f"would train {name} on {len(train)} images with {info.world_size} process(es) "
                  f"into {summary['checkpoint']}")
        return summary
    if o.checkpoint:  # our own file: fit resumes it, or finds it done
        path = Path(o.checkpoint)
        loaded = path.exists() and read_checkpoint(path).get("complete")
        torch.manual_seed(cfg.seed)  # as load_or_train: the same initial weights for the same seed
        model = recipe.build(train)
        history = fit(model, train, recipe.objective(), cfg, teacher=teacher_model, checkpoint=path, key=key,
                      device=device, progress=o.progress, desc=name, strategy=strategy)
    else:
        trained = recipe.train(train, cfg, teacher, name=name, cache_dir=o.cache_dir, device=device,
                               progress=o.progress, strategy=strategy)
        model, history, loaded = trained.model, trained.history, trained.loaded
    summary.update(history=history, loaded=bool(loaded))
    if o.evaluate:
        summary["test"] = evaluate(o, model.to(device), test, teacher_model)
    if info.rank == 0:
        summary.update(environment=environment(device), wall_time_s=round(time.time() - started, 1),
                       finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        out = Path(o.results) if o.results else run_dir() / f"cli-{name}.json"
        write_json_atomic(summary, out)
        test_text = ", ".join(f"{k} {v:.4f}" for k, v in summary.get("test", {}).items()
                              if isinstance(v, float))
        print(f"{name}: checkpoint {path}" + (f"; test {test_text}" if test_text else "")
              + f"; results {out}")
    distributed.barrier()
    return summary


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from .. import bcos
    from . import distributed

    bcos.register_models()  # so that --arch / --teacher-arch may name a B-cos network
    try:
        recipe, cfg, options = parse_options(argv)
        if os.environ.get("WORLD_SIZE", "1") not in ("", "1") and os.environ.get("RANK", "0") != "0":
            # under torchrun one process speaks; errors still reach stderr
            sys.stdout = open(os.devnull, "w")
        run(recipe, cfg, options)
    except (CLIError, distributed.SetupError) as err:
        print(f"python -m kdlab.scale.cli: error: {err}", file=sys.stderr)
        return 2
    finally:
        distributed.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

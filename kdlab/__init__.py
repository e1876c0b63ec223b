"""kdlab: the shared code behind the knowledge-distillation and interpretability notebooks.

Three floors, each depending only on the ones below it:

The core, what the notebooks teach, one short module per concept:

    files              where data, checkpoints and results live; atomic writes
    data, datasets     images as device-resident tensors; datasets by name   (notebook 00)
    synthetic          the synthetic concept dataset                         (notebook 00)
    notebook           a notebook's parameters in, its results out           (notebook 00)
    models             CIFAR ResNets and torchvision models                  (notebook 01)
    losses             cross-entropy, label smoothing, KD, e²KD              (notebooks 01, 02, 05)
    train              fit, checkpoints, the load-or-train cache            (notebook 01)
    progress           progress bars; one summary line for many cached models (notebook 01)
    parallel           several models trained at once on a many-core CPU    (notebook 02)
    recipes            what to train: the teacher and each kind of student  (notebooks 01, 02)
    metrics            accuracy, agreement, calibration                     (notebooks 01, 02)
    verdicts           paired per-seed differences, bootstrap intervals, verdicts
    inference          a trained model over many images: eval mode, batches, hooks (notebook 03)
    dissect, broden    network dissection; concept data and the Broden format (notebook 03)
    explain, explain_metrics   GradCAM, B-cos and input×gradient maps; EPG, IoU, pixel scores
                                                                            (notebooks 04-06)
    plots              every figure and widget                              (all notebooks)
    papers             the papers' published numbers (papers.json)          (notebooks 04, 05, book)

kdlab.experiments, one module per paper's experiment, built from the core:
    han2023 (notebook 04), e2kd, frozen, bcos_models (notebooks 05, 06)

kdlab.scale, full runs beyond a laptop: distributed (torchrun / DDP around `fit`), imagenet
    (folder data), realdata (Waterbirds, VOC, ImageNet few-shot, pretrained teachers), cli
    (`python -m kdlab.scale.cli`, one model from the command line)

kdlab.tools, the course's tooling: run (`python -m kdlab.tools.run`, the papermill course
    runner behind `make run`), book (`python -m kdlab.tools.book`, the Jupyter Book), compare
    (`python -m kdlab.tools.compare`, a run's numbers against the committed notebooks'),
    student (`python -m kdlab.tools.student`, the notebooks with exercise solutions removed)

Importing kdlab imports only torch, torchvision and numpy; everything heavier (pandas,
matplotlib, ipywidgets, papermill, bcos) is imported inside the functions that need it, so
`import kdlab` stays fast in every notebook.
"""

__version__ = "0.1.0"

from . import data, datasets, files, losses, metrics, models, notebook, parallel, plots, progress, recipes, synthetic, train  # noqa: E402,F401
from .notebook import check_params  # noqa: E402,F401

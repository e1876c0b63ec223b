"""kdlab: the shared code behind the knowledge-distillation and interpretability notebooks.

The core, kdlab/*.py: what the notebooks teach, one short module per concept, each naming the
notebook that teaches it. Read it in this order:

    data, datasets     images as device-resident tensors; datasets by name   (notebook 00)
    synthetic          the synthetic concept dataset                         (notebook 00)
    models             CIFAR ResNets and torchvision models                  (notebook 01)
    losses             cross-entropy, label smoothing, KD, e²KD              (notebooks 01, 02, 05)
    train              fit, and the load-or-train cache                      (notebook 01)
    teacher_table      a teacher's logits for every augmented view, shared by its KD students
    soft_targets       fixed soft targets over a chosen class grouping       (notebook 02)
    recipes            what to train: the course's settings, teacher and students (01, 02)
    metrics            accuracy, agreement, calibration, class similarity    (notebooks 01, 02)
    verdicts           paired t-intervals, equivalence, Holm: the five outcomes (notebooks 02-06)
    claims             the claims fixed in advance (params/claims.yaml), decided (02-06)
    inference          a trained model over many images: eval mode, batches, hooks (notebook 03)
    concepts           concept data: images with per-pixel concept labels   (notebook 03)
    quantiles, dissect network dissection: unit thresholds, IoU, detectors   (notebook 03)
    explain, explain_metrics   GradCAM, B-cos and input×gradient maps; EPG, IoU, pixel scores
                                                                            (notebooks 04-06)
    bcos               B-cos networks and their explanations                 (notebook 05)
    papers             the papers' published numbers (papers.json)          (notebooks 04, 05, book)

Around the core, each floor importing only the core, kdlab.runtime and the floors named before it:

kdlab.runtime, what runs around the science (the core imports it; it imports nothing else):
    files (paths, atomic writes), device (CPU or GPU, training threads), checkpoints, progress
    (bars and one-line summaries), parallel (several models at once on a many-core CPU),
    notebook (a notebook's parameters in, its results out), moved (aliases of moved names)

kdlab.experiments, one module per paper's experiment: han2023 (notebook 04), e2kd, frozen and
    guidance (a teacher whose explanations localise; notebook 05), shortcut (notebook 06's
    control students)

kdlab.figures, what the notebooks draw: plots (matplotlib figures), widgets (pickers that work
    in JupyterLab and in the published book alike)

kdlab.scale, full runs beyond a laptop: distributed (torchrun / DDP around `fit`), imagenet
    (folder data), broden (Broden folders for dissection), pretrained (models trained
    elsewhere), realdata (Waterbirds, VOC, ImageNet few-shot, pretrained teachers), cli
    (`python -m kdlab.scale.cli`, one model from the command line)

kdlab.tools, the course's tooling: run (`python -m kdlab.tools.run`, the papermill course
    runner behind `make run`), book (`python -m kdlab.tools.book`, the Jupyter Book), compare
    (`python -m kdlab.tools.compare`, a run's numbers against the committed notebooks'),
    student (`python -m kdlab.tools.student`, the notebooks with exercise solutions removed)

Every notebook starts with `kdlab.check_params(globals(), ...)` and `kdlab.pick_device()` and
ends with `kdlab.save_results(...)` (kdlab.runtime.notebook, kdlab.runtime.device). Importing
kdlab imports only torch, torchvision and numpy; everything heavier (pandas, matplotlib,
ipywidgets, papermill, bcos) is imported inside the functions that need it, so `import kdlab`
stays fast in every notebook.
"""

__version__ = "0.1.0"

from . import data, datasets, losses, metrics, models, recipes, runtime, synthetic, train  # noqa: E402,F401,I001
from .runtime.moved import moved_names  # noqa: E402
from .runtime.device import pick_device  # noqa: E402,F401
from .runtime.notebook import check_params, save_results  # noqa: E402,F401

# modules that moved out of the core: older notebooks (and student copies) import them from here
__getattr__ = moved_names(__name__, {
    "broden": "kdlab.scale.broden:*", "plots": "kdlab.figures.plots:*",
    "files": "kdlab.runtime.files:*", "progress": "kdlab.runtime.progress:*",
    "parallel": "kdlab.runtime.parallel:*", "notebook": "kdlab.runtime.notebook:*"})

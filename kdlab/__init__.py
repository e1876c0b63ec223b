"""kdlab: the shared code behind the knowledge-distillation and interpretability notebooks.

Importing kdlab imports only torch, torchvision and numpy; everything heavier (pandas,
matplotlib, ipywidgets, papermill, bcos) is imported inside the functions that need it, so
`import kdlab` stays fast in every notebook. One short module per concept:

    data, synthetic   datasets as tensors; the synthetic concept dataset   (notebook 00)
    models            CIFAR ResNets and torchvision models                  (notebook 01)
    losses            cross-entropy, label smoothing, KD                    (notebooks 01, 02)
    train             fit, checkpoints, the load-or-train cache            (notebook 01)
    metrics           accuracy, agreement, calibration                     (notebooks 01, 02)
    course            the course's shared teacher and students             (notebooks 01, 02, 04)
    params, results   notebook parameters and results files                (notebook 00)
    plots             figures                                              (notebooks 00-02)
    run               the papermill course runner behind `make run`
    dissect, broden   network dissection; the Broden format                (notebook 03)
    han, saliency_scores   Han et al.'s experiment; ground-truth heatmap scores (notebook 04)
    explain, explain_metrics, frozen, e2kd, bcos_models   e²KD               (notebooks 05, 06)
    realdata, imagenet   Waterbirds, VOC, ImageNet folders (full runs)
    distributed, cli  torchrun / DistributedDataParallel, one run from the command line
    book              the Jupyter Book (`make book`)
"""

__version__ = "0.1.0"

from . import data, losses, metrics, models, params, paths, plots, results, synthetic, train, course  # noqa: E402,F401
from .params import check_params  # noqa: E402,F401

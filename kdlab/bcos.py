"""B-cos networks (Böhle et al.): classifiers that explain themselves as dynamic-linear maps.

Taught in notebook 05 (the B-cos variant of e²KD). What kdlab knows about B-cos networks is
here: the architectures, their registration with kdlab.models, and how they are explained
(kdlab.explain's method "bcos" is `encoded_forward` and `contribution_map`). The e²KD loss
(kdlab.losses.ExplanationDistillation) explains a B-cos student through kdlab.explain like
any other, in a pass of its own: explanation mode detaches the dynamic scalings, which the
student's logits must keep.

A B-cos layer replaces the affine map w·x + ReLU by |cos(x, ŵ)|^(B-1) · (ŵ·x), so the whole
network is dynamic linear, logit = W(x)ᵀx, and W(x) (computed with the dynamic scalings
detached: `explanation_mode`) is a faithful explanation. Input images are encoded as 6
channels [r, g, b, 1-r, 1-g, 1-b] (the bcos package's `AddInverse`), so that dark and bright
pixels both carry a norm. Every kdlab model takes [0, 1] images: `BcosClassifier` applies the
encoding itself and keeps it separate (`encode`, `net`) so explanations can take the gradient
with respect to the encoded input.

`register_models()` (call it once before kdlab.models.get_model builds one; calling it again
does nothing) makes these names known:
- "bcos_resnet8", "bcos_resnet8_w8", "bcos_resnet14": small B-cos ResNets for 32×32 images,
  the bcos package's own `BcosResNet` (BcosConv2d layers, uncentered batch norm without
  bias, B = 2) with three stages layer1..layer3 like kdlab's CIFAR ResNets;
- "bcos_resnet18", "bcos_resnet34", "bcos_resnet50", "bcos_densenet121", "bcos_densenet169":
  the bcos package's ImageNet networks; pretrained=True downloads the authors' ImageNet
  weights (resnet18 68.7 %, resnet34 72.3 %, densenet169 75.2 % top-1) through the
  package's torch.hub entry points, which needs internet once.
B-cos networks train with Adam (the package uses lr 1e-3; the small nets here learn faster
with 3e-3 on the default data: kdlab.recipes.train_config("adam", lr=3e-3)).
The `bcos` package is imported inside the functions that use it, so importing kdlab stays light.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

from .inference import capture, unwrap
from .models import register_model

SMALL_RESNETS = {"bcos_resnet8": (8, 16), "bcos_resnet8_w8": (8, 8), "bcos_resnet14": (14, 16)}  # depth, width
IMAGENET_ENTRY_POINTS = {"bcos_resnet18": "resnet18", "bcos_resnet34": "resnet34",
                         "bcos_resnet50": "resnet50", "bcos_densenet121": "densenet121",
                         "bcos_densenet169": "densenet169"}


class BcosClassifier(nn.Module):
    """A B-cos network behind the 6-channel input encoding; takes [0, 1] images."""

    is_bcos = True

    def __init__(self, net: nn.Module, in_channels: int = 3):
        super().__init__()
        from bcos.data.transforms import AddInverse

        self.in_channels = in_channels
        self.encode = AddInverse(dim=1)   # [x, 1 - x]
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.encode(x))

    def explanation_mode(self):
        """Context manager: dynamic scalings detached, so input gradients are W(x)."""
        from bcos.common import explanation_mode

        return explanation_mode(self)

    def __getattr__(self, name):
        # layer1..layer4, fc, ... of the wrapped network, so GradCAM's layer names work as
        # for any ResNet (kdlab.explain looks for "net.layer3" as well).
        try:
            return super().__getattr__(name)
        except AttributeError:
            net = super().__getattr__("net")
            return getattr(net, name)


def is_bcos_model(model: nn.Module) -> bool:
    """True for kdlab's B-cos classifiers (an `encode` to 6 channels and a B-cos `net`)."""
    base = unwrap(model)
    return hasattr(base, "encode") and hasattr(base, "net") and getattr(base, "is_bcos", False)


# --- the architectures --------------------------------------------------------------------------

def small_bcos_resnet(num_classes: int, in_channels: int = 3, depth: int = 8, width: int = 16,
                      logit_temperature: float | None = 0.1) -> BcosClassifier:
    """A CIFAR-style B-cos ResNet (depth 6n+2, stages of width w, 2w, 4w) for small images.

    logit_temperature: the logits are divided by it (the bcos package's LogitLayer). A B-cos
    network's outputs are small (each layer can only scale its input down by the cosine),
    so with cross-entropy and a short CPU budget the undivided network learns very slowly;
    dividing by 0.1 fixed that in our runs. It rescales W(x) uniformly, so explanations and
    their cosine similarities are unchanged.
    """
    from bcos.models.resnet import BasicBlock, BcosResNet
    from bcos.modules import BcosConv2d, norms

    if (depth - 2) % 6:
        raise ValueError(f"depth must be 6n+2 (8, 14, 20, ...), got {depth}")
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    blocks = (depth - 2) // 6
    net = BcosResNet(
        BasicBlock, [blocks] * 3, num_classes=num_classes, in_chans=2 * in_channels,
        inplanes=width, small_inputs=True,
        norm_layer=norms.NoBias(norms.BatchNormUncentered2d),  # the package's ImageNet default
        conv_layer=partial(BcosConv2d, b=2),
        logit_bias=-math.log(num_classes - 1), logit_temperature=logit_temperature)
    return BcosClassifier(net, in_channels)


def bcos_imagenet_model(name: str, num_classes: int = 1000, in_channels: int = 3,
                        pretrained: bool = False) -> BcosClassifier:
    """One of the bcos package's ImageNet networks (e.g. "bcos_resnet34"), in a BcosClassifier.

    pretrained=True downloads the authors' ImageNet weights once into the torch hub cache
    (~/.cache/torch/hub/checkpoints); offline this fails with a message saying so.
    With pretrained=False and num_classes != 1000 the classifier is sized to num_classes.
    """
    from bcos.models import pretrained as hub

    if name not in IMAGENET_ENTRY_POINTS:
        raise ValueError(f"unknown B-cos ImageNet model {name!r}; choose one of {sorted(IMAGENET_ENTRY_POINTS)}")
    if in_channels != 3:
        raise ValueError(f"the B-cos ImageNet models take RGB images (3 channels), got {in_channels}")
    if pretrained and num_classes != 1000:
        raise ValueError("the pretrained B-cos ImageNet weights have 1000 classes; "
                         "build with num_classes=1000 and replace the classifier if needed")
    entry = getattr(hub, IMAGENET_ENTRY_POINTS[name])
    kwargs = {} if num_classes == 1000 else {"num_classes": num_classes,
                                               "logit_bias": -math.log(num_classes - 1)}
    try:
        net = entry(pretrained=pretrained, progress=False, **kwargs)
    except OSError as err:  # URLError and socket errors are OSErrors
        raise RuntimeError(
            f"could not download the pretrained B-cos weights for {name} ({err}). They come from "
            f"{hub.BASE} through the bcos package's torch.hub entry points and need internet once; "
            "on an offline machine copy ~/.cache/torch/hub/checkpoints from a machine that "
            "has them.") from err
    return BcosClassifier(net, 3)


def register_models() -> None:
    """Make every B-cos network above buildable by kdlab.models.get_model. Idempotent: it
    only (re)binds names to builders, and nothing is built or imported until one is asked for."""
    for name, (depth, width) in SMALL_RESNETS.items():
        register_model(name)(
            lambda num_classes, in_channels=3, _d=depth, _w=width:
                small_bcos_resnet(num_classes, in_channels, _d, _w))
    for name in IMAGENET_ENTRY_POINTS:
        register_model(name)(
            lambda num_classes, in_channels=3, pretrained=False, _n=name:
                bcos_imagenet_model(_n, num_classes, in_channels, pretrained))


def replace_classifier(model: BcosClassifier, num_classes: int) -> BcosClassifier:
    """The same network with a new, randomly initialised B-cos classifier for `num_classes`
    classes (a pretrained ImageNet network turned into a teacher for other data)."""
    old = model.net.fc
    model.net.fc = type(old)(old.in_channels, num_classes, kernel_size=1, b=old.b)
    model.net.logit_layer.logit_bias = -math.log(num_classes - 1)
    return model


# --- explanations (kdlab.explain, method="bcos") ------------------------------------------------

def encoded_forward(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, the 6-channel encoded input) of one forward pass in explanation mode.

    The gradient of a logit with respect to the encoded input is W(x), the B-cos explanation:
    W(x) acts on the encoding, not on the 3-channel image. The encoding's output becomes a
    leaf of the graph (x itself needs no gradient). Call with gradients enabled.
    """
    base = unwrap(model)  # the hook goes on its encoding; the forward pass runs through `model`
    if not is_bcos_model(base):
        raise ValueError(f"method='bcos' needs a B-cos network from kdlab.bcos, got {type(base).__name__}; "
                         "use 'gradcam' for other networks")
    from bcos.common import explanation_mode

    with capture(base.encode, leaf=True) as seen, explanation_mode(base):
        logits = model(x)
    return logits, seen.value


def contribution_map(model: nn.Module, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(N, H, W): Σ over the 6 encoded channels of encoding(x)·W(x), the map that is shown."""
    return (unwrap(model).encode(x).float() * weights).sum(1)


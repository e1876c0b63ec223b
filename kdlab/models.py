"""Teacher and student networks: CIFAR-style ResNets for small images, torchvision for ImageNet.

Taught in notebook 01. Every model takes float images in [0, 1] and normalises them itself,
so data loaders, explanations and figures share one kind of tensor.

CIFAR-style ResNets follow RepDistiller's teacher/student zoo (resnet8 ... resnet110,
resnet8x4, resnet32x4): a 3×3 stem and three stages of basic blocks named layer1..layer3,
so `layer3` is the last convolutional stage (the layer to dissect or explain).
`get_model` also builds torchvision ImageNet models by name (resnet18, resnet34, ...).
Other modules add architectures with `register_model`, when asked to: the B-cos networks of
notebook 05 exist once kdlab.bcos.register_models() has been called.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
import torch.nn.functional as F

from .inference import batches, capture, evaluation, unwrap

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Decorator: make `get_model(name, ...)` call the decorated builder."""
    def wrap(builder):
        _REGISTRY[name] = builder
        return builder
    return wrap


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet for small images: stem, three stages (layer1..3), global pooling, fc."""

    def __init__(self, depth: int, filters: tuple[int, int, int, int], num_classes: int,
                 in_channels: int = 3, mean: float = 0.5, std: float = 0.25):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6n+2 (8, 14, 20, 32, 56, 110), got {depth}")
        blocks = (depth - 2) // 6
        self.register_buffer("mean", torch.full((1, in_channels, 1, 1), mean))
        self.register_buffer("std", torch.full((1, in_channels, 1, 1), std))
        self.conv1 = nn.Conv2d(in_channels, filters[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(filters[0])
        stages, cin = [], filters[0]
        for i, cout in enumerate(filters[1:]):
            layers = [BasicBlock(cin if j == 0 else cout, cout, 1 if (i == 0 or j > 0) else 2)
                      for j in range(blocks)]
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(cin, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations: the pooled output of the last stage (notebook 02's projections)."""
        x = (x - self.mean) / self.std
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


_CIFAR_RESNETS = {
    # name: (depth, (stem, stage1, stage2, stage3))  -- RepDistiller's configurations
    "resnet8": (8, (16, 16, 32, 64)),
    "resnet14": (14, (16, 16, 32, 64)),
    "resnet20": (20, (16, 16, 32, 64)),
    "resnet32": (32, (16, 16, 32, 64)),
    "resnet44": (44, (16, 16, 32, 64)),
    "resnet56": (56, (16, 16, 32, 64)),
    "resnet110": (110, (16, 16, 32, 64)),
    "resnet8x4": (8, (32, 64, 128, 256)),
    # half-width variants: fast enough to train several students on a laptop CPU
    "resnet8_w8": (8, (8, 8, 16, 32)),
    "resnet14_w8": (14, (8, 8, 16, 32)),
    "resnet32x4": (32, (32, 64, 128, 256)),
}
for _name, (_depth, _filters) in _CIFAR_RESNETS.items():
    register_model(_name)(
        lambda num_classes, in_channels=3, _d=_depth, _f=_filters:
            CifarResNet(_d, _f, num_classes, in_channels))


def torchvision_model(name: str, num_classes: int = 1000, in_channels: int = 3,
                      pretrained: bool = False) -> nn.Module:
    """A torchvision ImageNet model that takes [0, 1] images (ImageNet normalisation built in).

    pretrained=True loads torchvision's default ImageNet weights (downloaded once into the
    torch hub cache; on a machine without internet copy the cache there first).
    """
    import torchvision

    if in_channels != 3:
        raise ValueError(f"torchvision's {name} takes 3-channel images, got {in_channels}")
    weights = "DEFAULT" if pretrained else None
    try:
        model = torchvision.models.get_model(name, weights=weights,
                                             **({} if pretrained else {"num_classes": num_classes}))
    except (OSError, RuntimeError) as err:  # URLError is an OSError
        raise RuntimeError(
            f"could not load torchvision's pretrained {name} weights ({err}). They download "
            "from the internet on first use; on an offline machine copy ~/.cache/torch/hub/"
            "checkpoints from a machine that has them.") from err
    if pretrained and num_classes != 1000:
        raise ValueError("pretrained torchvision weights have 1000 classes")
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    model.register_forward_pre_hook(
        lambda _m, args: ((args[0] - mean.to(args[0])) / std.to(args[0]),) + args[1:])
    return model


def get_model(name: str, num_classes: int, in_channels: int = 3, **options) -> nn.Module:
    """Build a model by name: a kdlab architecture (`register_model`) or any torchvision one."""
    if name in _REGISTRY:
        return _REGISTRY[name](num_classes=num_classes, in_channels=in_channels, **options)
    import torchvision

    if name in torchvision.models.list_models(module=torchvision.models):
        return torchvision_model(name, num_classes, in_channels, **options)
    hint = " (B-cos networks: call kdlab.bcos.register_models() first)" if name.startswith("bcos_") else ""
    raise ValueError(f"unknown model {name!r}{hint}; kdlab models: {sorted(_REGISTRY)}, "
                     "or any torchvision classification model (e.g. resnet18)")


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def penultimate_features(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Inputs of the model's final linear layer, for every image (notebook 02's projections)."""
    final = [m for m in unwrap(model).modules() if isinstance(m, nn.Linear)][-1]
    features = []
    with evaluation(model) as net, capture(final, input=True) as seen:
        for x in batches(net, images, batch_size):
            net(x)
            features.append(seen.value.float())
    return torch.cat(features).cpu()

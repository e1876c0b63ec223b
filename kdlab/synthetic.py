"""The synthetic concept dataset: images with exact pixel-level ground truth.

Taught in notebook 00 (gallery) and used by every later notebook (DESIGN §3).

A class is an object: a *shape family* (disk, square, triangle, diamond) carrying one
*distinctive part* (a dot "eye", a horizontal bar, a vertical bar), painted as a light tint
of the body's colour so that it is visible but subtle. Classes that share a shape form a
family of similar classes -- the class-similarity structure that a teacher's
soft labels carry and label smoothing erases. Colour, fill pattern ("material") and the
background scene vary independently of the class, except that the scene can be made to
predict the class at a chosen strength (a Waterbirds-like shortcut) and flipped at test time.

Every image comes with pixel masks (object, part, color, material) and an image-level scene
label, numbered like Broden: one global concept numbering, 0 meaning "no label".
Generation is vectorised over the whole dataset; the same seed gives the same bytes.
"""

from __future__ import annotations

import math

import torch

from .data import ImageSet

SHAPES = ("disk", "square", "triangle", "diamond")
PARTS = ("eye", "hbar", "vbar")
BODY_COLORS = {
    "red": (0.85, 0.15, 0.15),
    "green": (0.15, 0.7, 0.2),
    "blue": (0.15, 0.3, 0.9),
    "yellow": (0.9, 0.85, 0.1),
    "magenta": (0.85, 0.2, 0.8),
    "cyan": (0.1, 0.8, 0.85),
}
PART_TINT = 0.55  # the part is the body colour mixed this much toward white: visible but subtle
MATERIALS = ("solid", "striped", "checkered", "dotted")
SCENES = ("sky", "grass", "water", "brick")
PIXEL_CATEGORIES = ("object", "part", "color", "material")
IMAGE_CATEGORIES = ("scene",)

# One global concept numbering, Broden style: number 0 is "-" (unlabelled).
CONCEPTS: list[tuple[str, str]] = (
    [("-", "")]
    + [(s, "object") for s in SHAPES]
    + [(p, "part") for p in PARTS]
    + [(c, "color") for c in BODY_COLORS]
    + [(m, "material") for m in MATERIALS]
    + [(s, "scene") for s in SCENES]
)
CONCEPT_NUMBER = {name: i for i, (name, _) in enumerate(CONCEPTS)}
CLASSES = [f"{shape}-{part}" for shape in SHAPES for part in PARTS]


def class_family(class_index: int) -> int:
    """Index of the shape family of a class: classes of one family differ only by their part."""
    return class_index // len(PARTS)


def designated_scene(class_index: int) -> int:
    """The scene that predicts this class when the background is correlated with it."""
    return class_index % len(SCENES)


def make_concept_dataset(
    n: int = 10_000,
    size: int = 32,
    seed: int = 0,
    background_correlation: float = 0.0,
    flip_background: bool = False,
    noise: float = 0.06,
) -> ImageSet:
    """Generate `n` labelled images of `size`×`size` pixels with concept masks.

    background_correlation: probability that an image shows its class's designated scene
        (0 = scene independent of the class; 1 = the scene alone gives the class away up
        to the 4-to-12 ambiguity). flip_background: never show the designated scene (the
        out-of-distribution test set of the shortcut experiment, notebook 06).
    """
    if not 0.0 <= background_correlation <= 1.0:
        raise ValueError(f"background_correlation must be in [0, 1], got {background_correlation}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    g = torch.Generator().manual_seed(seed)

    def uniform(lo, hi, shape=(n,)):
        return lo + (hi - lo) * torch.rand(shape, generator=g)

    def choice(k):
        return torch.randint(k, (n,), generator=g)

    labels = choice(len(CLASSES))
    shape_idx, part_idx = labels // len(PARTS), labels % len(PARTS)
    body_color = choice(len(BODY_COLORS))
    material = choice(len(MATERIALS))
    scene = _choose_scenes(labels, background_correlation, flip_background, g)

    # Object geometry in normalised coordinates u, v (object radius = 1).
    radius = uniform(0.24, 0.32) * size
    cx, cy = uniform(0.38, 0.62) * size, uniform(0.38, 0.62) * size
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    y, x = coords.view(1, size, 1), coords.view(1, 1, size)
    u = (x - cx.view(n, 1, 1)) / radius.view(n, 1, 1)
    v = (y - cy.view(n, 1, 1)) / radius.view(n, 1, 1)

    u, v = u.expand(n, size, size), v.expand(n, size, size)
    shapes = torch.stack([
        u**2 + v**2 <= 1.0,                                                  # disk
        torch.maximum(u.abs(), v.abs()) <= 0.85,                             # square
        (v <= 0.8) & (v >= -1.0) & (u.abs() <= (v + 1.0) / 1.8 * 1.05),      # triangle
        u.abs() + v.abs() <= 1.15,                                           # diamond
    ])
    obj = shapes[shape_idx, torch.arange(n)]
    parts = torch.stack([
        u**2 + (v + 0.3) ** 2 <= 0.26**2,   # eye: a dot in the upper half
        (v - 0.3).abs() <= 0.13,            # hbar: a horizontal bar in the lower half
        u.abs() <= 0.13,                    # vbar: a vertical bar through the middle
    ])
    part = parts[part_idx, torch.arange(n)] & obj
    body = obj & ~part

    image = _render_backgrounds(scene, size, g)
    body_rgb = torch.tensor(list(BODY_COLORS.values()))[body_color]          # n,3
    part_rgb = (1 - PART_TINT) * body_rgb + PART_TINT
    shade = _material_shading(material, size, g)                              # n,H,W
    body_pixels = body_rgb.view(n, 3, 1, 1) * shade.unsqueeze(1)
    image = torch.where(body.unsqueeze(1), body_pixels, image)
    image = torch.where(part.unsqueeze(1), part_rgb.view(n, 3, 1, 1), image)
    image = image + noise * torch.randn(image.shape, generator=g)
    images = (image.clamp(0, 1) * 255).round().to(torch.uint8)

    def numbers(names, idx):
        return torch.tensor([CONCEPT_NUMBER[c] for c in names], dtype=torch.uint8)[idx]

    zeros = torch.zeros(n, size, size, dtype=torch.uint8)
    bc = numbers(BODY_COLORS, body_color)
    masks = {
        "object": torch.where(obj, numbers(SHAPES, shape_idx).view(n, 1, 1), zeros),
        "part": torch.where(part, numbers(PARTS, part_idx).view(n, 1, 1), zeros),
        "color": torch.where(obj, bc.view(n, 1, 1), zeros),  # the part is a tint of the body colour
        "material": torch.where(body, numbers(MATERIALS, material).view(n, 1, 1), zeros),
    }
    return ImageSet(
        images=images,
        labels=labels,
        classes=list(CLASSES),
        name="synthetic",
        masks=masks,
        image_labels={"scene": numbers(SCENES, scene).long()},
        concepts=[name for name, _ in CONCEPTS],
        concept_categories=[cat for _, cat in CONCEPTS],
    )


def _choose_scenes(labels, correlation, flip, g):
    n, k = len(labels), len(SCENES)
    designated = labels % k
    if flip:  # any scene but the designated one
        return (designated + 1 + torch.randint(k - 1, (n,), generator=g)) % k
    random_scene = torch.randint(k, (n,), generator=g)
    use_designated = torch.rand(n, generator=g) < correlation
    return torch.where(use_designated, designated, random_scene)


def _render_backgrounds(scene, size, g):
    """Four textured scenes, rendered for all images at once (n, 3, H, W) in [0, 1]."""
    n = len(scene)
    coords = torch.arange(size, dtype=torch.float32)
    y, x = coords.view(1, size, 1), coords.view(1, 1, size)
    phase = 2 * math.pi * torch.rand(n, 1, 1, generator=g)
    fine_noise = torch.rand(n, size, size, generator=g)

    def rgb(r, gr, b, light):
        return torch.stack([r * light, gr * light, b * light], dim=1)

    sky_light = 0.75 + 0.25 * (y / size).expand(n, size, size)
    grass_light = 0.55 + 0.45 * fine_noise
    water_light = 0.7 + 0.2 * torch.sin(2 * math.pi * y / 6 + phase + 0.6 * torch.sin(x / 3))
    mortar = ((y + phase.round()) % 8 < 1) | ((x + 4 * ((y // 8) % 2)) % 8 < 1)
    brick_light = torch.where(mortar, 1.25, 0.85 + 0.1 * fine_noise)
    backgrounds = torch.stack([
        rgb(0.55, 0.75, 0.95, sky_light),
        rgb(0.25, 0.6, 0.2, grass_light),
        rgb(0.1, 0.45, 0.6, water_light),
        rgb(0.6, 0.3, 0.2, brick_light),
    ])
    return backgrounds[scene, torch.arange(n)].clamp(0, 1)


def _material_shading(material, size, g):
    """Brightness patterns of the object body, one per material, phase-shifted per image."""
    n = len(material)
    coords = torch.arange(size, dtype=torch.float32)
    y, x = coords.view(1, size, 1), coords.view(1, 1, size)
    off = torch.randint(4, (n, 1, 1), generator=g).float()
    solid = torch.ones(n, size, size)
    striped = torch.where(((x + y + off) // 2) % 2 == 0, 1.0, 0.55)
    checkered = torch.where((((x + off) // 3) + (y // 3)) % 2 == 0, 1.0, 0.55)
    dotted = torch.where(((x + off) % 4 < 2) & ((y + off) % 4 < 2), 0.5, 1.0)
    shades = torch.stack([solid, striped.expand(n, -1, -1), checkered.expand(n, -1, -1),
                          dotted.expand(n, -1, -1)])
    return shades[material, torch.arange(n)]

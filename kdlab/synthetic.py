"""The synthetic concept dataset: images with exact pixel-level ground truth.

Taught in notebook 00 (gallery) and used by every later notebook.

A class is an object: a *shape family* (disk, square, triangle, diamond) carrying one
*distinctive part* (a dot "eye", a horizontal bar, a vertical bar), painted as a light tint of
the body's colour. Colour, fill pattern ("material") and the scene vary independently of the
class, except that the scene can hint at the class at a chosen strength (a Waterbirds-like
shortcut, `background_correlation`) and be flipped at test time (`flip_background`). Every
image comes with pixel masks (object, part, color, material) and an image-level scene label,
numbered like Broden: one global concept numbering, 0 meaning "no label". Generation is
vectorised over the whole dataset (10,000 images of 32×32 in a few seconds on a laptop CPU);
the same seed gives the same bytes.

Two designs, chosen by `make_concept_dataset(design=...)`. The numbers below were measured
with this module's and kdlab.concepts' functions on 10,000 images and, for v2, a resnet8 teacher
trained from scratch for 8 epochs on 6,000 images (SGD, lr 0.1, batch 128), tested on 2,000;
v1's teacher numbers come from the notebooks' runs (6 epochs, T = 4).

v1 (the first design, kept byte for byte for the tests and the comparisons in notebooks 00 and
03; `design="v1"`): a large object with a clearly tinted part on one of 4 scenes painted over
the whole image (sky, grass, water, brick).
  * It is easy: a teacher reaches 99.9 % test accuracy, so a student's agreement with the
    teacher says no more than its accuracy.
  * Its teacher's soft labels group classes by *part*, not by shape: of the probability on
    wrong classes, 0.50 goes to classes with the same part (0.27 if spread evenly) and 0.27
    to the same shape family (0.18 if spread evenly).
  * No unit can be a scene detector: each scene covers a quarter of all pixels, so its IoU
    ceiling at the top-0.5 % quantile is 0.02 (kdlab.concepts.iou_ceilings), below the 0.05
    threshold. Objects' ceilings are 0.08-0.13, parts' 0.38-0.90.

v2, the design the course uses (COURSE_DESIGN, the default), made so that each claim holds:
  * Every concept can be detected. Scenes stay whole-image labels, as in Broden, but there
    are 24 of them (6 grounds × 4 skies: a sky above a wavy horizon and a textured ground
    below, named "grass-day", "water-night", ...), each on 1/24 of the images. IoU ceilings
    at q = 0.005: scenes 0.11-0.13, objects 0.096-0.16, colours 0.17, materials 0.11, parts
    0.45-1 (twice as high at q = 0.01). (A trained teacher still forms no scene detector.)
  * The scene is weak context, as in photographs. Class c has two designated scenes, c and
    c + 12, so each scene hints at one class. By default (background_correlation 0.2) 25-27 %
    of the images show one of their class's designated scenes, against 8.3 % by chance
    (`scene_class_association`); the teacher loses under one point of accuracy when the
    correlation is removed at test time. At 0.3 (36 % designated) one teacher leaned on the
    scene in a short run and reached only 61 %.
  * The teacher errs, from genuine ambiguity and never from wrong labels: smaller objects;
    the part painted with the body's material and tinted 0.35-0.6 toward white, except in
    15 % of the images where the tint is 0-0.12 (barely visible to invisible); up to two
    stones that may cover part of the object; noise 0.07; a dark outline keeps every shape
    visible. Teacher test accuracy: 89.5 % and 87.1 % (two seeds); 58-60 % on the fifth of
    the images with the least visible parts, 93-98 % on the others.
  * Classes of one shape family really are similar: 88-91 % of the teacher's errors stay in
    the family, and of its probability on wrong classes it puts 0.75-0.77 on the same family
    at T = 1 and 0.40-0.43 at T = 4, against 0.18 if spread evenly (kdlab.metrics.
    similarity_shares). Classes with the same part get 0.17 (T = 1) and 0.26-0.27 (T = 4),
    no more than the even 0.27.
  v2's masks hold visible pixels only (stones cut them); its material mask covers the whole
  object, part included.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .data import ImageSet
from .runtime.moved import moved_names

__getattr__ = moved_names(__name__, {"similarity_shares": "kdlab.metrics", "concept_areas": "kdlab.concepts",
                                     "iou_ceilings": "kdlab.concepts"})

SHAPES = ("disk", "square", "triangle", "diamond")
PARTS = ("eye", "hbar", "vbar")
BODY_COLORS = {"red": (0.85, 0.15, 0.15), "green": (0.15, 0.7, 0.2), "blue": (0.15, 0.3, 0.9),
               "yellow": (0.9, 0.85, 0.1), "magenta": (0.85, 0.2, 0.8), "cyan": (0.1, 0.8, 0.85)}
PART_TINT = 0.55  # the part is the body colour mixed this much toward white: visible but subtle
MATERIALS = ("solid", "striped", "checkered", "dotted")
SCENES = ("sky", "grass", "water", "brick")

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


def make_concept_dataset(
    n: int = 10_000,
    size: int = 32,
    seed: int = 0,
    background_correlation: float | None = None,
    flip_background: bool = False,
    noise: float | None = None,
    design: str = "v2",
) -> ImageSet:
    """Generate `n` labelled images of `size`×`size` pixels with concept masks, in `design`
    "v2" (the course's) or "v1" (see the module's docstring).

    background_correlation: probability that an image shows one of its class's designated
        scenes (`designated_scenes`) rather than a random one (0: the scene says nothing; 1:
        it gives the class away, up to the 3 classes sharing a scene in v1); default 0 in v1,
        0.2 in v2. flip_background: never show a designated scene (notebook 06's
        out-of-distribution test). noise: pixel noise (default 0.06 in v1, 0.07 in v2).
    """
    defaults = {"v1": (0.0, 0.06), "v2": (V2_CORRELATION, V2_NOISE)}[_check_design(design)]
    if background_correlation is None:
        background_correlation = defaults[0]
    noise = defaults[1] if noise is None else noise
    if not 0.0 <= background_correlation <= 1.0:
        raise ValueError(f"background_correlation must be in [0, 1], got {background_correlation}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    if design == "v2":
        return _make_v2(n, size, seed, background_correlation, flip_background, noise)
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

    radius = uniform(0.24, 0.32) * size
    cx, cy = uniform(0.38, 0.62) * size, uniform(0.38, 0.62) * size
    obj, part = _object_and_part(*_object_coordinates(size, radius, cx, cy), shape_idx, part_idx)
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


def _object_coordinates(size, radius, cx, cy):
    """Each pixel's position relative to each image's object, in object radii: (u, v), (n, H, W)."""
    n = len(radius)
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    y, x = coords.view(1, size, 1), coords.view(1, 1, size)
    u = (x - cx.view(n, 1, 1)) / radius.view(n, 1, 1)
    v = (y - cy.view(n, 1, 1)) / radius.view(n, 1, 1)
    return u.expand(n, size, size), v.expand(n, size, size)


def _object_and_part(u, v, shape_idx, part_idx):
    """Object and part masks (n, H, W) from normalised coordinates (object radius = 1)."""
    n = len(shape_idx)
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
    return obj, parts[part_idx, torch.arange(n)] & obj


# ---------------------------------------------------------------------------------------------
# Design v2

SKIES = {  # colour at the top of the image, colour at the horizon
    "day": ((0.3, 0.55, 0.95), (0.75, 0.88, 1.0)),
    "dusk": ((0.3, 0.2, 0.5), (0.95, 0.6, 0.35)),
    "night": ((0.02, 0.03, 0.12), (0.12, 0.14, 0.3)),
    "fog": ((0.72, 0.72, 0.75), (0.88, 0.88, 0.88)),
}
GROUNDS = {"grass": (0.25, 0.55, 0.18), "sand": (0.85, 0.75, 0.5), "water": (0.1, 0.4, 0.6),
           "snow": (0.92, 0.94, 0.97), "brick": (0.6, 0.3, 0.2), "rock": (0.45, 0.43, 0.4)}
SCENES_V2 = tuple(f"{ground}-{sky}" for ground in GROUNDS for sky in SKIES)
CONCEPTS_V2: list[tuple[str, str]] = (
    [c for c in CONCEPTS if c[1] != "scene"] + [(s, "scene") for s in SCENES_V2])
CONCEPT_NUMBER_V2 = {name: i for i, (name, _) in enumerate(CONCEPTS_V2)}
DESIGNS = ("v1", "v2")
COURSE_DESIGN = "v2"  # the design every notebook trains and dissects on (course_data, concept_data)
V2_PART_TINT = (0.35, 0.6)     # tint of the part toward white (uniform per image): clearly visible ...
V2_FAINT_PART = 0.15           # ... except in this share of images, where it is faint:
V2_FAINT_TINT = (0.0, 0.12)    # from invisible to barely visible
V2_RADIUS = (0.22, 0.3)        # object radius, a fraction of the image size
V2_OCCLUDERS = 2               # slots for stones that may cover part of the object ...
V2_OCCLUDER_PROBABILITY = 0.2  # ... each filled with this probability
V2_CORRELATION = 0.2           # default background_correlation: a weak hint, like context in photos
V2_NOISE = 0.07                # default pixel noise (standard deviation)
V2_OUTLINE = 0.4               # brightness of the object's border pixels


def scene_names(design: str = "v2") -> tuple[str, ...]:
    """The scenes of a design, in the order of their concept numbers."""
    return {"v1": SCENES, "v2": SCENES_V2}[_check_design(design)]


def designated_scenes(class_index: int, design: str = "v2") -> list[int]:
    """The scenes (indices into `scene_names(design)`) that hint at this class.

    v1: one scene per class (class % 4), so each scene hints at 3 classes; v2: two scenes per
    class (class and class + 12), so each scene hints at exactly one class.
    """
    k = len(scene_names(design))
    m = min(k, len(CLASSES))
    return [s for s in range(k) if s % m == class_index % m]


def _check_design(design):
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {DESIGNS}, got {design!r}")
    return design


def _make_v2(n, size, seed, correlation, flip, noise):
    """Design v2 (see the module's docstring), drawn from one generator seeded with `seed`."""
    g = torch.Generator().manual_seed(seed)

    def uniform(lo, hi, shape=(n,)):
        return lo + (hi - lo) * torch.rand(shape, generator=g)

    labels = torch.randint(len(CLASSES), (n,), generator=g)
    shape_idx, part_idx = labels // len(PARTS), labels % len(PARTS)
    body_color = torch.randint(len(BODY_COLORS), (n,), generator=g)
    material = torch.randint(len(MATERIALS), (n,), generator=g)
    scene = _choose_scenes_v2(labels, correlation, flip, g)

    radius = uniform(*V2_RADIUS) * size
    cx, cy = uniform(0.3, 0.7) * size, uniform(0.3, 0.7) * size
    obj, part = _object_and_part(*_object_coordinates(size, radius, cx, cy), shape_idx, part_idx)
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    y, x = coords.view(1, size, 1), coords.view(1, 1, size)

    # Stones: axis-aligned ellipses anywhere in the image, drawn over the object.
    k = V2_OCCLUDERS
    present = torch.rand(n, k, generator=g) < V2_OCCLUDER_PROBABILITY
    ox, oy = uniform(0.1, 0.9, (n, k)) * size, uniform(0.1, 0.9, (n, k)) * size
    rx, ry = uniform(0.06, 0.12, (n, k)) * size, uniform(0.06, 0.12, (n, k)) * size
    inside = (((x.unsqueeze(1) - ox.view(n, k, 1, 1)) / rx.view(n, k, 1, 1)) ** 2
              + ((y.unsqueeze(1) - oy.view(n, k, 1, 1)) / ry.view(n, k, 1, 1)) ** 2 <= 1.0)
    inside &= present.view(n, k, 1, 1)
    stone_rgb = uniform(0.25, 0.6, (n, k, 1)) * torch.tensor([1.0, 0.9, 0.8])  # grey-brown
    stones = inside.any(1)
    stone_pixels = (stone_rgb.view(n, k, 3, 1, 1) * inside.unsqueeze(2)).sum(1)  # overlaps: sum
    stone_pixels = stone_pixels / inside.sum(1).clamp(min=1).unsqueeze(1)          # -> mean

    image = _render_scenes_v2(scene, size, g)
    body_rgb = torch.tensor(list(BODY_COLORS.values()))[body_color]            # n,3
    faint = torch.rand(n, generator=g) < V2_FAINT_PART
    tint = torch.where(faint, uniform(*V2_FAINT_TINT), uniform(*V2_PART_TINT)).view(n, 1)
    part_rgb = (1 - tint) * body_rgb + tint
    shade = _material_shading(material, size, g).unsqueeze(1)                  # n,1,H,W
    colour = torch.where(part.unsqueeze(1), part_rgb.view(n, 3, 1, 1), body_rgb.view(n, 3, 1, 1))
    # A dark outline (the object's border pixels) keeps the silhouette visible on any scene.
    outside = ~obj.unsqueeze(1)
    border = obj & (F.max_pool2d(outside.float(), 3, stride=1, padding=1)[:, 0] > 0)
    shade = torch.where(border.unsqueeze(1), V2_OUTLINE, shade)
    image = torch.where(obj.unsqueeze(1), colour * shade, image)
    image = torch.where(stones.unsqueeze(1), stone_pixels, image)
    image = image + noise * torch.randn(image.shape, generator=g)
    images = (image.clamp(0, 1) * 255).round().to(torch.uint8)

    visible = obj & ~stones

    def numbers(names, idx):
        return torch.tensor([CONCEPT_NUMBER_V2[c] for c in names], dtype=torch.uint8)[idx].view(-1, 1, 1)

    zeros = torch.zeros(n, size, size, dtype=torch.uint8)
    masks = {
        "object": torch.where(visible, numbers(SHAPES, shape_idx), zeros),
        "part": torch.where(part & ~stones, numbers(PARTS, part_idx), zeros),
        "color": torch.where(visible, numbers(BODY_COLORS, body_color), zeros),
        "material": torch.where(visible, numbers(MATERIALS, material), zeros),  # part included
    }
    return ImageSet(
        images=images,
        labels=labels,
        classes=list(CLASSES),
        name="synthetic",
        masks=masks,
        image_labels={"scene": numbers(SCENES_V2, scene).view(-1).long()},
        concepts=[name for name, _ in CONCEPTS_V2],
        concept_categories=[cat for _, cat in CONCEPTS_V2],
        meta={"design": "v2"},
    )


def _choose_scenes_v2(labels, correlation, flip, g):
    """Scene indices: class c's designated scenes are c and c + 12 (one class per scene)."""
    n, k, c = len(labels), len(SCENES_V2), len(CLASSES)
    if flip:  # one of the 22 scenes designated for other classes
        r = torch.randint(k - k // c, (n,), generator=g)
        return (labels + 1 + r % (c - 1)) % c + c * (r // (c - 1))
    designated = labels + c * torch.randint(k // c, (n,), generator=g)
    random_scene = torch.randint(k, (n,), generator=g)
    use_designated = torch.rand(n, generator=g) < correlation
    return torch.where(use_designated, designated, random_scene)


def _render_scenes_v2(scene, size, g):
    """Sky above a wavy horizon, textured ground below: (n, 3, H, W) in [0, 1]."""
    n = len(scene)
    ground, sky = scene // len(SKIES), scene % len(SKIES)
    coords = torch.arange(size, dtype=torch.float32)
    y, x = coords.view(1, size, 1), coords.view(1, 1, size)
    rand = lambda *shape: torch.rand(shape, generator=g)  # noqa: E731
    horizon = (0.35 + 0.25 * rand(n, 1, 1)) * size + 1.2 * torch.sin(
        2 * math.pi * x / size * (1 + rand(n, 1, 1)) + 2 * math.pi * rand(n, 1, 1))
    below = y >= horizon                                                           # n,H,W

    top, low = (torch.tensor([c[i] for c in SKIES.values()]) for i in (0, 1))      # 4,3
    t = (y / horizon).clamp(0, 1).unsqueeze(1)                                     # n,1,H,W
    sky_rgb = top[sky].view(n, 3, 1, 1) * (1 - t) + low[sky].view(n, 3, 1, 1) * t
    stars = (rand(n, size, size) < 0.03) & (sky == list(SKIES).index("night")).view(n, 1, 1)
    sky_rgb = sky_rgb + 0.6 * stars.unsqueeze(1)

    fine = rand(n, size, size)
    coarse = F.interpolate(rand(n, 1, 6, 6), size=(size, size), mode="bilinear",
                           align_corners=False)[:, 0]
    phase = 2 * math.pi * rand(n, 1, 1)
    mortar = ((y + (phase * 8 / (2 * math.pi)).floor()) % 6 < 1) | ((x + 3 * ((y // 6) % 2)) % 6 < 1)
    textures = (                                                                   # light, (n,H,W)
        lambda: 0.8 + 0.3 * fine,                                                  # grass: speckle
        lambda: 0.9 + 0.06 * torch.sin(2 * math.pi * (x + 2 * y) / 7 + phase) + 0.04 * fine,  # sand
        lambda: 0.85 + 0.12 * torch.sin(2 * math.pi * y / 5 + phase + 0.6 * torch.sin(x / 3)),  # water
        lambda: 0.93 + 0.06 * fine,                                                # snow: plain
        lambda: torch.where(mortar, 1.15, 0.9 + 0.06 * fine),                      # brick: mortar
        lambda: 0.75 + 0.4 * coarse,                                               # rock: blotches
    )
    light = torch.zeros(n, size, size)
    for i, texture in enumerate(textures):  # one map at a time keeps memory at n·H·W floats
        light = torch.where((ground == i).view(n, 1, 1), texture(), light)
    ground_rgb = torch.tensor(list(GROUNDS.values()))[ground].view(n, 3, 1, 1) * light.unsqueeze(1)
    return torch.where(below.unsqueeze(1), ground_rgb, sky_rgb).clamp(0, 1)


# ---------------------------------------------------------------------------------------------
# How much the scene gives the class away, computed rather than claimed

def scene_class_association(data: ImageSet) -> dict[str, float]:
    """How much an image's scene tells about its class.

    designated: share of images that show one of their class's designated scenes
    (`designated_scenes`); chance: that share if scenes were drawn independently of the class;
    scene_only_accuracy: accuracy of guessing the class from the scene alone (the most frequent
    class of each scene in `data`; optimistic on small data: about 0.12 for 4,000 v2 images whose
    scenes say nothing), against class_chance = 1 / classes. Taught in notebooks 00 and 06.
    """
    numbers = [i for i, c in enumerate(data.concept_categories) if c == "scene"]
    scene = data.image_labels["scene"].long() - numbers[0]
    k, c = len(numbers), data.num_classes
    m = min(k, c)
    designated = (scene % m == data.labels % m).float().mean().item()
    joint = torch.bincount(scene * c + data.labels, minlength=k * c).view(k, c)
    return {"designated": designated, "chance": (k // m) / k,
            "scene_only_accuracy": joint.max(1).values.sum().item() / len(data),
            "class_chance": 1 / c}

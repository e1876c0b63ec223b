"""Network dissection (Bau et al. 2017), vectorised and streaming.

Taught in notebook 03 (the algorithm step by step, the unit browser) and used in notebook 04
(concept detectors of scratch, KD and LS students, Han et al. 2023).

For every unit k of a layer:
  1. T_k is the threshold with P(a_k > T_k) = `quantile` (0.005) over all spatial positions
     of all images (exact: numpy's linear-interpolation quantile, from a running top-k;
     kdlab.quantiles).
  2. Each activation map is upsampled bilinearly to the mask resolution; M_k = A_k > T_k.
  3. IoU_{k,c} = Σ|M_k ∩ L_c| / Σ|M_k ∪ L_c|, summed over the whole dataset, not averaged
     per image. L_c holds every pixel labelled c in any category's masks (Broden numbers
     labels globally); image-level labels (scene, texture) are masks covering the whole
     image. Each label is scored in its primary category. Two rules decide on which images
     the unit's area |M_k| enters the union (both are tallied in the same pass; `union`
     chooses which IoUs are reported):
       "annotated" (the default, Bau et al.'s wording): every image where that category is
         annotated, i.e. has any label there;
       "lite" (NetDissect-Lite's `tally_job`, and so Han et al.'s counts 275 / 312 / 219):
         only the images where the unit's mask touches a pixel label of that category, or
         the image carries an image-level label of it.
     Lite's denominators are never larger when every label sits in its primary category's
     masks, as in the synthetic dataset, so its IoUs and detector counts are never lower.
  4. A unit's label is its best-IoU concept; it is a *detector* when that IoU exceeds
     `iou_threshold` (0.04 Bau et al., 0.05 Han et al.).

Two passes over the data, one batch at a time: pass 1 keeps the k largest activations per
unit (k ≈ quantile × positions, memory units × k); pass 2 adds integer tallies (units ×
concepts intersections, units × categories activation areas under each union rule,
per-concept label areas),
upsampling only the maps whose maximum exceeds T_k (the others have empty masks).
Activations stay float32 and live only for one batch; the model runs on the GPU when there
is one. Unlike NetDissect-Lite there is no float64 memory-map of all activations and no
Python loop over images × units; and where Han et al.'s code silently dissects a randomly
initialised network when the checkpoint is missing, kdlab.scale.pretrained.load_model raises an
error.
Speed and memory against the plain loop reference: bench/bench_dissect.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from .concepts import concept_source
from .runtime.device import pick_device
from .runtime.files import write_json_atomic
from .inference import batches, capture, evaluation, find_layer
from .runtime.moved import moved_names
from .runtime.progress import bar as progress_bar
from .quantiles import TopQuantile, quantile_threshold  # noqa: F401  (step 1; notebook 03)

UNIONS = ("annotated", "lite")  # where a unit's area counts in the IoU's union (step 3 above)


__getattr__ = moved_names(__name__, {"load_model": "kdlab.scale.pretrained"})


def _check_union(union: str) -> str:
    if union not in UNIONS:
        raise ValueError(f"unknown union rule {union!r}; choose one of {UNIONS}")
    return union


# ---------------------------------------------------------------------------------------------
# Activations

def _unit_maps(output) -> torch.Tensor:
    if not isinstance(output, torch.Tensor) or output.dim() != 4:
        raise ValueError(f"the dissected layer must output (N, units, H, W) maps, got "
                         f"{getattr(output, 'shape', type(output))}")
    return output.float()


@torch.inference_mode()
def layer_activations(model, layer: str, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Activation maps (N, units, h, w), float32 on the CPU, of `layer` for a few images.

    For figures and the step-by-step walk-through in notebook 03; `dissect` streams instead.
    """
    maps = []
    with evaluation(model) as net, capture(find_layer(net, layer)) as seen:
        for x in batches(net, images, batch_size):
            net(x)
            maps.append(_unit_maps(seen.value).cpu())
    return torch.cat(maps)


def upsample(maps: torch.Tensor, size) -> torch.Tensor:
    """Bilinear upsampling of (N, units, h, w) maps to the mask resolution (step 2 above)."""
    return F.interpolate(maps, size=tuple(size), mode="bilinear", align_corners=False)


# ---------------------------------------------------------------------------------------------
# The result

@dataclass(repr=False)
class Dissection:
    """What `dissect` returns: per-unit labels, detector counts and the raw tallies.

    `table` (one row per unit) and `counts` (detectors per category) are pandas objects that
    display well in a notebook; `save` writes both to CSV and everything to JSON.
    Both union rules' activation areas are kept; `union` says which one the IoUs use, and
    `with_union` switches without a new pass (notebook 04 shows both).
    """

    layer: str
    concepts: list[str]
    categories: list[str]
    primary: list[int]                  # concept number -> category index (-1 for "-")
    quantile: float
    iou_threshold: float
    thresholds: torch.Tensor            # (units,) float32
    intersection: torch.Tensor          # (units, concepts) int64
    activation_area: torch.Tensor       # (units, categories) int64, "annotated" rule
    label_area: torch.Tensor            # (concepts,) int64
    top_images: torch.Tensor            # (units, m) dataset positions, by max activation
    top_values: torch.Tensor            # (units, m)
    images: int = 0
    activation_area_lite: torch.Tensor | None = None  # (units, categories) int64, "lite" rule
    union: str = "annotated"

    def __post_init__(self):
        _check_union(self.union)
        if self.union == "lite" and self.activation_area_lite is None:
            raise ValueError("this dissection has no Lite activation areas (saved by an older "
                             "kdlab): dissect again to use union='lite'")

    @property
    def units(self) -> int:
        return len(self.thresholds)

    @property
    def iou(self) -> torch.Tensor:
        """(units, concepts) float64 IoU, each label against its primary category's
        denominator, with the unit's area counted under the rule `union`."""
        area = self.activation_area if self.union == "annotated" else self.activation_area_lite
        primary = torch.tensor(self.primary)
        act = torch.zeros(self.units, len(self.concepts), dtype=torch.int64)
        valid = primary >= 0
        act[:, valid] = area[:, primary[valid]]
        union = act + self.label_area[None, :] - self.intersection
        iou = self.intersection.double() / union.clamp(min=1).double()
        iou[:, ~valid] = 0.0
        return iou

    def best(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(best concept number, its IoU) per unit; concept 0 where no concept overlaps at all."""
        iou = self.iou
        value, concept = iou.max(dim=1)
        return torch.where(value > 0, concept, 0), value

    @property
    def table(self):
        """One row per unit: unit, concept, category, iou, detector."""
        import pandas as pd

        concept, value = self.best()
        return pd.DataFrame({
            "unit": range(self.units),
            "concept": [self.concepts[c] for c in concept.tolist()],
            "category": [self.categories[self.primary[c]] if c > 0 else "" for c in concept.tolist()],
            "iou": value.numpy(),
            "detector": (value > self.iou_threshold).numpy(),
        })

    @property
    def counts(self):
        """Number of detectors per category (every category listed, zeros included)."""
        import pandas as pd

        t = self.table
        det = t[t.detector].groupby("category").size()
        return pd.Series({c: int(det.get(c, 0)) for c in self.categories}, name="detectors", dtype=int)

    @property
    def detectors(self) -> int:
        return int(self.table.detector.sum())

    def with_threshold(self, iou_threshold: float) -> "Dissection":
        """The same tallies judged with another IoU threshold (no data pass needed)."""
        return replace(self, iou_threshold=iou_threshold)

    def with_union(self, union: str) -> "Dissection":
        """The same tallies with the union rule `union` ("annotated" or "lite", step 3 above)."""
        return replace(self, union=union)

    def summary(self) -> dict:
        return {"layer": self.layer, "units": self.units, "images": self.images,
                "quantile": self.quantile, "iou_threshold": self.iou_threshold, "union": self.union,
                "detectors": self.detectors, "counts": self.counts.to_dict(),
                "unique_concepts": int(self.table.query("detector").concept.nunique())}

    def to_csv(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.table.to_csv(path, index=False)
        return path

    def to_json(self, path) -> Path:
        record = {**self.summary(), "concepts": self.concepts, "categories": self.categories,
                  "primary": self.primary, "thresholds": self.thresholds,
                  "intersection": self.intersection, "activation_area": self.activation_area,
                  "activation_area_lite": self.activation_area_lite,
                  "label_area": self.label_area, "top_images": self.top_images,
                  "top_values": self.top_values, "table": self.table.to_dict(orient="records")}
        return write_json_atomic(record, path)

    def save(self, stem) -> tuple[Path, Path]:
        """Write <stem>.csv (the table) and <stem>.json (summary, tallies and table)."""
        stem = Path(stem)
        return self.to_csv(stem.with_suffix(".csv")), self.to_json(stem.with_suffix(".json"))

    @classmethod
    def from_json(cls, path) -> "Dissection":
        """A dissection saved by `save` (a full run's, say), read back with all its tallies."""
        r = json.loads(Path(path).read_text())
        t = lambda k, dtype: torch.tensor(r[k], dtype=dtype)  # noqa: E731
        # files from before the Lite rule have no Lite areas: they can only be read "annotated"
        lite = t("activation_area_lite", torch.int64) if r.get("activation_area_lite") else None
        return cls(r["layer"], r["concepts"], r["categories"], r["primary"], r["quantile"],
                   r["iou_threshold"], t("thresholds", torch.float32), t("intersection", torch.int64),
                   t("activation_area", torch.int64), t("label_area", torch.int64),
                   t("top_images", torch.int64), t("top_values", torch.float32), r["images"],
                   lite, r.get("union", "annotated"))

    def __repr__(self) -> str:
        counts = ", ".join(f"{c} {n}" for c, n in self.counts.items())
        return (f"Dissection({self.layer}: {self.units} units, {self.images} images, top "
                f"{self.quantile:g}, IoU > {self.iou_threshold:g}{self._union_note()}: "
                f"{self.detectors} detectors ({counts}))")

    def _union_note(self) -> str:
        return " (Lite union)" if self.union == "lite" else ""

    def _repr_html_(self) -> str:
        counts = ", ".join(f"{c} {n}" for c, n in self.counts.items())
        head = (f"<p><b>Dissection of {self.layer}</b>: {self.units} units, {self.images} images, "
                f"top {self.quantile:g} quantile, IoU &gt; {self.iou_threshold:g}{self._union_note()}: "
                f"<b>{self.detectors} detectors</b> ({counts})</p>")
        return head + self.table.sort_values("iou", ascending=False).head(10).to_html(index=False)


# ---------------------------------------------------------------------------------------------
# The two passes

def dissect(model, layer: str, data, quantile: float = 0.005, iou_threshold: float = 0.05,
            batch_size: int = 128, device="auto", progress: bool = True, top_images: int = 8,
            chunk_elements: int | None = None, union: str = "annotated") -> Dissection:
    """Network dissection of `layer` of `model` on concept `data` (steps 1-4 above).

    model: an nn.Module or a kdlab.train.TrainedModel (kdlab.scale.pretrained.load_model loads a
        checkpoint, refusing missing files). data: an ImageSet with concept masks (the
        synthetic dataset) or a kdlab.scale.broden.BrodenDataset. quantile: the top fraction of
        activations that define a unit's mask (0.005). iou_threshold: a unit whose best IoU
        exceeds it is a detector (0.05 Han et al.; 0.04 Bau et al.). top_images: how many
        top-activating images to remember per unit (for the unit browser).
    chunk_elements: the largest number of upsampled mask pixels held at once (default 4M
        on the CPU, 64M on a GPU); memory does not grow with the dataset.
    union: "annotated" (Bau et al.) or "lite" (NetDissect-Lite, Han et al.), the rule of step
        3 for the reported IoUs; both are tallied, so `result.with_union` gives the other.
    """
    return dissect_quantiles(model, layer, data, [quantile], iou_threshold, batch_size, device,
                             progress, top_images, chunk_elements, union)[0]


@torch.inference_mode()
def dissect_quantiles(model, layer: str, data, quantiles: list[float], iou_threshold: float = 0.05,
                      batch_size: int = 128, device="auto", progress: bool = True, top_images: int = 8,
                      chunk_elements: int | None = None, union: str = "annotated") -> list[Dissection]:
    """`dissect` at each of `quantiles`, one Dissection each, from the same two passes over
    the data (notebook 04's sensitivity check). The other arguments are `dissect`'s."""
    _check_union(union)
    source = concept_source(data)
    n_images = len(source)
    if n_images == 0:
        raise ValueError("the concept dataset is empty")
    quantiles = list(quantiles)
    device = pick_device(device)
    budget = chunk_elements or (1 << 26 if device.type == "cuda" else 1 << 22)
    steps = -(-n_images // batch_size)
    with evaluation(model) as net, capture(find_layer(net, layer)) as seen, \
            progress_bar(2 * steps, f"dissect {layer}", enabled=progress) as bar:
        net.to(device)

        def run(images):
            net(images.to(device, non_blocking=True))
            return _unit_maps(seen.value)

        # Pass 1: thresholds and each unit's top-activating images.
        tq = None
        top_val = top_idx = None
        for batch in source.batches(batch_size, masks=False):
            a = run(batch.images)
            units, positions = a.shape[1], a.shape[2] * a.shape[3]
            if tq is None:
                tq = TopQuantile(quantiles, n_images * positions)
            tq.update(a.transpose(0, 1).reshape(units, -1))
            vals = a.amax(dim=(2, 3)).T                                   # (units, B)
            idx = batch.index.to(device).expand(units, -1)
            if top_val is not None:
                vals, idx = torch.cat([top_val, vals], 1), torch.cat([top_idx, idx], 1)
            keep = vals.topk(min(top_images, vals.shape[1]), dim=1)
            top_val, top_idx = keep.values, idx.gather(1, keep.indices)
            bar.update()
        thresholds = tq.thresholds()                                      # (quantiles, units)
        # Pass 2: the IoU tallies at every quantile's thresholds.
        tallies = _tally(run, source, thresholds, batch_size, device, budget, bar)
    return [Dissection(layer, list(source.concepts), list(source.categories), list(source.primary),
                       q, iou_threshold, t.cpu(), inter, act, label_area, top_idx.cpu(), top_val.cpu(),
                       n_images, act_lite, union)
            for q, t, (inter, act, act_lite, label_area) in zip(quantiles, thresholds, tallies)]


def _tally(run, source, thresholds, batch_size, device, budget, bar):
    """Pass 2: integer IoU tallies for each row of `thresholds` (quantiles, units), per batch.

    Bilinear upsampling only takes convex combinations of a map's values, so a map whose
    maximum is not above T_k has an empty mask: only the (image, unit) pairs whose maximum
    exceeds the threshold -- a few percent at the top 0.5 % -- are upsampled and counted.
    Returns per quantile (intersections, "annotated" areas, "lite" areas, label areas).
    """
    n_concepts, n_cats = len(source.concepts), len(source.categories)
    n_q, units = thresholds.shape
    mh, mw = source.mask_size
    pixels = mh * mw
    inter = torch.zeros(n_q, units * n_concepts, dtype=torch.int64, device=device)
    act_area = torch.zeros(n_q, units, n_cats, dtype=torch.int64, device=device)
    act_lite = torch.zeros_like(act_area)
    primary = torch.tensor(source.primary, device=device)                # label -> category (-1: none)
    label_area = torch.zeros(n_concepts, dtype=torch.int64, device=device)
    cat_index = {c: i for i, c in enumerate(source.categories)}
    thresholds = thresholds.to(device)
    for batch in source.batches(batch_size, masks=True):
        a = run(batch.images)
        b = a.shape[0]
        pixel = {k: v.to(device) for k, v in batch.pixel.items()}        # label numbers, any int type
        scalar = {k: v.to(device).long() for k, v in batch.scalar.items()}
        for k, v in pixel.items():
            if tuple(v.shape[-2:]) != (mh, mw):
                raise ValueError(f"{k} masks are {tuple(v.shape[-2:])}, expected {(mh, mw)}")

        # Which categories each image annotates (the union's activation part counts only these).
        annotated = torch.zeros(b, n_cats, dtype=torch.int64, device=device)
        for k, v in pixel.items():
            annotated[:, cat_index[k]] |= (v.flatten(1).amax(1) > 0).long() if v[0].numel() else 0
        for k, v in scalar.items():
            annotated[:, cat_index[k]] |= (v.amax(1) > 0).long() if v.shape[1] else 0

        # Label areas: pixel labels counted per pixel, image-level labels as whole images.
        labels = torch.cat([v.reshape(b, -1, pixels) for v in pixel.values()], 1) if pixel else None
        scal = torch.cat(list(scalar.values()), 1) if scalar else None
        if labels is not None:
            label_area += torch.bincount(labels.flatten(), minlength=n_concepts)[:n_concepts]
        if scal is not None:
            label_area += pixels * torch.bincount(scal.flatten(), minlength=n_concepts)[:n_concepts]

        # Lite's rule: an image-level label touches its category wherever the unit fires.
        image_touch = torch.zeros(b, n_cats, dtype=torch.bool, device=device)
        if scal is not None:
            cat = primary[scal]
            rows = torch.arange(b, device=device).unsqueeze(1).expand_as(scal)
            image_touch[rows[cat >= 0], cat[cat >= 0]] = True

        peak = a.amax(dim=(2, 3))
        for q, t in enumerate(thresholds):
            # The (image, unit) pairs that can have a nonempty mask.
            img, unit = torch.nonzero(peak > t).unbind(1)
            step = max(1, budget // pixels)
            for s in range(0, len(img), step):
                pi, pu = img[s:s + step], unit[s:s + step]
                mask = upsample(a[pi, pu].unsqueeze(1), (mh, mw)).flatten(1) > t[pu].unsqueeze(1)
                pair, where = torch.nonzero(mask).unbind(1)                # the pixels that are on
                count = torch.bincount(pair, minlength=len(pi))            # per pair
                act_area[q].index_add_(0, pu, count.unsqueeze(1) * annotated[pi])
                touch = image_touch[pi]                                    # (pairs, categories)
                if scal is not None:
                    for j in range(scal.shape[1]):
                        inter[q].index_add_(0, pu * n_concepts + scal[pi, j], count)
                if labels is not None:
                    hit = labels[pi[pair], :, where].long()                # (on pixels, layers)
                    flat = (pu[pair] * n_concepts).unsqueeze(1) + hit
                    inter[q] += torch.bincount(flat.flatten(), minlength=units * n_concepts)
                    # Lite: the categories of the labels under the mask (their primary ones)
                    cat = primary[hit]
                    on = (pair.unsqueeze(1).expand_as(cat) * n_cats + cat)[cat >= 0]
                    touch = touch | (torch.bincount(on, minlength=len(pi) * n_cats).view(-1, n_cats) > 0)
                act_lite[q].index_add_(0, pu, count.unsqueeze(1) * touch)
        bar.update()
    inter = inter.view(n_q, units, n_concepts)
    inter[:, :, 0] = 0
    label_area[0] = 0
    return [(inter[q].cpu(), act_area[q].cpu(), act_lite[q].cpu(), label_area.cpu()) for q in range(n_q)]


def unit_masks(model, layer: str, data, result: Dissection, unit: int, k: int = 6):
    """For a unit's top `k` images: images, the unit's upsampled masks and its concept's masks."""
    source = concept_source(data)
    batch = source.take(result.top_images[unit, :k])
    acts = layer_activations(model, layer, batch.images)[:, unit:unit + 1]
    unit_mask = (upsample(acts, source.mask_size) > result.thresholds[unit])[:, 0]
    concept, _ = result.best()
    c = int(concept[unit])
    concept_mask = torch.zeros_like(unit_mask)
    for v in batch.pixel.values():
        concept_mask |= (v == c).any(1)
    for v in batch.scalar.values():
        concept_mask |= (v == c).any(1).view(-1, 1, 1)
    return batch.images, unit_mask, concept_mask if c > 0 else torch.zeros_like(unit_mask)

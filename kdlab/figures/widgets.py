"""Controls that choose among figures drawn up front (ipywidgets and matplotlib, imported inside
each function, so that importing this module stays light).

Every figure is drawn once, when the cell runs, and stored in the notebook; each control is tied
to its figures in the browser, so the reader moves it and sees the figure change in JupyterLab
and in the published book alike, without a kernel:

    figure_picker        one or two controls over any figures (every notebook, first in 00)
    explanation_picker   a menu of images with each model's explanation (notebooks 05, 06)
    figure_image         a figure as the compact image a picker stores
"""

from __future__ import annotations

import torch

from .plots import explanation_frame


def figure_image(fig, dpi: int = 80) -> bytes:
    """A matplotlib figure as WebP bytes, quality 90 (the figure is closed: a picker shows it).

    Every frame of a picker is stored in the saved notebook; WebP keeps these figures' text,
    colour bars and heat maps legible at a third to a half of a PNG's size (a PNG quantised to
    256 colours is smaller still but bands the colour bars).
    """
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    png, webp = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    Image.open(png).convert("RGB").save(webp, format="webp", quality=90, method=6)
    return webp.getvalue()


def _choice(labels: list, description: str, slider: bool, index: int = 0):
    import ipywidgets as widgets

    options = [str(label) for label in labels]
    style = {"description_width": "initial"}
    if slider:
        return widgets.SelectionSlider(options=options, index=index, description=description,
                                       style=style, continuous_update=True)
    return widgets.Dropdown(options=options, index=index, description=description, style=style)


def figure_picker(frames: dict, names=("show",), slider: bool = False, dpi: int = 80, start=None):
    """Controls that choose among precomputed figures: the reader moves the key variable and
    sees its figure, in JupyterLab and in the published book alike (all notebooks).

    frames: {label: matplotlib Figure, or PNG or WebP bytes}, one control named names[0]; or
    {(a, b): figure} for two controls (names[0] picks a, names[1] picks b), e.g. notebook 04's
    quantile × IoU threshold. start: the key shown first (default: the first; notebook 04
    opens at the setting its verdicts use). Every figure is drawn once, up front, into an
    ipywidgets Stack, and each control is tied to its Stack with `jslink`, which runs in the
    browser: the book's saved widget state keeps working without a kernel, where a callback
    that redraws could not.
    """
    import ipywidgets as widgets

    if not frames:
        raise ValueError("figure_picker needs at least one figure")
    names = (names,) if isinstance(names, str) else tuple(names)

    def image(frame):
        data = frame if isinstance(frame, bytes) else figure_image(frame, dpi)
        kind = "png" if data.startswith(b"\x89PNG") else "webp"
        return widgets.Image(value=data, format=kind, layout=widgets.Layout(max_width="100%"))

    keys = list(frames)
    start = keys[0] if start is None else start
    if start not in frames:
        raise ValueError(f"figure_picker: start {start!r} is none of the figures' keys {keys[:4]}")
    if not isinstance(keys[0], tuple):
        control = _choice(keys, names[0], slider, keys.index(start))
        stack = widgets.Stack([image(frames[k]) for k in keys], selected_index=keys.index(start))
        widgets.jslink((control, "index"), (stack, "selected_index"))
        return widgets.VBox([control, stack])
    if len(names) != 2 or any(not isinstance(k, tuple) or len(k) != 2 for k in keys):
        raise ValueError("two controls need two names and (a, b) keys for every figure")
    firsts, seconds = list(dict.fromkeys(k[0] for k in keys)), list(dict.fromkeys(k[1] for k in keys))
    missing = [(a, b) for a in firsts for b in seconds if (a, b) not in frames]
    if missing:
        raise ValueError(f"figure_picker needs a figure for every pair; missing {missing[:3]}")
    i, j = firsts.index(start[0]), seconds.index(start[1])
    first, second = _choice(firsts, names[0], slider, i), _choice(seconds, names[1], slider, j)
    rows = []
    for a in firsts:
        row = widgets.Stack([image(frames[(a, b)]) for b in seconds], selected_index=j)
        widgets.jslink((second, "index"), (row, "selected_index"))
        rows.append(row)
    outer = widgets.Stack(rows, selected_index=i)
    widgets.jslink((first, "index"), (outer, "selected_index"))
    return widgets.VBox([widgets.HBox([first, second]), outer])


def explanation_picker(images: torch.Tensor, rows: dict, captions: dict | None = None,
                       image_titles: list[str] | None = None, title: str = "",
                       signed: bool = False, label: str | None = None, dpi: int = 80):
    """A menu of images; each shows the image and every model's explanation overlaid on it
    (notebooks 05, 06). The frames are drawn once, up front (`explanation_frame`), and chosen
    in the browser (`figure_picker`), so the menu works in the published book too.

    rows: {row label: {model name: (N, H, W) maps}} for the N `images` (keep N <= 12: every
    frame is stored in the notebook); a None instead of maps leaves that panel empty.
    captions: {row label: {model name: N texts or (text, colour) pairs}}.
    image_titles: N texts, each image's title and (numbered) its entry in the menu.
    """
    n = len(images)
    if not 0 < n <= 12:
        raise ValueError(f"explanation_picker shows 1 to 12 images (frames), got {n}")
    image_titles = image_titles or [f"image {j + 1}" for j in range(n)]
    frames = {}
    for j in range(n):
        frame_rows = {r: {name: (None if m is None else m[j]) for name, m in row.items()}
                      for r, row in rows.items()}
        frame_captions = {r: {name: texts[j] for name, texts in row.items()}
                          for r, row in (captions or {}).items()}
        fig = explanation_frame(images[j], frame_rows, frame_captions, image_titles[j],
                                title, signed, label)
        frames[f"{j + 1}: {image_titles[j]}"] = figure_image(fig, dpi)
    return figure_picker(frames, names=("image",), dpi=dpi)

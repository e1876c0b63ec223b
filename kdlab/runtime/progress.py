"""Progress bars and cache reports that keep a notebook's output short.

Taught in notebook 01; used wherever the course trains, dissects or explains.

Every loop that takes more than a few seconds shows a tqdm bar (`bar`) that redraws at most once
a second. In a notebook it is one line of text, redrawn in place, that ends showing the finished
bar (tqdm's widget bar would leave a hidden widget in the saved outputs: an empty gap in the
book); elsewhere it is tqdm's bar on stderr, removed when done. A cell that trains or loads
many models wraps the loop in `summary("20 students", total=20)`: inside it, one bar counts the models, the models'
own bars stay hidden, and the cache's "loaded ..." / "trained ..." lines are counted instead of
printed; the block ends with one line (in a notebook it replaces the bar), such as

    20 students: 20 loaded from the cache, 0 trained.

Redrawing at most once a second matters beyond looks: a notebook kernel sends every redraw as
a message, and a test runner that reads messages only after a cell finishes (nbval) loses
messages past its queue's limit of about a thousand, then fails the cell with "Timeout ...
waiting for output".
"""

from __future__ import annotations

import time
from collections import Counter
from contextlib import contextmanager


class _Line:
    """One output line of a notebook cell that a tqdm bar redraws in place (a display handle).

    In a notebook, tqdm's own widget bar leaves a hidden widget behind in the saved outputs
    (an empty gap in the book, "0%| 0/2" in JupyterLab); this line ends as plain text instead:
    the finished bar, or the summary that replaces it.
    """

    def __init__(self):
        from IPython.display import display

        self.text = ""
        self.handle = display(self, display_id=True)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": self.text}

    def show(self, text: str) -> None:
        self.text = text
        self.handle.update(self)

    def write(self, text: str) -> None:  # tqdm's file: it writes "\r<bar>" on every redraw
        text = text.strip("\r\n")
        if text.strip():
            self.show(text)

    def flush(self) -> None:
        pass


class Block:
    """An open `summary` or `recording` block: it keeps every report made inside it and
    advances its bar (if any) on the events in `advance_on`."""

    def __init__(self, bar=None, line: _Line | None = None, advance_on=()):
        self.reports: list[tuple[str, str]] = []  # (event, message), in order
        self.bar, self.line, self.advance_on = bar, line, tuple(advance_on)

    def add(self, event: str, message: str) -> None:
        self.reports.append((event, message))
        if self.bar is not None and event in self.advance_on:
            self.bar.update(1)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(event for event, _ in self.reports))


_open: list[Block] = []  # the open blocks, innermost last


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return type(get_ipython()).__name__ == "ZMQInteractiveShell"


def _tqdm(iterable=None, total=None, desc="", enabled=True, initial=0):
    """(tqdm bar, the notebook line it draws on or None)."""
    from tqdm import tqdm

    if enabled and _in_notebook():  # one text line, left showing the finished bar
        line = _Line()
        return tqdm(iterable, total=total, desc=desc, initial=initial, file=line,
                    mininterval=1.0, leave=True, ncols=100), line
    return tqdm(iterable, total=total, desc=desc, initial=initial, disable=not enabled,
                mininterval=1.0, leave=False), None


def bar(total: int | None = None, desc: str = "", enabled: bool = True, iterable=None, initial: int = 0):
    """A tqdm bar that redraws at most once a second and is hidden inside a `summary` block
    (the block's own bar counts instead). In a notebook it is one line of text that ends
    showing the finished bar; elsewhere it is tqdm's usual bar on stderr, removed when done."""
    return _tqdm(iterable, total, desc, enabled and not _open, initial)[0]


def report(event: str, message: str) -> None:
    """Print `message`, or count it under `event` ("loaded from the cache", "trained", ...)
    when a `summary` block is open. Warnings are printed, never counted: call print for them."""
    if _open:
        _open[-1].add(event, message)
    else:
        print(message)


@contextmanager
def _opened(block: Block):
    _open.append(block)
    try:
        yield block
    finally:
        _open.remove(block)


@contextmanager
def summary(what: str, total: int | None = None, enabled: bool = True,
            advance_on=("loaded from the cache", "trained")):
    """Within the block, one bar over `total` models (advanced by each model loaded or trained)
    and no per-model lines; at its end one line `what: 20 loaded from the cache, 0 trained.`"""
    if _open:  # nested (a library function's block inside a notebook's): the outer one reports
        yield _open[-1]
        return
    progress, line = _tqdm(total=total, desc=what, enabled=enabled)
    t0 = time.perf_counter()
    try:
        with _opened(Block(progress, line, advance_on)) as block:
            yield block
    finally:
        progress.close()
    counts = block.counts
    parts = [f"{counts.get(e, 0)} {e}" for e in advance_on]
    parts += [f"{e}: {n}" for e, n in counts.items() if e not in advance_on]
    took = f" in {time.perf_counter() - t0:.0f} s" if counts.get("trained") else ""
    text = f"{what}: {', '.join(parts)}{took}."
    if line is not None:
        line.show(text)  # the summary replaces the finished bar, on the same line
    else:
        print(text)


@contextmanager
def recording():
    """Within the block, reports are kept instead of printed or counted, and bars are hidden;
    yields the list of (event, message) pairs. kdlab.runtime.parallel runs each job of a worker process
    inside one and reports the pairs in the notebook's process."""
    with _opened(Block()) as block:
        yield block.reports

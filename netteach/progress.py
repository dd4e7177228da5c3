"""Progress bars for long work: shown in a Jupyter notebook, silent in plain scripts and tests.

Wrap a loop (building or probing tens of containers, reachability at scale)::

    from netteach.progress import progress
    for i in progress(range(100), what="containers"):
        dh.run(f"c{i}")

or count work done elsewhere (threads may call ``advance``)::

    with Progress(total=len(pairs), what="probes") as bar:
        for result in pool.map(probe_one, pairs):
            bar.advance()

The bar appears only in a notebook kernel and only once the work has taken
``delay`` seconds (short work shows nothing); when it ends it is replaced by
one line of text saying how much was done and how long it took. ipywidgets
is imported only then. Outside a notebook nothing is printed.

>>> list(progress(range(3), what="steps"))     # a script: just the items
[0, 1, 2]
>>> with Progress(total=2, what="probes") as bar:
...     bar.advance(); bar.advance()
>>> bar.done, bar.shown
(2, False)
"""

from __future__ import annotations

import threading
import time


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, nbclient), False in scripts, tests and terminal IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Progress:
    """A counter towards ``total`` that a notebook shows as a bar (thread-safe ``advance``)."""

    def __init__(self, total: int | None = None, what: str = "", delay: float = 0.5, show: bool | None = None):
        self.total = total
        self.what = what or "done"
        self.delay = delay
        self.done = 0
        self.shown = False
        self._show = in_notebook() if show is None else show
        self._start = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()
        self._bar = self._label = self._handle = None

    def advance(self, n: int = 1):
        """Count ``n`` more items done; redraws at most ten times a second."""
        with self._lock:
            self.done += n
            if not self._show:
                return
            now = time.monotonic()
            if not self.shown and now - self._start >= self.delay:
                self._display()
            if self.shown and (now - self._last >= 0.1 or self.done == self.total):
                self._last = now
                self._update()

    def _display(self):
        import ipywidgets as w
        from IPython.display import display

        self._bar = w.IntProgress(value=0, min=0, max=max(self.total or 1, 1), description=self.what,
                                  style={"description_width": "initial"})
        self._label = w.Label()
        self._handle = display(w.HBox([self._bar, self._label]), display_id=True)
        self.shown = True

    def _update(self):
        if self.total:
            self._bar.value = min(self.done, self.total)
            self._label.value = f"{self.done}/{self.total}  {time.monotonic() - self._start:.1f} s"
        else:
            self._label.value = f"{self.done}  {time.monotonic() - self._start:.1f} s"

    def summary(self) -> str:
        """One line: how much was done and how long it took."""
        of = f"/{self.total}" if self.total else ""
        return f"{self.what}: {self.done}{of} in {time.monotonic() - self._start:.1f} s"

    def close(self):
        """Replace the bar by its summary line (in a notebook); nothing to do in a script."""
        with self._lock:
            if self.shown:
                from IPython.display import Pretty

                if self._handle is not None:  # None where nothing displays (no IPython shell)
                    self._handle.update(Pretty(self.summary()))
                self._bar.close()
                self._label.close()
                self.shown = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def progress(iterable, total: int | None = None, what: str = "", delay: float = 0.5):
    """Yield the items of ``iterable``, showing a progress bar in a notebook once it takes ``delay`` s."""
    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    with Progress(total, what, delay) as bar:
        for item in iterable:
            yield item
            bar.advance()

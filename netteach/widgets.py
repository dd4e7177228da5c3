"""Widgets: thin views over a lab. A button calls tested Lab verbs, then the picture is redrawn.

:func:`stepper` walks through a build one step per click::

    steps = [("1. a namespace", lambda: lab.add_netns("c1")),
             ("2. a veth pair", lambda: lab.add_veth("veth-c1", "eth0", peer_netns="c1"))]
    from netteach.widgets import stepper
    s = stepper(lab, steps)
    s                                    # the steps, a "next step" button and the picture

Everything the button does is also a method (``s.step()``, ``s.run_all()``),
so a notebook run headless, or a test, gets the same result without a click.
ipywidgets is imported only when the widget is shown.

>>> s = Stepper(None, [("one", lambda: None), ("two", lambda: None)], draw=False)
>>> s.step(), s.position, s.done
(True, 1, False)
>>> print(s.status())
✓ 1/2 one
→ 2/2 two

Introduced in notebooks/02_principles.ipynb.
"""

from __future__ import annotations

import html

from netteach.errors import NetteachError


class Stepper:
    """A list of ``(title, callable)`` steps run one at a time on a lab, redrawing it after each.

    ``position`` is how many steps are done; a step that raises a
    :class:`~netteach.errors.NetteachError` is not counted, its message is
    kept in ``error`` and shown, and the next click tries it again (Lab verbs
    converge, so a step may safely run twice). ``draw=False`` never draws
    (for tests of the logic).
    """

    def __init__(self, lab, steps, draw: bool = True):
        self.lab = lab
        self.steps = [(str(title), fn) for title, fn in steps]
        if not self.steps:
            raise ValueError("a stepper needs at least one (title, callable) step")
        self.position = 0
        self.error: str | None = None
        self.draw = draw
        self._ui = None

    @property
    def done(self) -> bool:
        """True once every step has run."""
        return self.position >= len(self.steps)

    def step(self, redraw: bool = True) -> bool:
        """Run the next step (what the button does); True if one ran, False if it failed or none was left."""
        if self.done:
            return False
        title, fn = self.steps[self.position]
        try:
            fn()
        except NetteachError as exc:
            self.error = f"step {self.position + 1} ({title}) failed: {exc}"
            self._refresh()
            return False
        self.error = None
        self.position += 1
        if redraw:
            self._refresh()
        return True

    def run_all(self) -> "Stepper":
        """Run every step not yet done (stops at a failing one), then redraw once; returns the stepper."""
        while not self.done and self.step(redraw=False):
            pass
        self._refresh()
        return self

    def status(self) -> str:
        """The steps as lines: ✓ done, → next, blank for later ones; then the error, if any."""
        n = len(self.steps)
        lines = []
        for i, (title, _) in enumerate(self.steps):
            mark = "✓" if i < self.position else "→" if i == self.position else " "
            lines.append(f"{mark} {i + 1}/{n} {title}")
        if self.error:
            lines.append(f"✗ {self.error}")
        return "\n".join(lines)

    def picture(self) -> bytes | None:
        """The lab's picture now, as PNG bytes (None with ``draw=False``)."""
        if not self.draw or self.lab is None:
            return None
        from netteach import draw

        return draw.to_png(self.lab.draw())

    # ---- the view --------------------------------------------------------------------

    def widget(self):
        """The ipywidgets view: the steps, a "next step" and a "run all" button, the picture."""
        if self._ui is None:
            import ipywidgets as w

            text = w.HTML()
            nxt = w.Button(description="next step", button_style="primary", icon="step-forward")
            rest = w.Button(description="run the rest", icon="fast-forward")
            image = w.Image(format="png", layout=w.Layout(max_width="100%"))
            nxt.on_click(lambda _: self.step())
            rest.on_click(lambda _: self.run_all())
            self._ui = {"text": text, "next": nxt, "rest": rest, "image": image,
                        "box": w.VBox([text, w.HBox([nxt, rest]), image])}
            self._refresh()
        return self._ui["box"]

    def _refresh(self):
        if self._ui is None:
            return
        self._ui["text"].value = f"<pre>{html.escape(self.status())}</pre>"
        self._ui["next"].disabled = self._ui["rest"].disabled = self.done
        png = self.picture()
        if png is not None:
            self._ui["image"].value = png

    def _repr_mimebundle_(self, **kwargs):
        return self.widget()._repr_mimebundle_(**kwargs)

    def __repr__(self):
        return self.status()


def stepper(lab, steps, draw: bool = True) -> Stepper:
    """Step through ``steps`` (a list of ``(title, callable)``) on ``lab``, one click per step.

    Each callable calls Lab verbs; after each step the lab's picture is
    redrawn from the kernel. Show the returned :class:`Stepper` in a cell.
    """
    return Stepper(lab, steps, draw=draw)

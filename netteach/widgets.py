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

:func:`reachability_explorer` asks "can SRC reach DST (on PORT)?" from dropdowns
filled from a lab or a DockerHost, and shows the answer with the packet's path
highlighted (``lab.trace``); :func:`trace_explorer` steps through a traced packet
hop by hop::

    reachability_explorer(dh)            # choose, press "probe", read the answer and the picture
    trace_explorer(dh.trace("internet", "host", 8080))   # "next hop" / "previous hop"

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


# ---- reachability explorer ------------------------------------------------------------------

def _is_docker_host(target) -> bool:
    return hasattr(target, "containers") and hasattr(target, "ps")


def reach_choices(target, ports=None) -> dict:
    """What the explorer's dropdowns offer: sources, destinations ``(label, value)``, ports ``(label, port)``.

    A DockerHost offers its containers, "host" and "internet" (by name) and the
    ports its containers serve or publish; a Lab offers its namespaces as sources
    and their IPv4 addresses, read from the kernel, as destinations. ``ports``
    (a list of numbers) replaces the ports offered; "ping" is always first.
    """
    if _is_docker_host(target):
        sources = list(target.containers()) + ["host", "internet"]
        destinations = [(n, n) for n in sources]
        if ports is None:
            ports = sorted({int(c["spec"]["serve"]) for c in target._ctrs.values() if c["spec"].get("serve")}
                           | {int(hp) for c in target._ctrs.values() for hp in c.get("ports", {})})
    else:
        snap = target.snapshot()
        sources = list(target.namespaces)
        destinations = [(f"{ns.name} ({a.split('/')[0]})", a.split("/")[0]) for ns in snap.namespaces
                        for i in ns.interfaces if i.kind != "loopback" for a in i.addresses if ":" not in a]
        ports = list(ports or [])
    return {"sources": sources, "destinations": destinations,
            "ports": [("ping", None)] + [(f"HTTP :{p}", int(p)) for p in ports]}


class Reach:
    """One answer of the reachability explorer: the probe's result and, when traced, the packet's path."""

    def __init__(self, src, dst, port, result, trace=None):
        self.src, self.dst, self.port = src, dst, port
        self.result = result  # PingResult or HttpResult, from the kernel
        self.trace = trace    # a Trace (lab.trace) or None
        self.ok = bool(result)

    @property
    def path(self) -> list[str]:
        """Graph node ids the traced packet went through ([] without a trace)."""
        return list(self.trace.path) if self.trace is not None else []

    def summary(self) -> str:
        what = f"HTTP {self.src} -> {self.dst}:{self.port}" if self.port else f"ping {self.src} -> {self.dst}"
        lines = [f"{'✓' if self.ok else '✗'} {what}: {self.result!r}"]
        if self.trace is not None:
            lines.append(f"traced packet: {self.trace.verdict}")
        return "\n".join(lines)

    def __repr__(self):
        return self.summary()


def reach(target, src: str, dst: str, port: int | None = None, trace: bool = True) -> Reach:
    """Probe from ``src`` to ``dst``: a ping without ``port``, an HTTP GET with one; then trace one packet
    (when the lab can) so the picture can show its path. All answers come from the kernel."""
    result = target.ping(src, dst) if port is None else target.http_get(src, dst, port)
    traced = None
    if trace and hasattr(target, "trace"):
        traced = target.trace(src, dst, port=port)
    return Reach(src, dst, port, result, traced)


class ReachabilityExplorer:
    """Dropdowns for source, destination and port, a "probe" button, the answer, and the picture with the
    packet's path highlighted. ``probe()`` is what the button does (also callable without a browser)."""

    def __init__(self, target, ports=None, draw: bool = True):
        self.target = target
        self.choices = reach_choices(target, ports)
        if not self.choices["sources"] or not self.choices["destinations"]:
            raise NetteachError("nothing to explore yet: this lab has no namespace with an address "
                                "(build it first, then show the explorer)")
        self.src = self.choices["sources"][0]
        dests = [v for _, v in self.choices["destinations"] if v != self.src]
        self.dst = dests[0] if dests else self.choices["destinations"][0][1]
        self.port = None
        self.last: Reach | None = None
        self.error: str | None = None
        self.draw = draw
        self._ui = None

    def probe(self, src=None, dst=None, port=None) -> Reach | None:
        """Probe (and trace) from the chosen source to the chosen destination; redraw; returns the answer."""
        if src is not None:
            self.src, self.dst, self.port = src, dst, port
        try:
            self.last, self.error = reach(self.target, self.src, self.dst, self.port), None
        except NetteachError as exc:
            self.last, self.error = None, str(exc)
        self._refresh()
        return self.last

    def status(self) -> str:
        if self.error:
            return f"✗ {self.error}"
        return self.last.summary() if self.last else "choose a source, a destination and a port, then press probe"

    def picture(self) -> bytes | None:
        """PNG of the lab now, the last probe's packet path highlighted."""
        if not self.draw:
            return None
        from netteach import draw

        if self.last is not None and self.last.trace is not None:
            return draw.to_png(self.last.trace.draw())
        return draw.to_png(self.target.draw())

    def widget(self):
        if self._ui is None:
            import ipywidgets as w

            src = w.Dropdown(options=self.choices["sources"], value=self.src, description="from")
            dst = w.Dropdown(options=self.choices["destinations"], value=self.dst, description="to")
            # a Dropdown's None means "nothing chosen": ping gets a value of its own
            port = w.Dropdown(options=[(label, "ping" if p is None else p) for label, p in self.choices["ports"]],
                              value="ping" if self.port is None else self.port, description="what")
            go = w.Button(description="probe", button_style="primary", icon="search")
            text = w.HTML()
            image = w.Image(format="png", layout=w.Layout(max_width="100%"))

            def on_click(_):
                go.disabled = True
                try:
                    self.probe(src.value, dst.value, None if port.value == "ping" else port.value)
                finally:
                    go.disabled = False

            go.on_click(on_click)
            self._ui = {"src": src, "dst": dst, "port": port, "go": go, "text": text, "image": image,
                        "box": w.VBox([w.HBox([src, dst, port, go]), text, image])}
            self._refresh()
        return self._ui["box"]

    def _refresh(self):
        if self._ui is None:
            return
        png = self.picture()  # first: the answer shows once its picture is ready
        if png is not None:
            self._ui["image"].value = png
        color = "#b42318" if self.error or (self.last and not self.last.ok) else "#1a7f37"
        self._ui["text"].value = (f"<pre style='color:{color if self.last or self.error else 'inherit'}'>"
                                  f"{html.escape(self.status())}</pre>")

    def _repr_mimebundle_(self, **kwargs):
        return self.widget()._repr_mimebundle_(**kwargs)

    def __repr__(self):
        return self.status()


def reachability_explorer(target, ports=None, draw: bool = True) -> ReachabilityExplorer:
    """Choose a source, a destination and a port on a Lab or DockerHost; see the answer and the path.

    Show the returned explorer in a cell. For a Lab, pass the ports its servers
    listen on (``ports=[80]``); a DockerHost offers its served and published ports.
    """
    return ReachabilityExplorer(target, ports=ports, draw=draw)


# ---- trace explorer ---------------------------------------------------------------------------

def hop_nodes(trace, index: int) -> list[str]:
    """Graph node ids of hop ``index``: its namespace and the interfaces it names (in, out, route device),
    keeping only what the trace's own path holds.

    >>> from types import SimpleNamespace as NS
    >>> t = NS(hops=[NS(namespace="c1", kind="route", data={"dev": "eth0"})], path=["netns:c1", "if:c1/eth0"])
    >>> hop_nodes(t, 0)
    ['netns:c1', 'if:c1/eth0']
    """
    hop = trace.hops[index]
    nodes = [f"netns:{hop.namespace}"]
    for key in ("iif", "oif", "dev"):
        name = (hop.data or {}).get(key)
        if name and f"if:{hop.namespace}/{name}" not in nodes:
            nodes.append(f"if:{hop.namespace}/{name}")
    path = set(trace.path)
    return [n for n in nodes if not path or n in path]


class TraceExplorer:
    """A traced packet, one hop at a time: the hop's namespace and interfaces highlighted, its rule shown.

    ``go(i)``, ``next()`` and ``previous()`` are what the buttons do.
    """

    def __init__(self, trace, lab=None, draw: bool = True):
        if not trace.hops:
            raise NetteachError(f"the trace {trace.what} has no hops to step through: {trace.verdict}")
        self.trace = trace
        self.lab = lab if lab is not None else getattr(trace, "_lab", None)
        self.position = 0
        self.draw = draw and self.lab is not None
        # the lab as it was when traced (read now: the explorer keeps working after the lab is gone)
        self._graph = self.lab.graph() if self.draw else None
        self._pngs: dict[int, bytes] = {}
        self._ui = None

    def go(self, index: int) -> int:
        self.position = max(0, min(len(self.trace.hops) - 1, index))
        self._refresh()
        return self.position

    def next(self) -> int:
        return self.go(self.position + 1)

    def previous(self) -> int:
        return self.go(self.position - 1)

    def status(self) -> str:
        """The hops as lines, the current one marked with →, then the verdict."""
        n = len(self.trace.hops)
        lines = [f"{'→' if i == self.position else ' '} {i + 1:>{len(str(n))}}/{n} {h.namespace:<10} {h.kind:<8} {h.detail}"
                 for i, h in enumerate(self.trace.hops)]
        return "\n".join(lines + ["", self.trace.verdict])

    def picture(self, index: int | None = None) -> bytes | None:
        """PNG of the lab (as read when the explorer was made) with hop ``index``'s namespace and interfaces
        highlighted."""
        if not self.draw:
            return None
        index = self.position if index is None else index
        if index not in self._pngs:
            from netteach import draw

            hop = self.trace.hops[index]
            fig = draw.draw(self._graph, highlight=hop_nodes(self.trace, index),
                            title=f"hop {index + 1}/{len(self.trace.hops)}: {hop.namespace} {hop.kind}")
            self._pngs[index] = draw.to_png(fig)
        return self._pngs[index]

    def widget(self):
        if self._ui is None:
            import ipywidgets as w

            prev = w.Button(description="previous hop", icon="step-backward")
            nxt = w.Button(description="next hop", button_style="primary", icon="step-forward")
            text = w.HTML()
            current = w.HTML()
            image = w.Image(format="png", layout=w.Layout(max_width="100%"))
            prev.on_click(lambda _: self.previous())
            nxt.on_click(lambda _: self.next())
            self._ui = {"prev": prev, "next": nxt, "text": text, "current": current, "image": image,
                        "box": w.VBox([w.HTML(f"<b>trace {html.escape(self.trace.what)}</b>"), text,
                                       w.HBox([prev, nxt]), current, image])}
            self._refresh()
        return self._ui["box"]

    def _refresh(self):
        if self._ui is None:
            return
        png = self.picture()  # first: the text changes only once the picture is ready
        if png is not None:
            self._ui["image"].value = png
        hop = self.trace.hops[self.position]
        self._ui["current"].value = (f"<b>hop {self.position + 1}/{len(self.trace.hops)} · {html.escape(hop.namespace)}"
                                     f" · {html.escape(hop.kind)}</b>: <code>{html.escape(hop.detail)}</code>")
        self._ui["text"].value = f"<pre>{html.escape(self.status())}</pre>"
        self._ui["prev"].disabled = self.position == 0
        self._ui["next"].disabled = self.position >= len(self.trace.hops) - 1

    def _repr_mimebundle_(self, **kwargs):
        return self.widget()._repr_mimebundle_(**kwargs)

    def __repr__(self):
        return self.status()


def trace_explorer(trace, lab=None, draw: bool = True) -> TraceExplorer:
    """Step through ``trace`` (from ``lab.trace(...)`` or ``dh.trace(...)``) hop by hop; show it in a cell."""
    return TraceExplorer(trace, lab=lab, draw=draw)

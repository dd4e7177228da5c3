"""Draw a lab the way Docker's network diagrams do: namespaces as boxes, veth pairs as cables.

The namespace with the most veth cables (the "hub", usually ``host``) is the
wide box in the middle, its bridges orange bars inside it; every other
namespace is a box above it (and below it, when there are many), its
interfaces on the edge facing the hub and each veth cable going straight down
to the end of the pair that lives in the hub. Big labs wrap into bands
("host, continued") so a picture stays legible at a notebook's width, and
beyond ``MAX_SHOWN`` namespaces each network is folded on its own, so every
bridge stays in the picture. Colours say the interface type; greyed, dashed
boxes are interfaces that are DOWN.

Drawing only reads the graph (:mod:`netteach.graph`), never the kernel, and
matplotlib is imported when :func:`draw` is called, not before.

>>> from netteach.snapshot import Snapshot, Namespace, Interface
>>> snap = Snapshot(namespaces=[
...     Namespace("host", interfaces=[Interface("host", "veth0", kind="veth", peer=("c1", "eth0"),
...                                             addresses=["10.0.0.1/24"], state="UP")]),
...     Namespace("c1", interfaces=[Interface("c1", "eth0", kind="veth", peer=("host", "veth0"),
...                                           addresses=["10.0.0.2/24"], state="UP")]),
... ])
>>> fig = draw(snap, title="one veth pair")
>>> import matplotlib.figure
>>> isinstance(fig, matplotlib.figure.Figure)
True
>>> sorted(t.get_text() for t in fig.axes[0].texts if t.get_text() in ("host", "c1", "eth0", "veth0"))
['c1', 'eth0', 'host', 'veth0']
>>> to_png(fig)[:4]
b'\\x89PNG'

Introduced in the chapter 2 notebook (``lab.draw()``).
"""

from __future__ import annotations

import io
import math
from collections import Counter
from dataclasses import dataclass, field

#: interface colour by type; any other type is drawn as "other"
COLORS = {"veth": "#3f6fb5", "bridge": "#e07b24", "loopback": "#8c8c8c", "vxlan": "#3a9a5b",
          "macvlan": "#8160b5", "other": "#8a6d4f"}
DOWN_COLOR = "#a0a0a0"
MAX_SHOWN = 24  # more namespaces around the hub than this are folded, network by network ...
FOLD_KEEP = 11  # ... into the first FOLD_KEEP of each and one "... and N more" box
ONE_ROW = 6  # namespaces in a row; more: a second row below the hub, then another band
BAND_GAP = 0.45  # between two bands of a wrapped picture

# The drawing's data units are inches, so that fonts (in points) fit the boxes.
IF_FONT, SUB_FONT, NS_FONT, NOTE_FONT = 8, 6.5, 9.5, 7
GAP = 1.15  # from a row's interface line to the hub's edge: the visible cable
COL_GAP, SLOT_GAP, PAD = 0.3, 0.15, 0.15
BAR_H, BAR_STEP = 0.3, 0.5
FOLD = "\0fold"  # stands in a row for the folded namespaces


def draw(graph_or_snapshot, ax=None, title=None, show_lo=None, highlight=None):
    """Draw the namespaces, interfaces, veth cables and bridges; return the matplotlib Figure.

    ``graph_or_snapshot`` is a :class:`~netteach.snapshot.Snapshot` or the
    graph :func:`netteach.graph.to_graph` made of one. With ``ax``, draw into
    that Axes and return its figure. Loopback interfaces are drawn when
    ``show_lo`` is True; when it is None, in small labs (at most 4
    namespaces) and in namespaces that have nothing else.
    ``highlight`` is a collection of node ids (``"netns:c1"``,
    ``"if:host/docker0"``) drawn in red, and the cables between two of them
    (``trace.draw()`` shows a packet's path this way).
    Nothing is shown or printed: a notebook displays the returned figure.
    """
    from netteach.graph import to_graph

    g = graph_or_snapshot
    if not hasattr(g, "nodes"):
        if not hasattr(g, "namespaces"):
            raise TypeError(f"draw() needs a Snapshot or its graph, not {type(g).__name__}")
        g = to_graph(g)
    return _render(_Layout(g, show_lo), ax, title, frozenset(highlight or ()))


def to_png(fig, dpi=None) -> bytes:
    """The figure as PNG bytes (what a notebook's ``_repr_png_`` returns)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _tw(text, size, bold=False):
    """Rough width in inches of one line of text (DejaVu Sans)."""
    return len(text) * size * (0.66 if bold else 0.6) / 72


@dataclass
class _Item:
    """One interface box (or bridge bar) and where it is drawn."""

    node: str
    ifname: str
    type: str
    down: bool
    sub: list = field(default_factory=list)  # smaller lines under the name
    x: float = 0.0
    y: float = 0.0
    row: str = "hub"  # "up", "down" (the rows around the hub) or "hub"

    @property
    def w(self):
        return max([_tw(self.ifname, IF_FONT, True)] + [_tw(s, SUB_FONT) for s in self.sub]) + 0.2

    @property
    def h(self):
        return 0.26 + 0.14 * len(self.sub)


def _item(g, node):
    d = g.nodes[node]
    kind = "loopback" if d["ifname"] == "lo" else d.get("type") or "other"
    down = d.get("state") not in ("UP", "UNKNOWN")
    addrs = list(d.get("addresses") or [])
    sub = addrs[:2] + ([f"+{len(addrs) - 2} more"] if len(addrs) > 2 else [])
    if d.get("network"):  # a Docker network's bridge: say which network it carries
        sub.insert(0, f"network {d['network']}")
    if down:
        sub.append("no carrier" if d.get("admin_up") else "DOWN")
    return _Item(node, d["ifname"], kind if kind in COLORS else "other", down, sub)


class _Layout:
    """Where everything goes, in inches; pure arithmetic, no matplotlib.

    Namespaces around the hub are laid out in *bands*: a row above the hub
    and a row below it, at most ``ONE_ROW`` each. A lab with more than one
    band's worth wraps, like a long line of text: the next band repeats the
    hub strip ("host, continued") with the bridge bars its ports need, so the
    picture stays about ``ONE_ROW`` columns wide and legible at notebook width.
    """

    def __init__(self, g, show_lo):
        self.g = g
        nss = [d["name"] for _, d in g.nodes(data=True) if d.get("kind") == "netns"]
        ifs = {ns: [] for ns in nss}
        for n, d in g.nodes(data=True):
            if d.get("kind") == "interface" and d.get("netns") in ifs:
                ifs[d["netns"]].append(n)
        self.peer, cables = {}, Counter()
        for u, v, kind in g.edges(data="kind"):
            if kind == "veth":
                self.peer[u], self.peer[v] = v, u
                a, b = g.nodes[u]["netns"], g.nodes[v]["netns"]
                if a != b:
                    cables[a] += 1
                    cables[b] += 1
        hub = max(nss, key=lambda n: (cables[n], n == "host", -nss.index(n)), default=None)
        self.hub = hub if hub == "host" or cables[hub] else None

        def is_lo(n):
            return g.nodes[n]["ifname"] == "lo" or g.nodes[n].get("type") == "loopback"

        def wanted(n):
            if not is_lo(n) or show_lo:
                return True
            only_lo = all(is_lo(m) for m in ifs[g.nodes[n]["netns"]])
            return show_lo is None and (only_lo or len(nss) <= 4)

        self.shown = {ns: [n for n in ifs[ns] if wanted(n)] for ns in nss}
        self.items = {n: _item(g, n) for ns in nss for n in self.shown[ns]}
        hub_ifs = self.shown.get(self.hub, [])
        in_hub = set(hub_ifs)
        self.bridges = [n for n in hub_ifs if self.items[n].type == "bridge"]

        def hub_ends(ns):  # the hub-side ends of ns's cables
            return [self.peer[n] for n in self.shown[ns] if self.peer.get(n) in in_hub]

        def bridges_of(ns):
            masters = {_master(g, e) for e in hub_ends(ns)}
            return [i for i, b in enumerate(self.bridges) if b in masters]

        def group(ns):  # namespaces on the same bridge side by side, unconnected ones last
            return min(bridges_of(ns), default=len(self.bridges) + (0 if hub_ends(ns) else 1))

        def shape(ns):
            return [self.items[n].type for n in self.shown[ns]], bridges_of(ns)

        # many namespaces: fold each network (group) on its own, so every bridge keeps some
        others = sorted((ns for ns in nss if ns != self.hub), key=group)
        self.folds = {}  # fold entry -> {"names": [...], "same": bool, "bridges": {...}, "x": ...}
        entries = []
        groups: dict = {}
        for ns in others:
            groups.setdefault(group(ns), []).append(ns)
        fold = len(others) > MAX_SHOWN
        for k, members in groups.items():
            if fold and len(members) > FOLD_KEEP + 1:
                kept, hidden = members[:FOLD_KEEP], members[FOLD_KEEP:]
                key = f"{FOLD}{k}"
                self.folds[key] = {
                    "names": hidden, "same": all(shape(ns) == shape(kept[-1]) for ns in hidden),
                    "bridges": {self.bridges[i] for ns in hidden for i in bridges_of(ns)}}
                for ns in hidden:
                    for n in self.shown[ns] + hub_ends(ns):
                        self.items.pop(n, None)
                entries += kept + [key]
            else:
                entries += members
        self.folded = [ns for f in self.folds.values() for ns in f["names"]]
        shown_others = [e for e in entries if e not in self.folds]

        # bands of up to 2 * ONE_ROW entries; one row above the hub when they are few
        per_band = 2 * ONE_ROW
        chunks = [entries[i:i + per_band] for i in range(0, len(entries), per_band)] or [[]]
        self.bands = []
        for chunk in chunks:
            split = math.ceil(len(chunk) / 2) if len(chunk) > ONE_ROW else len(chunk)
            self.bands.append({"up": chunk[:split], "down": chunk[split:]})

        # the hub's left column: its name, then the interfaces that are neither cable ends nor
        # bridges, in a few columns; ports of a bridge in the last one, nearest to the bar
        ends = {e for ns in shown_others for e in hub_ends(ns)}
        self.ends = ends
        left = [n for n in hub_ifs if n in self.items and n not in ends and n not in self.bridges]
        ports = [n for n in left if _master(g, n) in self.bridges]
        plain = [n for n in left if n not in ports]
        ncols = 1 if len(plain) <= 3 else 2 if len(plain) <= 8 else 3
        self.left = [plain[i::ncols] for i in range(ncols) if plain[i::ncols]] + ([ports] if ports else [])
        colw = [max(self.items[n].w for n in col) for col in self.left]
        self.hub_title = self.title_lines(self.hub) if self.hub else []
        title_w = max([_tw(t, s, b) for t, s, b in self.hub_title], default=0)
        self.L = max(title_w, sum(colw) + SLOT_GAP * (len(colw) - 1)) + 2 * PAD if self.hub else 0

        # columns of each band's rows, left to right; the hub ends of their cables right below them
        self.boxes = {}  # ns -> [x0, y0, w, h, row]
        for band in self.bands:
            band["width"] = {}
            for row in ("up", "down"):
                x = 0.0
                for ns in band[row]:
                    x += self.place_column(ns, row, x, in_hub) + COL_GAP
                band["width"][row] = x
        legend_w = sum(_tw(t, 7) + 0.45 for t in self.legend() + ["veth cable"])
        widest = max(w for band in self.bands for w in band["width"].values())
        self.W = max(self.L + widest + COL_GAP, legend_w + 0.2, 2.5)
        for band in self.bands:  # centre each row in the space right of the hub's title
            for row in ("up", "down"):
                shift = self.L + (self.W - self.L - band["width"][row]) / 2 + COL_GAP / 2
                for ns in band[row]:
                    self.shift_column(ns, shift)

        # bridges: in each band, bars spanning their ports there, stacked on levels where they
        # would overlap; a bridge with no port in any band is drawn in the first one
        self.bars = []  # [bridge node, band index, x0, x1, y]
        for k, band in enumerate(self.bands):
            members = band["up"] + band["down"]
            band["levels"], band["bars"] = [], []
            for b in self.bridges:
                xs = [self.items[self.peer[n]].x for ns in members if ns not in self.folds
                      for n in self.shown[ns] if self.peer.get(n) in ends and _master(g, self.peer[n]) == b]
                xs += [self.folds[f]["x"] for f in members if f in self.folds and b in self.folds[f]["bridges"]]
                if not xs and (k > 0 or self.has_ports_somewhere(b)):
                    continue
                it = self.items[b]
                label_w = (_tw(it.ifname, IF_FONT, True) + sum(_tw(s, SUB_FONT) + 0.1 for s in it.sub) + 0.3)
                x0 = min(xs) - 0.35 if xs else self.L + COL_GAP
                x1 = max(max(xs, default=x0) + 0.35, x0 + label_w)
                if x1 > self.W - PAD:  # keep the label inside the hub's box
                    x0, x1 = max(self.L, x0 - (x1 - self.W + PAD)), self.W - PAD
                    x1 = max(x1, x0 + label_w)
                levels = band["levels"]
                level = next((i for i, end in enumerate(levels) if end + 0.3 < x0), len(levels))
                levels[level:level + 1] = [x1]
                band["bars"].append([b, x0, x1, level])
        self.W = max([self.W] + [x1 + PAD for band in self.bands for _, _, x1, _ in band["bars"]])

        # heights, band by band from the top, now that all widths are known
        offset, self.ylim_top, low = 0.0, None, 0.0
        for k, band in enumerate(self.bands):
            top_y, band_low, hub_h = self.place_band(k, band, colw)
            band["offset"] = offset - top_y
            self.shift_band(band, band["offset"])
            if self.ylim_top is None:
                self.ylim_top = top_y + band["offset"]
            low = band_low + band["offset"]
            offset = low - BAND_GAP
        self.hub_h = self.bands[0]["hub_h"]
        self.ylim = (low - 0.55, (self.ylim_top or 0.0) + 0.15)

    def has_ports_somewhere(self, b):
        return any(_master(self.g, e) == b for e in self.ends if e in self.items)

    def shift_column(self, ns, dx):
        self.boxes[ns][0] += dx
        if ns in self.folds:
            self.folds[ns]["x"] += dx
            return
        for n in self.shown[ns]:
            self.items[n].x += dx
            if self.peer.get(n) in self.ends:
                self.items[self.peer[n]].x += dx

    def place_band(self, k, band, colw):
        """Heights of band ``k`` with the hub's top edge at y=0; returns (top, bottom, hub height)."""
        def half(row):
            return max([self.items[n].h / 2 for ns in band[row] if ns not in self.folds
                        for n in self.shown[ns]] + [0.2])

        def end_heights(row):
            return [self.items[self.peer[n]].h / 2 for ns in band[row] if ns not in self.folds
                    for n in self.shown[ns] if self.peer.get(n) in self.ends]

        title = self.hub_title if k == 0 else [(f"{self.hub} (continued)", NOTE_FONT, False)]
        top = max(end_heights("up"), default=0) + 0.3
        bars_h = top + len(band["levels"]) * BAR_STEP + max(end_heights("down"), default=0) + 0.25
        left_h = 0.2 + 0.2 * len(title) + (max(
            [sum(self.items[n].h + 0.15 for n in col) for col in self.left] + [0]) if k == 0 else 0)
        hub_h = max(bars_h, left_h, 1.0 if k == 0 else 0.8) if self.hub else 0.0
        band["hub_h"], band["title"] = hub_h, title
        for bar in band["bars"]:
            bar.append(-(top + BAR_H / 2 + bar[3] * BAR_STEP))  # its y
        if k == 0:
            x = PAD
            for col, w in zip(self.left, colw):
                y = -0.2 - 0.2 * len(title)
                for n in col:
                    self.items[n].x, self.items[n].y = x + w / 2, y - self.items[n].h / 2
                    y -= self.items[n].h + 0.15
                x += w + SLOT_GAP
        edge = {"up": GAP if self.hub else 0.0, "down": -hub_h - GAP}
        for row in ("up", "down"):
            names = band[row]
            title_h = max([0.2 * len(self.title_lines(ns)) + 0.05 for ns in names if ns not in self.folds]
                          + [0.45])
            box_h = half(row) + 0.12 + title_h + 0.1
            if any(ns in self.folds for ns in names):
                box_h = max(box_h, 0.75)
            for ns in names:
                box = self.boxes[ns]
                box[1], box[3] = (edge[row], box_h) if row == "up" else (edge[row] - box_h, box_h)
                for n in (self.shown[ns] if ns not in self.folds else []):
                    self.items[n].y = edge[row]
                    if self.peer.get(n) in self.ends:
                        self.items[self.peer[n]].y = 0.0 if row == "up" else -hub_h
        boxes = [self.boxes[ns] for ns in band["up"] + band["down"]]
        top_y = max([b[1] + b[3] for b in boxes] + [0.0])
        mine = [self.items[n] for ns in band["up"] + band["down"] if ns not in self.folds
                for n in self.shown[ns]]
        if k == 0:
            mine += [self.items[n] for col in self.left for n in col]
        low = min([b[1] for b in boxes] + [i.y - i.h / 2 for i in mine] + [-hub_h])
        return top_y, low, hub_h

    def shift_band(self, band, dy):
        for ns in band["up"] + band["down"]:
            self.boxes[ns][1] += dy
            if ns in self.folds:
                continue
            for n in self.shown[ns]:
                self.items[n].y += dy
                if self.peer.get(n) in self.ends:
                    self.items[self.peer[n]].y += dy
        for bar in band["bars"]:
            bar[4] += dy
        if band is self.bands[0]:
            for col in self.left:
                for n in col:
                    self.items[n].y += dy

    def bar_of(self, bridge, y):
        """The bar of ``bridge`` nearest to height ``y`` (a port's), or None."""
        bars = [(b, x0, x1, lv, by) for band in self.bands for b, x0, x1, lv, by in band["bars"] if b == bridge]
        return min(bars, key=lambda bar: abs(bar[4] - y), default=None)

    def title_lines(self, ns):
        """(text, size, bold) of a namespace's label: its name, its note, then what its firewall does
        (forwarding, published ports, masquerade)."""
        d = self.g.nodes[f"netns:{ns}"]
        published = [(f"published {p}", NOTE_FONT, False) for p in d.get("published") or []]
        # Docker's own list names the container; the DNAT rules' summary would say it twice
        firewall = [line for line in d.get("firewall") or [] if not (published and line.startswith("publishes "))]
        return ([(ns, NS_FONT, True)] + ([(d["note"], NOTE_FONT, False)] if d.get("note") else []) + published
                + [(line, NOTE_FONT, False) for line in firewall])

    def place_column(self, ns, row, x, in_hub):
        """Put ns's interfaces (and the hub ends of their cables) side by side; return the width."""
        if ns in self.folds:
            self.folds[ns]["x"] = x + 0.9
            self.boxes[ns] = [x, 0.0, 1.8, 0.0, row]
            return 1.8
        slots = []
        for n in self.shown[ns]:
            end = self.peer.get(n) if self.peer.get(n) in in_hub else None
            slots.append((n, end, max(self.items[n].w, self.items[end].w if end else 0)))
        inner = sum(w for _, _, w in slots) + SLOT_GAP * max(len(slots) - 1, 0)
        w = max([inner] + [_tw(t, s, b) for t, s, b in self.title_lines(ns)]) + 2 * PAD
        cx = x + (w - inner) / 2
        for n, end, sw in slots:
            for m in (n, end) if end else (n,):
                self.items[m].x, self.items[m].row = cx + sw / 2, row
            cx += sw + SLOT_GAP
        self.boxes[ns] = [x, 0.0, w, 0.0, row]
        return w

    def legend(self):
        types = {i.type for i in self.items.values()}
        labels = [t for t in COLORS if t in types]
        if any(i.down for i in self.items.values()):
            labels.append("DOWN")
        return labels


def _master(g, node):
    d = g.nodes[node]
    return f"if:{d['netns']}/{d['master']}" if d.get("master") else None


def _tint(color, amount=0.82):
    from matplotlib.colors import to_rgb

    return tuple(c + (1 - c) * amount for c in to_rgb(color))


_FIGURE = None


def _figure_class():
    """matplotlib's Figure, plus ``_repr_png_`` so a notebook shows it without pyplot or %matplotlib."""
    global _FIGURE
    if _FIGURE is None:
        from matplotlib.figure import Figure

        class LabFigure(Figure):
            def _repr_png_(self):
                return to_png(self)

        _FIGURE = LabFigure
    return _FIGURE


HIGHLIGHT = "#d62728"  # a traced packet's path


def _render(lay, ax, title, highlight=frozenset()):
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

    xlim = (-0.15, lay.W + 0.15)
    ylim = (lay.ylim[0], lay.ylim[1] + (0.4 if title else 0))
    fs = 1.0  # font scale: 1 in our own figure, where a data unit is an inch
    if ax is None:
        fig = _figure_class()(figsize=(xlim[1] - xlim[0], ylim[1] - ylim[0]), dpi=100)
        ax = fig.add_axes((0, 0, 1, 1))
    else:
        w, h = ax.get_position().size * ax.figure.get_size_inches()
        fs = min(1.5, w / (xlim[1] - xlim[0]), h / (ylim[1] - ylim[0]))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_axis_off()
    items, g = lay.items, lay.g

    def box(x0, y0, w, h, gid, r=0.12, z=1, **style):
        if gid in highlight:
            style = {**style, "ec": HIGHLIGHT, "lw": 3.0, "linestyle": "-"}
        p = FancyBboxPatch((x0, y0), w, h, boxstyle=f"round,pad=0,rounding_size={r}", zorder=z, **style)
        p.set_gid(gid)
        ax.add_patch(p)

    def line(a, b, down=False, color=COLORS["veth"], lw=2.2, rad=0.0):
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-", connectionstyle=f"arc3,rad={rad}",
                                     color=DOWN_COLOR if down else color, lw=lw, zorder=2,
                                     linestyle="--" if down else "-", shrinkA=0, shrinkB=0))

    def title_text(ns, x, y, va, ha="center"):
        for i, (t, size, bold) in enumerate(lay.title_lines(ns)):
            dy = i * 0.2 if va == "top" else (len(lay.title_lines(ns)) - 1 - i) * 0.2
            ax.text(x, y - dy if va == "top" else y + dy, t, fontsize=size * fs, ha=ha, va=va, zorder=4,
                    weight="bold" if bold else "normal", style="normal" if bold else "italic",
                    color="#222" if bold else "#666")

    for k, band in enumerate(lay.bands if lay.hub else []):
        top = band["offset"]
        box(0, top - band["hub_h"], lay.W, band["hub_h"], f"netns:{lay.hub}" + (f"#{k + 1}" if k else ""),
            r=0.2, fc="#fbf5ec", ec="#555", lw=1.4)
        if k == 0:
            title_text(lay.hub, PAD, top - 0.12, "top", ha="left")
        else:
            for j, (t, size, bold) in enumerate(band["title"]):
                ax.text(PAD, top - 0.12 - 0.2 * j, t, fontsize=size * fs, ha="left", va="top", zorder=4,
                        style="italic", color="#666")
    for ns, (x0, y0, w, h, row) in lay.boxes.items():
        if ns in lay.folds:
            f = lay.folds[ns]
            box(x0, y0, w, h, "fold" + ns[len(FOLD):], fc="white", ec=DOWN_COLOR, lw=1.2, linestyle="--")
            more = f"… and {len(f['names'])} more\ncontainers\n({'same shape' if f['same'] else 'not drawn'})"
            ax.text(x0 + w / 2, y0 + h / 2, more, ha="center", va="center", fontsize=8 * fs, color="#555")
            edge = y0 if row == "up" else y0 + h
            for b in f["bridges"]:
                bar = lay.bar_of(b, edge)
                if bar:
                    line((f["x"], edge), (f["x"], bar[4]), down=True, lw=1.4)
            continue
        box(x0, y0, w, h, f"netns:{ns}", fc="#f4f6f9", ec="#555", lw=1.2)
        if row == "up":
            title_text(ns, x0 + w / 2, y0 + h - 0.1, "top")
        else:
            title_text(ns, x0 + w / 2, y0 + 0.1, "bottom")

    seen_bars = Counter()
    for band in lay.bands:
        for n, x0, x1, _, y in band["bars"]:  # a bridge: a wide bar with its name and address on it
            it = items[n]
            color = DOWN_COLOR if it.down else COLORS[it.type]
            seen_bars[n] += 1
            gid = n if seen_bars[n] == 1 else f"{n}#{seen_bars[n]}"
            box(x0, y - BAR_H / 2, x1 - x0, BAR_H, gid, r=0.08, z=3, fc="#e8e8e8" if it.down else color,
                ec=color, lw=1.4, linestyle="--" if it.down else "-")
            x, ink = x0 + 0.12, "#444" if it.down else "white"
            for text, size, bold in [(it.ifname, IF_FONT, True)] + [(s, SUB_FONT, False) for s in it.sub]:
                ax.text(x, y, text, fontsize=size * fs, weight="bold" if bold else "normal",
                        color=ink, ha="left", va="center", zorder=4)
                x += _tw(text, size, bold) + 0.1
    bridges = set(lay.bridges)
    for n, it in items.items():
        color = DOWN_COLOR if it.down else COLORS[it.type]
        style = dict(ec=color, lw=1.4, linestyle="--" if it.down else "-")
        if n in bridges:
            continue
        box(it.x - it.w / 2, it.y - it.h / 2, it.w, it.h, n, r=0.06, z=3,
            fc="#f2f2f2" if it.down else _tint(color), **style)
        top = it.y + it.h / 2 - 0.06
        ax.text(it.x, top, it.ifname, fontsize=IF_FONT * fs, weight="bold", ha="center", va="top",
                color="#777" if it.down else "#111", zorder=4)
        for j, s in enumerate(it.sub):
            ax.text(it.x, top - 0.17 - 0.14 * j, s, fontsize=SUB_FONT * fs, ha="center", va="top",
                    color="#777" if it.down or s in ("DOWN", "no carrier") else "#333", zorder=4)

    drawn = set()
    for u, v, kind in g.edges(data="kind"):
        if u not in items or v not in items or (u, v, kind) in drawn:
            continue
        drawn.add((u, v, kind))
        a, b = sorted((items[u], items[v]), key=lambda i: i.x)
        down = a.down or b.down
        lit = {"color": HIGHLIGHT, "lw": 3.4} if u in highlight and v in highlight else {}
        if kind == "veth":
            same_row = a.row == b.row != "hub" and a.y == b.y
            line((a.x, a.y), (b.x, b.y), down, rad=(0.35 if a.row == "up" else -0.35) if same_row else 0,
                 **lit)
        elif kind == "port":
            port, br = (u, v) if v in bridges else (v, u)
            bar = lay.bar_of(br, items[port].y) if br in bridges else None
            if bar:
                _, x0, x1, _, y = bar
                p = items[port]
                line((p.x, p.y), (min(max(p.x, x0), x1), y), down, **{"color": COLORS["bridge"], "lw": 1.6, **lit})
            elif br in bridges:
                pass  # a bridge of the hub whose ports are all folded away
            else:  # a bridge inside a container: ports linked by an arc over the box
                line((a.x, a.y), (b.x, b.y), down, rad=-0.4 if a.row == "up" else 0.4,
                     **{"color": COLORS["bridge"], "lw": 1.6, **lit})

    handles = [Patch(fc=_tint(COLORS[t]), ec=COLORS[t], label=t) if t != "DOWN" else
               Patch(fc="#f2f2f2", ec=DOWN_COLOR, linestyle="--", label="DOWN") for t in lay.legend()]
    if any(k == "veth" for _, _, k in drawn):
        handles.append(Line2D([], [], color=COLORS["veth"], lw=2.2, label="veth cable"))
    if handles:
        ax.legend(handles=handles, loc="lower left", ncol=len(handles), fontsize=7 * fs, frameon=False,
                  handlelength=1.4, columnspacing=1.0, borderaxespad=0.1)
    if title:
        ax.text(sum(xlim) / 2, ylim[1] - 0.12, title, fontsize=11 * fs, weight="bold", ha="center", va="top")
    return ax.figure


#: netfilter's IPv4 hooks: (name, x, y) in inches, and the chains Docker (and notebook 03) hooks there
_HOOKS = {"prerouting": (1.0, 1.6), "input": (4.0, 2.9), "forward": (4.0, 1.6), "output": (7.0, 2.9),
          "postrouting": (7.0, 1.6)}
_HOOK_CHAINS = {"prerouting": ["nat PREROUTING (dstnat, -100)"],
                "input": ["filter INPUT (filter, 0)"],
                "forward": ["filter FORWARD (filter, 0)"],
                "output": ["nat OUTPUT (-100)", "filter OUTPUT (0)"],
                "postrouting": ["nat POSTROUTING (srcnat, 100)"]}
_HOOK_PATHS = {"forward": ["in", "prerouting", "route1", "forward", "postrouting", "out"],
               "input": ["in", "prerouting", "route1", "input", "local"],
               "output": ["local", "output", "route2", "postrouting", "out"]}


def hooks(path: str | None = None, title: str | None = None):
    """Netfilter's five IPv4 hooks, the routing decisions between them, and a packet's path.

    ``path`` highlights what one packet meets: ``"forward"`` (a packet the host
    passes on, e.g. a container's to the internet), ``"input"`` (one for the
    host itself) or ``"output"`` (one the host sends). Each hook lists the
    chains notebook 03 hooks there, with their type and priority (lower runs first).

    >>> fig = hooks("forward")
    >>> sorted(t.get_text() for t in fig.axes[0].texts if t.get_text().isupper())[:3]
    ['FORWARD', 'INPUT', 'OUTPUT']

    Introduced in notebooks/03_configuration.ipynb (the nftables primer).
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    if path is not None and path not in _HOOK_PATHS:
        from netteach.errors import InvalidName

        raise InvalidName(f"path {path!r}: use 'forward', 'input', 'output' or None")
    on = set(_HOOK_PATHS.get(path, []))
    fig = _figure_class()(figsize=(9.6, 4.0), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-0.9, 8.7)
    ax.set_ylim(0.0, 4.0)
    ax.set_axis_off()
    hot, cold = "#c0392b", "#9a9a9a"
    places = {"in": (-0.3, 1.6), "out": (8.3, 1.6), "local": (5.5, 3.45), "route1": (2.5, 1.6),
              "route2": (5.6, 2.25)}
    places.update(_HOOKS)

    def edge(a, b):  # where the line from a's centre towards b leaves a's box
        (x, y), (x2, y2) = places[a], places[b]
        hw, hh = (0.8, 0.36) if a in _HOOKS else (0.45, 0.26)
        dx, dy = x2 - x, y2 - y
        t = min(hw / abs(dx) if dx else 1e9, hh / abs(dy) if dy else 1e9)
        return x + t * dx, y + t * dy

    def arrow(a, b):
        lit = a in on and b in on and (path is not None)
        ax.add_patch(FancyArrowPatch(edge(a, b), edge(b, a), arrowstyle="-|>", mutation_scale=12,
                                     shrinkA=0, shrinkB=0, color=hot if lit else cold,
                                     lw=2.4 if lit else 1.2, zorder=4))

    for a, b in (("in", "prerouting"), ("prerouting", "route1"), ("route1", "input"), ("route1", "forward"),
                 ("input", "local"), ("local", "output"), ("output", "route2"), ("route2", "postrouting"),
                 ("forward", "postrouting"), ("postrouting", "out")):
        arrow(a, b)
    for name, (x, y) in _HOOKS.items():
        lit = name in on
        p = FancyBboxPatch((x - 0.75, y - 0.32), 1.5, 0.64, boxstyle="round,pad=0,rounding_size=0.08",
                           fc=_tint(COLORS["bridge"], 0.6 if lit else 0.85), ec=hot if lit else "#777",
                           lw=2 if lit else 1, zorder=2)
        p.set_gid(f"hook:{name}")
        ax.add_patch(p)
        ax.text(x, y + 0.12, name.upper(), ha="center", va="center", fontsize=9, weight="bold", zorder=3)
        for j, chain in enumerate(_HOOK_CHAINS[name]):
            ax.text(x, y - 0.1 - 0.15 * j, chain, ha="center", va="center", fontsize=6, color="#333", zorder=3)
    for name, text in (("route1", "routing\ndecision"), ("route2", "routing\ndecision")):
        x, y = places[name]
        ax.text(x, y, text, ha="center", va="center", fontsize=7, style="italic", zorder=3,
                bbox=dict(boxstyle="round", fc="white", ec=hot if name in on else "#999"))
    for name, text in (("in", "packet in\n(eth0, docker0)"), ("out", "packet out"),
                       ("local", "local process\n(a server, ping, docker-proxy)")):
        x, y = places[name]
        ax.text(x, y, text, ha="center", va="center", fontsize=7, zorder=3, color=hot if name in on else "#333")
    caption = {None: "every IPv4 packet meets these hooks; chains hook in by type and priority",
               "forward": "a packet the host passes on: PREROUTING, FORWARD, POSTROUTING",
               "input": "a packet for the host itself: PREROUTING, INPUT",
               "output": "a packet the host sends: OUTPUT, POSTROUTING"}[path]
    ax.text(4.0, 0.3, caption, ha="center", va="center", fontsize=8, color="#555", style="italic")
    if title:
        ax.text(4.0, 3.85, title, ha="center", va="top", fontsize=11, weight="bold")
    return fig

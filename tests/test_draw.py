"""draw() makes a readable Figure from a snapshot or its graph, without pyplot and without a kernel."""

import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from netteach.draw import draw, to_png
from netteach.graph import to_graph
from netteach.snapshot import Interface, Namespace, Snapshot
from tests.fixtures import article_two_ns, bridge_lab, empty_bridge_host, fresh_ns, mixed_lab, two_networks


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def patch(fig, gid):
    found = [p for p in fig.axes[0].patches if p.get_gid() == gid]
    assert len(found) == 1, f"{len(found)} patches with gid {gid!r}"
    return found[0]


def centre_x(p):
    return p.get_x() + p.get_width() / 2


def expected_labels(snap):
    return {ns.name for ns in snap.namespaces} | {i.ifname for i in snap.interfaces if i.ifname != "lo"}


@pytest.mark.parametrize("snap", [article_two_ns(), bridge_lab(3), bridge_lab(24), mixed_lab(),
                                  two_networks(5), empty_bridge_host()],
                         ids=["article", "bridge3", "bridge24", "mixed", "two_networks", "empty_bridge"])
def test_every_namespace_and_interface_is_labelled(snap):
    fig = draw(snap)
    assert isinstance(fig, Figure)
    missing = expected_labels(snap) - set(texts(fig))
    assert not missing
    for i in snap.interfaces:
        if i.ifname != "lo":
            assert patch(fig, f"if:{i.netns}/{i.ifname}")
    assert all(a in texts(fig) for i in snap.interfaces if i.ifname != "lo" for a in i.addresses[:2])


def test_graph_and_snapshot_draw_the_same():
    snap = bridge_lab(2)
    assert sorted(texts(draw(snap))) == sorted(texts(draw(to_graph(snap))))


def test_title():
    assert "my lab" in texts(draw(article_two_ns(), title="my lab"))
    assert "my lab" not in texts(draw(article_two_ns()))


def test_loopback_shown_only_in_small_labs_or_when_asked():
    assert texts(draw(article_two_ns())).count("lo") == 2  # 2 namespaces: small lab
    assert "lo" not in texts(draw(article_two_ns(), show_lo=False))
    assert "lo" not in texts(draw(bridge_lab(5)))
    assert texts(draw(bridge_lab(5), show_lo=True)).count("lo") == 6
    # a namespace with nothing but lo still shows it
    assert texts(draw(mixed_lab())).count("lo") == 1


def test_down_interfaces_look_different():
    fig = draw(fresh_ns())
    down = patch(fig, "if:fresh/lo")
    up = patch(draw(article_two_ns()), "if:host/lo")
    assert down.get_linestyle() == "--" and up.get_linestyle() == "-"
    assert tuple(down.get_edgecolor()) != tuple(up.get_edgecolor())
    assert "DOWN" in texts(fig)
    fig = draw(mixed_lab())
    assert patch(fig, "if:host/vdown").get_linestyle() == "--"
    assert patch(fig, "if:c3/eth0").get_linestyle() == "-"


def test_veth_host_ends_sit_under_their_container():
    fig = draw(bridge_lab(12))  # two rows: c1..c6 above the host, c7..c12 below
    for k in (1, 6, 7, 12):
        assert centre_x(patch(fig, f"if:host/veth{k}")) == pytest.approx(centre_x(patch(fig, f"if:c{k}/eth0")))
    host = patch(fig, "netns:host")
    assert patch(fig, "netns:c1").get_y() > host.get_y() + host.get_height()
    assert patch(fig, "netns:c12").get_y() + patch(fig, "netns:c12").get_height() < host.get_y()
    bridge = patch(fig, "if:host/br0")
    assert bridge.get_width() > 5 * patch(fig, "if:host/veth1").get_width()  # a wide bar, not a box


def test_hub_is_the_namespace_with_most_cables():
    def veth(ns, name, peer):
        return Interface(ns, name, kind="veth", state="UP", peer=peer)

    snap = Snapshot(namespaces=[
        Namespace("red", interfaces=[veth("red", "r0", ("blue", "b0"))]),
        Namespace("blue", interfaces=[veth("blue", "b0", ("red", "r0")), veth("blue", "b1", ("green", "g0"))]),
        Namespace("green", interfaces=[veth("green", "g0", ("blue", "b1"))]),
        Namespace("alone"),
    ])
    fig = draw(snap)
    hub = patch(fig, "netns:blue")
    for other in ("red", "green", "alone"):
        assert patch(fig, f"netns:{other}").get_y() > hub.get_y() + hub.get_height()
    assert "alone" in texts(fig)


def test_many_containers_are_folded():
    snap = bridge_lab(100)
    fig = draw(snap)
    labels = texts(fig)
    assert any("89 more" in t and "same shape" in t for t in labels)
    assert "c1" in labels and "c11" in labels and "c12" not in labels and "c100" not in labels
    assert not any(p.get_gid() == "if:host/veth100" for p in fig.axes[0].patches)
    assert not any("more" in t for t in texts(draw(bridge_lab(24))))  # 24 still fit


def inside(inner, outer, slack=1e-6):
    return (outer.get_x() - slack <= inner.get_x() and
            inner.get_x() + inner.get_width() <= outer.get_x() + outer.get_width() + slack)


def test_folding_is_per_network_and_every_bridge_stays_visible():
    """100 containers on docker0 plus a second network: the second bridge and its containers
    are drawn (they used to be pushed off the canvas and folded away)."""
    fig = draw(two_networks(100, 3))
    labels = texts(fig)
    assert any("89 more" in t for t in labels)
    assert {"b1", "b2", "b3", "br1", "br0", "172.18.0.2/16"} <= set(labels)
    canvas = fig.axes[0]
    x0, x1 = canvas.get_xlim()
    for gid in ("if:host/br0", "if:host/br1", "netns:b3", "if:host/vb3", "if:b3/eth0"):
        p = patch(fig, gid)
        assert x0 <= p.get_x() and p.get_x() + p.get_width() <= x1, gid
    # each bridge bar sits inside a box of the host (the first band, or a "continued" one)
    hubs = [p for p in canvas.patches if (p.get_gid() or "").startswith("netns:host")]
    for gid in ("if:host/br0", "if:host/br1"):
        assert any(inside(patch(fig, gid), h) for h in hubs), gid


def test_big_labs_wrap_into_rows_legible_at_notebook_width():
    """A notebook shows a figure about 10 inches (1000 px) wide: big labs wrap into bands
    instead of growing sideways, so their 8 pt labels are not shrunk to nothing."""
    for snap in (bridge_lab(24), bridge_lab(100), two_networks(100, 3), two_networks(20, 20)):
        w, h = draw(snap).get_size_inches()
        assert w <= 12.5, (snap, w)
    fig = draw(bridge_lab(24))
    assert "host (continued)" in texts(fig)
    assert patch(fig, "netns:c24").get_y() < patch(fig, "netns:host").get_y()  # in the second band


def test_bridge_labels_stay_inside_the_host_and_the_canvas():
    """docker0's "no carrier" label was clipped, and cni0 stuck out of the host's box."""
    for snap in (empty_bridge_host(), two_networks(1, 1), mixed_lab()):
        fig = draw(snap)
        host = patch(fig, "netns:host")
        x0, x1 = fig.axes[0].get_xlim()
        for b in (i for i in snap.namespace("host").interfaces if i.kind == "bridge"):
            bar = patch(fig, f"if:host/{b.ifname}")
            assert inside(bar, host), b.ifname
        for t in fig.axes[0].texts:  # every label starts and (roughly) ends on the canvas
            tx = t.get_position()[0]
            assert x0 <= tx <= x1
        assert "no carrier" in texts(draw(empty_bridge_host()))


def test_width_grows_with_namespaces():
    small, big = draw(bridge_lab(1)), draw(bridge_lab(30))
    assert big.get_size_inches()[0] > 2 * small.get_size_inches()[0]


def test_draw_into_given_axes():
    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    assert draw(article_two_ns(), ax=ax1) is fig
    assert draw(fresh_ns(), ax=ax2) is fig
    assert "my-container" in [t.get_text() for t in ax1.texts]
    assert "fresh" in [t.get_text() for t in ax2.texts]


def test_empty_snapshot_and_png():
    png = to_png(draw(Snapshot()))
    assert png.startswith(b"\x89PNG")
    assert to_png(draw(bridge_lab(2))).startswith(b"\x89PNG")


def test_wrong_input():
    with pytest.raises(TypeError, match="Snapshot"):
        draw("host")


def test_no_matplotlib_at_import_and_no_pyplot_ever():
    code = ("import sys, netteach.draw, netteach.graph\n"
            "assert 'matplotlib' not in sys.modules, 'imported at import time'\n"
            "from netteach.snapshot import Snapshot, Namespace\n"
            "netteach.draw.draw(Snapshot(namespaces=[Namespace('a')]))\n"
            "assert 'matplotlib' in sys.modules and 'matplotlib.pyplot' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_hooks_picture_highlights_the_path_of_one_packet():
    """The nftables primer's picture (notebook 03): five hooks, and the path of a forwarded, an
    incoming or an outgoing packet highlighted."""
    from netteach import InvalidName
    from netteach.draw import hooks

    for path, lit in (("forward", {"prerouting", "forward", "postrouting"}), ("input", {"prerouting", "input"}),
                      ("output", {"output", "postrouting"}), (None, set())):
        fig = hooks(path)
        assert {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"} <= set(texts(fig))
        widths = {p.get_gid()[5:]: p.get_linewidth() for p in fig.axes[0].patches
                  if (p.get_gid() or "").startswith("hook:")}
        assert {h for h, w in widths.items() if w > 1.5} == lit, path
        assert to_png(fig).startswith(b"\x89PNG")
    assert "nat POSTROUTING (srcnat, 100)" in texts(hooks())
    with pytest.raises(InvalidName, match="forward"):
        hooks("sideways")

"""The stepper widget's logic: build it, press "next step" programmatically, read the kernel."""

from __future__ import annotations

import pytest

import netteach as nt
from netteach.widgets import Stepper, stepper
from tests.conftest import needs_root


def test_steps_advance_and_stop():
    ran = []
    s = Stepper(None, [("a", lambda: ran.append("a")), ("b", lambda: ran.append("b"))], draw=False)
    assert s.status() == "→ 1/2 a\n  2/2 b"
    assert s.step() and s.step()
    assert s.done and ran == ["a", "b"]
    assert s.step() is False and ran == ["a", "b"]  # nothing left: nothing runs
    assert s.status() == "✓ 1/2 a\n✓ 2/2 b"


def test_a_failing_step_is_not_counted_and_is_retried():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise nt.NoSuchNamespace("no namespace 'c1' in lab 'x'")

    s = Stepper(None, [("flaky", flaky), ("last", lambda: None)], draw=False)
    assert s.step() is False and s.position == 0
    assert s.status().endswith("✗ step 1 (flaky) failed: no namespace 'c1' in lab 'x'")
    assert s.run_all().done and len(calls) == 2 and s.error is None


def test_other_errors_propagate():
    s = Stepper(None, [("bug", lambda: 1 / 0)], draw=False)
    with pytest.raises(ZeroDivisionError):
        s.step()


def test_needs_steps():
    with pytest.raises(ValueError):
        Stepper(None, [])


@needs_root
@pytest.mark.kernel
def test_widget_buttons_build_the_lab(lab):
    steps = [("namespace", lambda: lab.add_netns("c1")),
             ("cable", lambda: lab.add_veth("vc1", "eth0", peer_netns="c1")),
             ("up", lambda: (lab.set_up("host", "vc1"), lab.set_up("c1", "eth0")))]
    s = stepper(lab, steps)
    box = s.widget()
    ui = s._ui
    assert box is ui["box"] and ui["image"].value[:4] == b"\x89PNG"
    before = ui["image"].value
    ui["next"].click()  # what a student's click does
    assert s.position == 1 and "c1" in lab.namespaces
    assert ui["image"].value != before  # redrawn from the kernel
    assert "✓ 1/3 namespace" in ui["text"].value
    ui["rest"].click()
    assert s.done and ui["next"].disabled and ui["rest"].disabled
    assert lab.snapshot().interface("c1", "eth0").peer == ("host", "vc1")
    assert "image/png" not in s._repr_mimebundle_()  # shown as a widget, with a text fallback

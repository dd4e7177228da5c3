"""The classroom of classroom/: a real JupyterHub with configurable-http-proxy, in a
private network + mount namespace, three student Linux users (made for the test,
removed afterwards) whose servers start at once through the Hub's REST API; in
each student's kernel: who it runs as, what it can see of the others; then
notebook 00 run by all three at once; nothing of theirs left when their servers stop."""

from __future__ import annotations

import pytest

from tests.conftest import needs_root
from tests.student_env import run_classroom


@needs_root
@pytest.mark.notebook
def test_three_students_run_notebook_00_at_once_and_cannot_see_each_other():
    report = run_classroom({"notebook": "00_start_here.ipynb", "run_notebook": True})
    students = report["students"]
    assert sorted(report["start_seconds"]) == sorted(students), "every student's server started"
    for name in students:
        seen = report["per_student"][name]
        probe = seen["probe"]
        # each kernel runs as its student, unprivileged, and can read no other student's home
        assert probe["user"] == name and probe["uid"] == probe["euid"] != 0
        assert all(probe["home_denied"].values()), probe
        # no other student's process (server, kernel, lab helper) lets it open its network namespace
        assert probe["netns_open"] == [] and probe["netns_denied"] > 0, probe
        # nor list the state of another's labs (in their helpers' private /run/netteach)
        assert probe["state_open"] == [], probe
    assert report["left_processes"] == {n: [] for n in students}, "a student's process outlived their server"
    assert report["left_on_machine"] == {n: "" for n in students}
    print(f"servers ready after {report['start_seconds']} s")
    if not all(report["per_student"][n]["rootless"] for n in students):
        pytest.skip("rootless mode (nt.Lab(mode=...), issue 10) is not in this netteach yet: "
                    "the hub part ran; notebook 00 was not run as the students")
    for name in students:
        # all three made a lab called "probe" at once; each sees its own only
        assert report["per_student"][name]["probe"]["labs"] == ["probe"]
        assert report["per_student"][name]["probe"]["state_denied"] > 0
        cells = report["per_student"][name]["cells"]
        errors = [c["error"] for c in cells if c["status"] != "ok"]
        assert errors == [], f"{name}: {errors}"
        assert any("image/png" in o.get("mime", []) for c in cells for o in c["outputs"]), "a picture was drawn"
        assert any("rootless" in o["text"] for c in cells for o in c["outputs"]), "the labs were rootless"
    print("notebook 00, three students at once:",
          {n: round(report["per_student"][n]["notebook_seconds"], 1) for n in students}, "s")

"""The progress helper: silent outside a notebook; in one, a bar that fills and ends as a summary line."""

from __future__ import annotations

import threading

from netteach.progress import Progress, in_notebook, progress


def test_silent_in_scripts(capsys):
    assert not in_notebook()
    assert list(progress(range(5), what="steps", delay=0)) == [0, 1, 2, 3, 4]
    assert capsys.readouterr().out == ""


def test_a_bar_fills_then_becomes_one_line():
    bar = Progress(total=4, what="containers", delay=0, show=True)
    bar.advance()
    assert bar.shown and bar._bar.max == 4 and bar._bar.value == 1 and bar._bar.description == "containers"
    widget = bar._bar
    threads = [threading.Thread(target=bar.advance) for _ in range(3)]  # work finishing on other threads
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bar.done == 4 and widget.value == 4 and bar._label.value.startswith("4/4")
    assert bar.summary().startswith("containers: 4/4 in ")
    bar.close()
    assert not bar.shown and widget.comm is None  # the widget is closed, replaced by the summary


def test_short_work_shows_nothing():
    with Progress(total=2, what="quick", delay=60, show=True) as bar:
        bar.advance(2)
    assert not bar.shown and bar.done == 2

"""Security and start-up (issue 9 items 12-15, 18): commands safe to paste, names that
cannot inject lines or options, files only root can change, servers that never look
a name up and say why when they cannot start."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

import netteach as nt
from netteach import state
from tests.conftest import needs_root, netteach_leftovers

pytestmark = [needs_root, pytest.mark.kernel]


def test_commands_are_quoted_so_pasting_them_runs_nothing_else(lab, tmp_path):
    evil = "$(touch${IFS}p)"  # 15 bytes, a valid interface name
    assert len(evil.encode()) == 15
    lab.add_netns("c1")
    lab.add_bridge(evil)
    lab.write_etc("c1", "hosts", "127.0.0.1 localhost\nEOF\n$(touch q)\n")
    script = str(lab.commands)
    # replay the script in a scratch directory, in a private network namespace (nothing it makes is kept)
    r = subprocess.run(["unshare", "--net", "--mount", "--", "sh", "-c",
                        "mount -t tmpfs x /run && mount -t tmpfs y /etc/netns 2>/dev/null; "
                        "mkdir -p /run/netns; sh -s"], input=script, text=True, capture_output=True,
                       cwd=tmp_path)
    assert not os.path.exists(tmp_path / "p") and not os.path.exists(tmp_path / "q"), \
        f"pasting lab.commands ran an injected command:\n{script}\n{r.stderr}"
    assert r.returncode == 0, r.stderr
    assert "'$(touch${IFS}p)'" in script


def test_add_host_names_cannot_add_lines(lab_name, untouched_root):
    with nt.DockerHost(lab_name) as dh:
        with pytest.raises(nt.InvalidName):
            dh.run("c1", add_host={"evil\n10.66.0.1 web": "10.0.0.1"})
        assert "c1" not in dh.containers()
        dh.run("c2", add_host={"db.local": "10.10.0.5"})
        hosts = dh.exec("c2", "cat /etc/hosts").stdout
        assert "10.10.0.5\tdb.local" in hosts and "10.66.0.1" not in hosts
    assert netteach_leftovers(lab_name) == []


def test_ping_target_is_never_an_option(lab):
    lab.add_netns("c1")
    for bad in ("-f", "-c1000", "--help"):
        with pytest.raises(nt.InvalidAddress, match="give an address"):
            lab.ping("c1", bad)


def test_state_file_paths_outside_the_lab_are_never_removed(lab_name, untouched_root, tmp_path):
    victim = "/etc/netteach-victim-" + lab_name
    with open(victim, "w") as f:
        f.write("keep me\n")
    try:
        lab = nt.Lab(lab_name)
        lab.add_netns("c1")
        with pytest.raises(nt.InvalidName):
            lab.own_path(f"/etc/netns/../netteach-victim-{lab_name}")
        # a state file edited by hand (or by a bug) cannot make destroy() remove other files
        lab._st.files += [f"/etc/netns/../netteach-victim-{lab_name}", victim, "/etc/netns/../../etc",
                          f"/run/netteach/{lab_name}.json/../../../{victim}"]
        lab._save()
        lab.destroy()
        assert open(victim).read() == "keep me\n"
    finally:
        os.unlink(victim)
    assert netteach_leftovers(lab_name) == []


def test_etc_netns_files_have_safe_modes_under_any_umask(lab_name, untouched_root):
    old = os.umask(0)
    try:
        with nt.Lab(lab_name) as lab:
            lab.add_netns("c1")
            lab.write_etc("c1", "hosts", "127.0.0.1 localhost\n")
            d = f"/etc/netns/{lab.kernel_name('c1')}"
            assert stat.S_IMODE(os.stat(d).st_mode) == 0o755
            assert stat.S_IMODE(os.stat(f"{d}/hosts").st_mode) == 0o644
            assert stat.S_IMODE(os.stat(state.STATE_DIR).st_mode) & 0o022 == 0
            assert stat.S_IMODE(os.stat(state.path(lab_name)).st_mode) == 0o644
    finally:
        os.umask(old)
    assert netteach_leftovers(lab_name) == []


def test_server_starts_where_name_lookups_are_dropped(lab):
    """The machine's host name is in no /etc/hosts the namespace sees, and DNS is routed into a
    black hole (the packets are dropped, the resolver waits): the server must still start."""
    lab.add_netns("c1")
    lab.add_veth("v1", "eth0", peer_netns="c1")
    lab.add_addr("c1", "eth0", "10.0.0.2/24")
    lab.add_addr("host", "v1", "10.0.0.1/24")
    lab.set_up("c1", "eth0")
    lab.set_up("host", "v1")
    lab.add_route("c1", "default", via="10.0.0.1")  # the host does not forward: DNS is dropped
    lab.write_etc("c1", "hosts", "127.0.0.1 localhost\n")
    lab.write_etc("c1", "resolv.conf", "nameserver 10.55.0.1\noptions timeout:5 attempts:3\n")
    assert lab.exec("c1", "getent hosts $(hostname)", timeout=3).returncode != 0  # the lookup hangs
    pid = lab.serve("c1", 80)
    assert lab.http_get("host", "10.0.0.2", 80).status == 200
    lab.kill(pid)


def test_a_server_that_cannot_start_says_why(lab):
    lab.add_netns("c1")
    lab.serve("c1", 80)
    with pytest.raises(nt.Conflict, match="Address already in use"):
        lab.serve("c1", 80)

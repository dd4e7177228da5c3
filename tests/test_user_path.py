"""A student's PATH: Debian gives its users one without /usr/sbin, where nft, tc and conntrack live
(found in the browser run of ``./bootstrap.sh lab``: notebook 03 said nft was not installed). netteach's
kernel layer finds them anyway, in the notebook's process and in the rootless helper.
"""

from __future__ import annotations

import json

from tests import unprivileged

pytestmark = unprivileged.needs_nobody_python()


def test_sbin_tools_work_with_a_debian_user_path():
    r = unprivileged.run("""
import json, os, netteach as nt
assert "/usr/sbin" not in os.environ["PATH"].split(":"), os.environ["PATH"]
caps = nt.doctor(show=False)
lab = nt.Lab("upath")
lab.add_netns("c1")
lab.add_veth("veth0", "eth0", peer_netns="c1")
lab.set_up("host", "veth0")
lab.exec("host", ["nft", "-f", "-"], input="add table ip t\\nadd chain ip t c { type filter hook forward priority 0; }\\n")
out = {"nft": caps.tools.get("nft"), "tc": caps.tools.get("tc"), "mode": caps.mode,
       "ruleset": str(lab.nft("host")), "tc_show": lab.exec("host", "tc qdisc show dev veth0").stdout}
lab.destroy()
print(json.dumps(out))
""")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["mode"] == "rootless"
    assert out["nft"] and out["tc"], out  # doctor finds both, so it does not say "apt-get install nftables"
    assert "table ip t" in out["ruleset"] and "hook forward" in out["ruleset"]  # the kernel holds the rule set
    assert "qdisc" in out["tc_show"]

"""A real classroom hub, driven like a teacher's script would drive it: the
JupyterHub of classroom/jupyterhub_config.py with configurable-http-proxy, the
students' servers started through the Hub's REST API, and code run in their
kernels through the servers' kernels API (websocket), as the students.

Used by tests/test_classroom.py and benchmarks/classroom.py. Needs root (the hub
starts each server as its student) and must run inside a private network and
mount namespace, so that the hub's ports and the labs' state stay private:

    python -m tests.classroom_hub PREFIX SCENARIO.json   # prints a JSON report
    (run it through `private_namespace()`: see tests/test_classroom.py)
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "classroom", "jupyterhub_config.py")


def private_namespace(argv: list[str]) -> list[str]:
    """argv, wrapped to run in a new network namespace (loopback only) and a new
    mount namespace with a private /run, as tools/sandbox.sh does."""
    script = ("set -e; mount --make-rprivate /; mount -t tmpfs -o mode=755 cls-run /run; "
              "mkdir -p /run/netns /run/lock; mount -t sysfs cls-sys /sys; ip link set lo up; "
              'exec "$@"')
    return ["unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", *argv]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    """The classroom hub as a subprocess, with an admin token for its REST API."""

    def __init__(self, prefix: str, students: list[str]):
        self.prefix = prefix
        self.students = students
        self.token = secrets.token_hex(16)
        self.state = tempfile.mkdtemp(prefix="nt-hub-")
        self.url = f"http://127.0.0.1:{free_port()}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Hub":
        students = os.path.join(self.state, "students.txt")
        with open(students, "w") as f:
            f.write("\n".join(self.students) + "\n")
        env = dict(os.environ, NETTEACH_PREFIX=self.prefix, NETTEACH_HUB_URL=self.url,
                   NETTEACH_HUB_STATE=self.state, NETTEACH_STUDENTS=students,
                   NETTEACH_HUB_TOKEN=self.token,
                   NETTEACH_HUB_PORTS=f"{free_port()},{free_port()}")
        self.log = open(os.path.join(self.state, "hub.log"), "w")
        self.proc = subprocess.Popen([os.path.join(self.prefix, "bin", "jupyterhub"), "-f", CONFIG],
                                     cwd=self.state, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait(lambda: self.api("GET", "/hub/api/") is not None, "the hub to answer")
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)      # the hub stops its servers and its proxy
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.final_log = self.logtail(15)
        shutil.rmtree(self.state, ignore_errors=True)

    def logtail(self, n: int = 40) -> str:
        if not os.path.exists(self.state):
            return self.final_log
        with open(os.path.join(self.state, "hub.log")) as f:
            return "".join(f.readlines()[-n:])

    def wait(self, ready, what: str, limit: float = 180) -> None:
        """Polls until ready() - not a timing assertion: the limit only stops a hang."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited while waiting for {what}:\n{self.logtail()}")
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gave up waiting for {what}:\n{self.logtail()}")

    def api(self, method: str, path: str, body: dict | None = None):
        import urllib.error
        import urllib.request

        req = urllib.request.Request(self.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                data = r.read()
                return json.loads(data) if data else {}
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise RuntimeError(f"{method} {path}: HTTP {e.code} {e.read()[:300]!r}") from e

    # --- students' servers ---------------------------------------------------------
    def start_servers(self) -> dict[str, float]:
        """Creates the students in the hub and starts all their servers at once;
        returns the seconds each took until its server was ready."""
        t0 = time.monotonic()
        for name in self.students:
            if self.api("GET", f"/hub/api/users/{name}") is None:
                self.api("POST", f"/hub/api/users/{name}")
            self.api("POST", f"/hub/api/users/{name}/server")
        ready: dict[str, float] = {}

        def all_ready():
            for name in self.students:
                if name not in ready:
                    server = (self.api("GET", f"/hub/api/users/{name}")["servers"] or {}).get("")
                    if server and server.get("ready"):
                        ready[name] = time.monotonic() - t0
            return len(ready) == len(self.students)

        self.wait(all_ready, "the students' servers")
        return ready

    def stop_servers(self) -> None:
        for name in self.students:
            self.api("DELETE", f"/hub/api/users/{name}/server")
        self.wait(lambda: all(not self.api("GET", f"/hub/api/users/{n}")["servers"] for n in self.students),
                  "the students' servers to stop")

    # --- kernels, through each student's server ------------------------------------
    async def kernel(self, name: str, path: str) -> "Kernel":
        """A new kernel in the student's server, started for the notebook at path
        (relative to ~/netteach), so it runs in the notebook's folder."""
        from tornado.httpclient import AsyncHTTPClient, HTTPRequest
        from tornado.websocket import websocket_connect

        base = f"{self.url}/user/{name}/api"
        headers = {"Authorization": f"token {self.token}"}
        body = json.dumps({"path": path, "type": "notebook", "name": os.path.basename(path),
                           "kernel": {"name": "python3"}})
        from tornado.httpclient import HTTPClientError

        try:
            r = await AsyncHTTPClient().fetch(f"{base}/sessions", method="POST", headers=headers, body=body,
                                              request_timeout=180)
        except HTTPClientError as e:
            answer = e.response.body[:500] if e.response is not None and e.response.body else b""
            raise RuntimeError(f"{name}: POST {base}/sessions: {e} {answer!r}\n{self.logtail()}") from None
        session = json.loads(r.body)
        ws_url = base.replace("http://", "ws://") + f"/kernels/{session['kernel']['id']}/channels"
        ws = await websocket_connect(HTTPRequest(ws_url, headers=headers, request_timeout=180),
                                     max_message_size=256 * 1024 * 1024)
        return Kernel(self, name, session, ws)

    async def notebook(self, name: str, path: str) -> list[dict]:
        """Runs the notebook at path (relative to ~/netteach, read from the student's
        own copy through the contents API) in a new kernel; returns each code cell's result."""
        from tornado.httpclient import AsyncHTTPClient

        r = await AsyncHTTPClient().fetch(f"{self.url}/user/{name}/api/contents/{path}",
                                          headers={"Authorization": f"token {self.token}"})
        cells = [c for c in json.loads(r.body)["content"]["cells"] if c["cell_type"] == "code"]
        kernel = await self.kernel(name, path)
        try:
            results = []
            for cell in cells:
                src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
                results.append(await kernel.run(src))
            return results
        finally:
            await kernel.close()


class Kernel:
    """One kernel of a student's server, over its websocket (Jupyter's legacy JSON frames)."""

    def __init__(self, hub: Hub, student: str, session: dict, ws):
        self.hub, self.student, self.session, self.ws = hub, student, session, ws
        self.session_id = uuid.uuid4().hex

    async def run(self, code: str) -> dict:
        """Executes code; returns {"status", "outputs", "error", "seconds"}."""
        msg_id = uuid.uuid4().hex
        await self.ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": self.student,
                       "session": self.session_id, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        t0 = time.monotonic()
        outputs, status, idle, error = [], None, False, None
        while status is None or not idle:
            raw = await self.ws.read_message()
            if raw is None:
                raise RuntimeError(f"{self.student}'s kernel connection closed:\n{self.hub.logtail()}")
            if isinstance(raw, bytes):   # a message with binary buffers (widgets): offsets, JSON, buffers
                import struct

                n = struct.unpack("!I", raw[:4])[0]
                offsets = struct.unpack(f"!{n}I", raw[4:4 + 4 * n])
                raw = raw[offsets[0]:offsets[1] if n > 1 else None]
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["header"]["msg_type"], msg["content"]
            if kind == "execute_reply":
                status = content["status"]
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            elif kind == "error":
                error = f"{content['ename']}: {content['evalue']}"
                outputs.append({"type": "error", "text": error})
            elif kind == "stream":
                outputs.append({"type": "stream", "text": content["text"]})
            elif kind in ("display_data", "execute_result"):
                outputs.append({"type": kind, "mime": sorted(content["data"]),
                                "text": content["data"].get("text/plain", "")})
        return {"status": status, "outputs": outputs, "error": error, "seconds": time.monotonic() - t0}

    async def value(self, code: str):
        """The JSON printed by code's last line (print(json.dumps(...)))."""
        r = await self.run(code)
        if r["status"] != "ok":
            raise RuntimeError(f"{self.student}: {r['error']}")
        return json.loads("".join(o["text"] for o in r["outputs"] if o["type"] == "stream"))

    async def close(self) -> None:
        from tornado.httpclient import AsyncHTTPClient

        self.ws.close()
        await AsyncHTTPClient().fetch(f"{self.hub.url}/user/{self.student}/api/sessions/{self.session['id']}",
                                      method="DELETE", headers={"Authorization": f"token {self.hub.token}"})


# --- what a student's kernel can see of the others (run in each kernel) ----------------
PROBE = r'''
import json, os, pwd
import netteach as nt
others = {others!r}
me = pwd.getpwuid(os.getuid()).pw_name
def denied(fn):
    try:
        fn()
        return False
    except PermissionError:
        return True
report = {{"user": me, "uid": os.getuid(), "euid": os.geteuid(),
          "home_denied": {{o: denied(lambda o=o: os.listdir(pwd.getpwnam(o).pw_dir)) for o in others}},
          "labs": sorted(l.name for l in nt.labs()),
          "netns_open": [], "netns_denied": 0, "state_open": [], "state_denied": 0}}
uids = {{pwd.getpwnam(o).pw_uid for o in others}}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if os.stat(f"/proc/{{pid}}").st_uid not in uids:
            continue
        fd = os.open(f"/proc/{{pid}}/ns/net", os.O_RDONLY)
        os.close(fd)
        report["netns_open"].append(pid)
    except PermissionError:
        report["netns_denied"] += 1
    except FileNotFoundError:
        pass
    try:   # a rootless lab's state lives in its helper's private /run/netteach
        os.listdir(f"/proc/{{pid}}/root/run/netteach")
        report["state_open"].append(pid)
    except PermissionError:
        report["state_denied"] += 1
    except (FileNotFoundError, NotADirectoryError):
        pass
print(json.dumps(report))
'''

ROOTLESS = ("import inspect, json, netteach as nt\n"
            "print(json.dumps('mode' in inspect.signature(nt.Lab).parameters))")


def student_processes(students: list[str]) -> dict[str, list[str]]:
    """Every process still running as each student (pid and command line)."""
    uids = {pwd.getpwnam(s).pw_uid: s for s in students}
    left: dict[str, list[str]] = {s: [] for s in students}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            uid = os.stat(f"/proc/{pid}").st_uid
            if uid in uids:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")[:120]
                left[uids[uid]].append(f"{pid} {cmd}")
        except FileNotFoundError:
            pass
    return left


class Sampler:
    """Samples, every half second, the memory of each student's processes (PSS, so
    shared libraries count once across students) and the machine's MemAvailable;
    keeps the peaks and each process's CPU seconds (for benchmarks/classroom.py)."""

    def __init__(self, students: list[str]):
        import threading

        self.uids = {pwd.getpwnam(s).pw_uid: s for s in students}
        self.peak_pss = {s: 0 for s in students}
        self.peak_total_pss = 0
        self.min_available = self.available()
        self.cpu: dict[str, float] = {}           # pid+start -> cpu seconds (children reaped included)
        self.cpu_before: dict[str, float] = {}    # the same when sampling began: servers' own start is not counted
        self.cpu_owner: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def available() -> int:
        with open("/proc/meminfo") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("MemAvailable:"))

    def sample(self) -> None:
        pss = {s: 0 for s in self.uids.values()}
        tick = os.sysconf("SC_CLK_TCK")
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                who = self.uids.get(os.stat(f"/proc/{pid}").st_uid)
                if who is None:
                    continue
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    pss[who] += next(int(l.split()[1]) * 1024 for l in f if l.startswith("Pss:"))
                with open(f"/proc/{pid}/stat") as f:
                    st = f.read().rsplit(")", 1)[1].split()
                key = f"{pid}/{st[19]}"
                self.cpu[key] = sum(int(x) for x in st[11:15]) / tick   # utime stime cutime cstime
                self.cpu_owner[key] = who
            except (FileNotFoundError, ProcessLookupError, StopIteration, PermissionError):
                pass
        for s, v in pss.items():
            self.peak_pss[s] = max(self.peak_pss[s], v)
        self.peak_total_pss = max(self.peak_total_pss, sum(pss.values()))
        self.min_available = min(self.min_available, self.available())

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.sample()

    def __enter__(self) -> "Sampler":
        self.sample()
        self.cpu_before = dict(self.cpu)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def cpu_seconds(self) -> dict[str, float]:
        out = {s: 0.0 for s in self.uids.values()}
        for key, sec in self.cpu.items():
            out[self.cpu_owner[key]] += sec - self.cpu_before.get(key, 0.0)
        return out


def main(prefix: str, scenario_path: str) -> dict:
    """Runs a scenario (JSON: students, notebook, labs) and returns what was seen."""
    with open(scenario_path) as f:
        sc = json.load(f)
    students: list[str] = sc["students"]
    report: dict = {"students": students}
    report["available_before_hub"] = Sampler.available()
    with Hub(prefix, students) as hub:
        report["start_seconds"] = hub.start_servers()
        idle = Sampler(students)
        idle.sample()
        report["idle_server_pss"] = idle.peak_pss
        report["available_before_notebook"] = Sampler.available()

        async def everyone():
            kernels = await asyncio.gather(*(hub.kernel(s, sc["notebook"]) for s in students))
            per: dict = {s: {} for s in students}
            try:
                rootless = await asyncio.gather(*(k.value(ROOTLESS) for k in kernels))
                for s, r in zip(students, rootless):
                    per[s]["rootless"] = r
                if all(rootless):
                    # every student makes a lab with the same name, at the same time
                    await asyncio.gather(*(k.value("import json, netteach as nt\nprobe = nt.Lab('probe')\n"
                                                   "probe.add_netns('c1')\nprint(json.dumps(probe.mode))")
                                           for k in kernels))
                probes = await asyncio.gather(*(k.value(PROBE.format(others=[o for o in students if o != s]))
                                                for s, k in zip(students, kernels)))
                for s, pr in zip(students, probes):
                    per[s]["probe"] = pr
                if all(rootless):
                    await asyncio.gather(*(k.value("probe.destroy()\nprint(json.dumps(sorted(l.name for l in nt.labs())))")
                                           for k in kernels))
            finally:
                await asyncio.gather(*(k.close() for k in kernels))
            if sc.get("run_notebook") and all(per[s]["rootless"] for s in students):
                async def run(s):
                    t0 = time.monotonic()
                    per[s]["cells"] = await hub.notebook(s, sc["notebook"])
                    per[s]["notebook_seconds"] = time.monotonic() - t0
                with Sampler(students) as sampler:
                    report["idle_pss"] = dict(sampler.peak_pss)
                    await asyncio.gather(*(run(s) for s in students))
                    sampler.sample()
                report["peak_pss"] = sampler.peak_pss
                report["peak_total_pss"] = sampler.peak_total_pss
                report["notebook_cpu_seconds"] = sampler.cpu_seconds()
                report["available_drop_notebook"] = report["available_before_notebook"] - sampler.min_available
            return per

        report["per_student"] = asyncio.run(everyone())
        hub.stop_servers()
        end = time.monotonic() + 60           # a stopped server's kernels may take a moment to exit
        while any(student_processes(students).values()) and time.monotonic() < end:
            time.sleep(0.5)
        report["left_processes"] = student_processes(students)
    report["hub_log_tail"] = hub.final_log
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))

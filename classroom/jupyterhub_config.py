"""JupyterHub for a class on one VM: each student is a Linux user with a
JupyterLab of their own, netteach is installed system-wide (classroom/install.sh),
and each student gets a copy of the notebooks in ~/netteach at their first start.
Students are unprivileged: their labs run rootless (a helper process in a user
namespace of their own), so no student can see or touch another's labs.

Run as root (the hub starts each student's server as that student):

    sudo /opt/netteach/bin/jupyterhub -f classroom/jupyterhub_config.py

Settings come from the environment (defaults in brackets):
    NETTEACH_PREFIX     where classroom/install.sh installed netteach     [/opt/netteach]
    NETTEACH_HUB_URL    the address students open                         [http://127.0.0.1:8000]
    NETTEACH_HUB_STATE  the hub's database, cookie secret, proxy pid file  [/var/lib/netteach-hub]
    NETTEACH_STUDENTS   a file with one student login per line            [classroom/students.txt]
    NETTEACH_TEACHER    the teacher's login (admin in the hub)            [none]
    NETTEACH_HUB_TOKEN  an API token for scripts (start every server...)  [none]
    NETTEACH_HUB_PORTS  the hub's and the proxy's internal API ports      [8081,8001]

See classroom/README.md (the teacher's guide).
"""

import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
PREFIX = os.environ.get("NETTEACH_PREFIX", "/opt/netteach")
STATE = os.environ.get("NETTEACH_HUB_STATE", "/var/lib/netteach-hub")
STUDENTS = os.environ.get("NETTEACH_STUDENTS", os.path.join(HERE, "students.txt"))
HUB_PORT, PROXY_PORT = os.environ.get("NETTEACH_HUB_PORTS", "8081,8001").split(",")

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file
os.makedirs(STATE, mode=0o700, exist_ok=True)

# --- the hub itself: loopback by default (put an HTTPS reverse proxy in front for a class)
c.JupyterHub.bind_url = os.environ.get("NETTEACH_HUB_URL", "http://127.0.0.1:8000")
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{HUB_PORT}"
c.JupyterHub.db_url = f"sqlite:///{STATE}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{STATE}/jupyterhub_cookie_secret"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{PROXY_PORT}"
c.ConfigurableHTTPProxy.pid_file = f"{STATE}/proxy.pid"
# configurable-http-proxy from classroom/package.json (classroom/install.sh runs npm install)
c.ConfigurableHTTPProxy.command = [os.path.join(HERE, "node_modules", ".bin", "configurable-http-proxy")]

# --- who may log in: Linux users (PAM), the ones listed in the students file
def _logins(path):
    try:
        with open(path) as f:
            return {w for line in f for w in line.split("#")[0].split()}
    except FileNotFoundError:
        return set()


c.Authenticator.allowed_users = _logins(STUDENTS)
teacher = os.environ.get("NETTEACH_TEACHER")
if teacher:
    c.Authenticator.admin_users = {teacher}

token = os.environ.get("NETTEACH_HUB_TOKEN")
if token:
    # a service account for the teacher's scripts and the classroom test: it may create
    # students in the hub, start and stop their servers, and use those servers' API
    c.JupyterHub.services = [{"name": "netteach-teacher", "api_token": token}]
    c.JupyterHub.load_roles = [{
        "name": "netteach-teacher",
        "scopes": ["admin:users", "admin:servers", "access:servers", "list:users"],
        "services": ["netteach-teacher"],
    }]

# --- each student's server: LocalProcessSpawner runs it as the student's own Linux user
c.Spawner.cmd = [os.path.join(PREFIX, "bin", "jupyterhub-singleuser")]
c.Spawner.notebook_dir = "~/netteach"
c.Spawner.default_url = "/lab/tree/00_start_here.ipynb"
c.Spawner.environment = {"PATH": f"{PREFIX}/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}
c.Spawner.start_timeout = 120          # a busy VM starts thirty servers at 9:00 sharp
c.Spawner.http_timeout = 120


def copy_notebooks(spawner):
    """Copies the installed notebooks into the student's ~/netteach, as the student
    (never as root into a directory the student controls), keeping their own edits:
    only files the student does not have yet are copied."""
    import pwd

    user = pwd.getpwnam(spawner.user.name)
    dest = os.path.join(user.pw_dir, "netteach")
    as_student = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[], cwd=user.pw_dir,
                      check=True, env={"PATH": "/usr/bin:/bin", "HOME": user.pw_dir})
    subprocess.run(["mkdir", "-p", "-m", "700", dest], **as_student)
    subprocess.run(["cp", "-R", "--no-clobber", os.path.join(PREFIX, "notebooks") + "/.", dest], **as_student)


c.Spawner.pre_spawn_hook = copy_notebooks

#!/usr/bin/env bash
# netteach's one entry point on a fresh Debian/Ubuntu machine:
#   ./bootstrap.sh lab          install everything, then start JupyterLab on notebooks/ (127.0.0.1)
#                               as YOU: labs are rootless (sudo is asked only to install Debian packages)
#   ./bootstrap.sh lab --root   the same, but JupyterLab runs as root (root-mode labs; see the README's risks)
#   ./bootstrap.sh test         install everything, then run the whole test suite (pytest, as root: CI)
# Extra arguments go to JupyterLab or pytest. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

mode="${1:-}"; shift || true
case "$mode" in lab|test|setup) ;; *) echo "usage: $0 lab [--root]|test|setup [args...]" >&2; exit 2;; esac
root_flag=""
if [ "$mode" = lab ] && [ "${1:-}" = "--root" ]; then root_flag="--root"; shift; fi

# The test suite builds labs as root (kernel tests), and `lab --root` is asked for: the whole
# script runs as root. Otherwise it runs as you, and only the package installation uses sudo.
if [ "$(id -u)" != 0 ] && { [ "$mode" = test ] || [ -n "$root_flag" ]; }; then
  echo "this needs root: re-running with sudo" >&2
  # only what installing needs (proxies, package indexes), never the caller's whole environment
  keep="PYTHON,http_proxy,https_proxy,no_proxy,HTTP_PROXY,HTTPS_PROXY,NO_PROXY"
  keep="$keep,PIP_INDEX_URL,PIP_EXTRA_INDEX_URL,PIP_FIND_LINKS,PIP_CERT,PIP_DEFAULT_TIMEOUT,NETTEACH_DOCKER,NETTEACH_BROWSER_TESTS,NETTEACH_SCREENSHOTS,NETTEACH_DEBIAN_MIRROR"
  exec sudo --preserve-env="$keep" "$0" "$mode" $root_flag "$@"
fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. Debian packages: the tools the labs drive, and Python's venv.
debs="iproute2 nftables conntrack iputils-ping util-linux procps tcpdump ca-certificates"
[ "$mode" = test ] && debs="$debs debootstrap git sudo"  # tests/test_fresh_debian.py; tests/test_launcher.py (sudo)
PY="${PYTHON:-python3}"
missing=""
for p in $debs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
# a Python that can make a venv with pip: Debian splits venv/ensurepip into python3-venv
if ! command -v "$PY" >/dev/null 2>&1; then
  missing="$missing python3 python3-venv"
elif ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  missing="$missing python3-venv"
fi
# the reference CNI plugins (notebook 01 runs one by hand); optional: skipped where not packaged
dpkg -s containernetworking-plugins >/dev/null 2>&1 || missing="$missing containernetworking-plugins"
# Chinese headings in the pictures (and in a browser on this machine)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing="$missing fonts-noto-cjk"
# the browser test (tests/test_browser.py) drives Debian's Chromium through its chromedriver
if [ "$mode" = test ]; then
  for p in chromium chromium-driver; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
fi
if [ -n "$missing" ]; then
  echo "installing Debian packages:$missing"
  [ "$(id -u)" = 0 ] || echo "(sudo is asked only for this: everything else runs as $(id -un))"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      ${missing/containernetworking-plugins/} >/dev/null
fi

# 1b. For the tests (and notebook 08): a real Docker daemon that the tests start privately, in
# namespaces of their own (netteach/kernel/dockerd.py). Debian's docker.io conflicts with Docker's
# own packages (docker-ce, docker-ce-cli, containerd.io): where those are installed their dockerd
# serves and docker.io is left out. The package is installed WITHOUT starting the machine's daemon
# (a temporary policy-rc.d), so the machine's firewall and docker0 stay as they were. A docker CLI
# outside any package (e.g. /usr/local/bin/docker) does not conflict; netteach never runs the CLI.
if [ "$mode" = test ] || [ "${NETTEACH_DOCKER:-}" = 1 ]; then
  dmissing=""
  if ! dpkg -s docker.io >/dev/null 2>&1; then
    if dpkg -s docker-ce >/dev/null 2>&1 || dpkg -s docker-ce-cli >/dev/null 2>&1 || dpkg -s containerd.io >/dev/null 2>&1; then
      echo "Docker's own packages (docker-ce...) are installed: using their dockerd, not installing docker.io"
    else
      dmissing="docker.io"
    fi
  fi
  dpkg -s busybox-static >/dev/null 2>&1 || dmissing="$dmissing busybox-static"
  if [ -n "$dmissing" ]; then
    echo "installing Debian packages for the private test dockerd:$dmissing"
    export DEBIAN_FRONTEND=noninteractive
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $dmissing >/dev/null ||
      echo "could not install$dmissing: the tests that need a real dockerd will skip, saying so" >&2
    if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
  fi
fi

# 2. The Python environment (.venv, owned by whoever runs the labs), re-installed only when
#    pyproject.toml changes.
if [ -e .venv ] && [ ! -w .venv ]; then
  echo "the .venv here belongs to $(stat -c %U .venv) (made by an earlier run as root); remove it with" >&2
  echo "  sudo rm -rf $(pwd)/.venv   and run this again (or use: $0 lab --root)" >&2
  exit 1
fi
# A .venv left half-made (an interrupted first run: no pip in it) is made again.
if [ -e .venv ] && ! .venv/bin/python -c 'import pip' >/dev/null 2>&1; then
  echo "the .venv here is incomplete (no working pip): making it again"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv || { rm -rf .venv; echo "could not make .venv with $PY" >&2; exit 1; }
fi
stamp=".venv/.netteach-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  echo "$want" > "$stamp"
fi

case "$mode" in
  setup) echo "netteach is installed in $(pwd)/.venv";;
  lab)
    if [ "$(id -u)" != 0 ]; then
      # rootless labs need unprivileged user namespaces: say so now, with the fix, if they are refused
      .venv/bin/python -c 'import sys
from netteach.kernel.features import user_namespaces
from netteach.kernel.helper import userns_blocker
if not user_namespaces():
    print("WARNING: labs cannot be built here as " + __import__("getpass").getuser() + ": " + userns_blocker()
          + " (or: ./bootstrap.sh lab --root)", file=sys.stderr)' || true
      echo "starting JupyterLab as $(id -un): labs run rootless, in a user namespace of your own"
    else
      echo "starting JupyterLab as root: root-mode labs (the README says what that risks)"
    fi
    echo "JupyterLab listens on 127.0.0.1 - open the http://127.0.0.1:... URL printed below (it carries the token)"
    exec .venv/bin/netteach lab "$@";;
  test)
    exec .venv/bin/python -m pytest "$@";;
esac

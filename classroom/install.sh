#!/usr/bin/env bash
# Installs netteach system-wide for a classroom VM (as root), from this clone:
#   classroom/install.sh [PREFIX]          # PREFIX defaults to /opt/netteach
# - Debian packages the labs drive (iproute2, nftables, ping, unshare), Python's venv, Node.js/npm
# - PREFIX: a virtual environment every user can run (Debian's /usr/bin/python3, mode 755)
#   with netteach, JupyterLab and JupyterHub; PREFIX/notebooks: the notebooks copied to each
#   student at their first start
# - classroom/node_modules: configurable-http-proxy, from classroom/package.json
# Safe to run again (after a git pull it installs the new netteach and notebooks).
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
repo="$(dirname "$here")"
prefix="${1:-/opt/netteach}"
[ "$(id -u)" = 0 ] || { echo "classroom/install.sh installs system-wide: run it as root (sudo)" >&2; exit 1; }

debs="iproute2 nftables iputils-ping util-linux procps python3 python3-venv python3-pip"
missing=""
for p in $debs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"    # any Node.js >= 18 will do
if [ -n "$missing" ]; then
  echo "installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Debian's python3 on purpose: a Python under /root (pyenv, ...) is not readable by students.
umask 022
[ -x "$prefix/bin/python" ] || /usr/bin/python3 -m venv "$prefix"
"$prefix/bin/python" -m pip install -q --upgrade pip
"$prefix/bin/python" -m pip install -q "$repo[classroom]"
rm -rf "$prefix/notebooks.new"
cp -R "$repo/notebooks" "$prefix/notebooks.new"
find "$prefix/notebooks.new" -name .ipynb_checkpoints -prune -exec rm -rf {} +
rm -rf "$prefix/notebooks" && mv "$prefix/notebooks.new" "$prefix/notebooks"
chmod -R a+rX "$prefix"

if [ ! -x "$here/node_modules/.bin/configurable-http-proxy" ]; then
  (cd "$here" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
echo "netteach for the classroom is installed in $prefix (proxy: $here/node_modules/.bin/configurable-http-proxy)"

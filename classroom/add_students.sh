#!/usr/bin/env bash
# Creates a Linux user for each login in the students file (one a line; '#' starts a comment),
# with a private home (mode 700) and a fresh random password, printed once as "login password"
# for you to hand out. Users that already exist are left as they are. Run as root:
#   classroom/add_students.sh [classroom/students.txt] > passwords.txt
set -euo pipefail
file="${1:-$(dirname "$(readlink -f "$0")")/students.txt}"
[ "$(id -u)" = 0 ] || { echo "run as root (sudo): it creates Linux users" >&2; exit 1; }
sed 's/#.*//' "$file" | tr -s ' \t' '\n' | while read -r login; do
  [ -n "$login" ] || continue
  if id "$login" >/dev/null 2>&1; then
    echo "$login already exists: left as it is" >&2
    continue
  fi
  useradd --create-home --shell /bin/bash --comment "netteach student" "$login"
  chmod 700 "$(getent passwd "$login" | cut -d: -f6)"
  password="$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | head -c 12)"
  echo "$login:$password" | chpasswd
  echo "$login $password"
done

#!/usr/bin/env bash
# Installs Debian's Slurm (slurm-wlm) and munge for the tests that run jobs on a one-node Slurm
# cluster on localhost (tests/slurm.py configures and starts it). Needs root or password-less
# sudo; exits non-zero, saying why, where they cannot be installed. Idempotent (~0.1 s when done).
set -euo pipefail
debs="slurm-wlm munge"
missing=""
for p in $debs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
command -v apt-get >/dev/null || { echo "$0: no apt-get to install$missing" >&2; exit 1; }
sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo -n true 2>/dev/null || { echo "$0: installing$missing needs root" >&2; exit 1; }
  sudo="sudo -n"
fi
echo "$0: installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null 2>&1 || true
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null \
  || { echo "$0: apt-get install failed for:$missing" >&2; exit 1; }

#!/usr/bin/env bash
# Installs everything hdnn needs, idempotently: Debian packages by name and a
# Python virtual environment in ./.venv with the package in editable mode.
# Usage: tools/setup.sh            (re-running on a complete set-up takes ~1 s)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${HDNN_VENV:-$root/.venv}

# Synthesisers, text sources and audio tools for the embedded corpus; sclite for scoring;
# OpenFst tools (fstinfo, fstconvert for ConstFst graphs).
debs="espeak-ng libespeak-ng1 flite fortunes fortunes-min wordnet-base sox sctk libsndfile1 libfst-tools"

missing=""
for p in $debs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "$0: installing Debian packages:$missing"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq || true
  $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null \
    || { echo "$0: apt-get install failed for:$missing (install them with: sudo apt-get install$missing)" >&2; exit 1; }
fi

# The stamp records what the venv was built from; a change re-runs pip.
stamp=$venv/.hdnn-setup
want=$(cat "$root/setup.py" | sha1sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
echo "$0: installing Python packages into $venv"
"$venv/bin/pip" install -q --upgrade pip
# torch first, pinned: the CPU build lies on disk; anything else would pull a CUDA build.
"$venv/bin/pip" install -q torch==2.13.0
"$venv/bin/pip" install -q -e "$root[gmm,corpus,test]"
echo "$want" > "$stamp"

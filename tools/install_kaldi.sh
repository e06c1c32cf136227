#!/usr/bin/env bash
# Builds real Kaldi (the GMM + nnet1 tool set) from the source snapshot in ../shared/kaldi,
# once per machine, for the interoperability tests. A finished build is reused (~1 s).
# Usage: tools/install_kaldi.sh [prefix]        (default: $HDNN_KALDI_ROOT or /opt/kaldi)
# Prints the prefix on success. Exits 2 when no snapshot is available (tests then skip, saying why).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=${1:-${HDNN_KALDI_ROOT:-/opt/kaldi}}
shared=${HDNN_SHARED:-$root/../shared}
script=$shared/kaldi/build-kaldi.sh

if [ -x "$prefix/src/bin/copy-int-vector" ] && [ -x "$prefix/src/latbin/lattice-copy" ] \
   && [ -f "$prefix/path.sh" ]; then
  echo "$prefix"; exit 0
fi
if [ ! -f "$script" ]; then
  echo "$0: no Kaldi source snapshot at $shared/kaldi; cannot build Kaldi" >&2
  exit 2
fi
echo "$0: building Kaldi into $prefix (about 26 min on 2 cores; log: $prefix/build.log)" >&2
bash "$script" --jobs "${HDNN_KALDI_JOBS:-2}" "$prefix" >&2
echo "$prefix"

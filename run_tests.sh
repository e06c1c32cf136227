#!/usr/bin/env bash
# The test command: set-up (idempotent), a real Kaldi build for the interop tests, Debian's
# Slurm for the cluster tests, then pytest.
# Extra arguments go to pytest, e.g. ./run_tests.sh -k nnet -x
set -uo pipefail
root=$(cd "$(dirname "$0")" && pwd)
cd "$root"
tools/setup.sh || exit 1

if kroot=$(tools/install_kaldi.sh); then
  export KALDI_ROOT=$kroot
else
  export HDNN_NO_KALDI_REASON="Kaldi could not be built (tools/install_kaldi.sh exit $?)"
  echo "run_tests.sh: $HDNN_NO_KALDI_REASON; Kaldi interop tests will be skipped" >&2
fi

# Debian's Slurm, for the tests that run jobs on a one-node cluster on this machine.
if ! tools/install_slurm.sh; then
  export HDNN_NO_SLURM_REASON="Slurm could not be installed (tools/install_slurm.sh)"
  echo "run_tests.sh: $HDNN_NO_SLURM_REASON; the Slurm tests will be skipped" >&2
fi

.venv/bin/python -m pytest tests "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "run_tests.sh: pytest collected no tests" >&2
fi
exit $rc

#!/usr/bin/env bash
# The demo: set-up, then the whole recipe (egs/ami/run.sh, --backend py) on the embedded meeting
# corpus (about 1 h of speech) for the headset (ihm) and the distant microphone (sdm1), then the
# WER table it writes to egs/ami/RESULTS.md.
# Extra arguments go to run.sh, e.g.  ./run_demo.sh --nj 4   or   ./run_demo.sh --backend kaldi
# A rerun skips what is complete and resumes the rest.
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
"$root/tools/setup.sh"
cd "$root/egs/ami"
for mic in ihm sdm1; do
  ./run.sh --backend py --size demo --mic $mic --stop-stage 8 "$@"
done
./run.sh --backend py --size demo --stage 9 \
  --made-by "./run_demo.sh${*:+ $*}, i.e. egs/ami/run.sh --backend py --size demo for --mic ihm and sdm1" "$@"

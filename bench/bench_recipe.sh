#!/usr/bin/env bash
# Times egs/ami/run.sh and prints its budgets: the wall time of each stage and of all stages
# (ci: < 15 min, demo: < 60 min on 2 cores), and how much faster than real time the KD student
# decodes on one core: forward pass + one best-path search over the graph at the best LM weight
# of its dev decoding (budget: >= 50x).
#
# Usage: bench/bench_recipe.sh [--size ci|demo] [--backend py|kaldi] [--mic ihm|sdm1] [--work DIR]
#                              [--nnet-decode-opts "..."] [--speed-only true] [-- <more run.sh options>]
#   The recipe runs in DIR (default bench/out/<size>-<backend>), a recipe dir linked to egs/ami;
#   a rerun resumes it (complete steps are skipped, so remove DIR to time a fresh run).
#   --speed-only true: only the decoding speed, of the recipe dir DIR as it is (left unchanged).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

size=ci
backend=py
mic=ihm
work=
nnet_decode_opts="--beam 8 --max-active 2000"   # as run.sh's default
speed_only=false
while [ $# -gt 0 ]; do
  case $1 in
    --size|--backend|--mic|--work|--nnet-decode-opts|--speed-only) v=${1#--}; printf -v "${v//-/_}" '%s' "$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "$0: unknown option $1 (see --help)" >&2; exit 1 ;;
  esac
done
work=$(readlink -m "${work:-$root/bench/out/$size-$backend}")

if [ $speed_only = false ]; then
  mkdir -p "$work"
  cp "$root/egs/ami/run.sh" "$work/run.sh"   # a copy: editing egs/ami/run.sh cannot disturb a long run
  for f in path.sh cmd.sh conf; do ln -sfn "$root/egs/ami/$f" "$work/$f"; done
  ln -sfn "$root/local" "$work/local"
  cd "$work"
  log=bench.$(date +%Y%m%d-%H%M%S).log
  echo "$0: running the recipe in $work (log: $work/$log)"
  ./run.sh --size $size --backend $backend --mic $mic --nnet-decode-opts "$nnet_decode_opts" "$@" > $log 2>&1 \
    || { echo "$0: run.sh failed, see $work/$log" >&2; tail -5 $log >&2; exit 1; }

  echo
  echo "## egs/ami/run.sh --size $size --backend $backend --mic $mic $*"
  echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine counts)"
  echo
  echo "| stage | wall s |"
  echo "|---|---:|"
  # the run's timestamped stage lines: "YYYY-mm-dd HH:MM:SS (run.sh:N) Stage K: what" ... "Done"
  grep -E '^[0-9-]{10} [0-9:]{8} \(run\.sh:[0-9]+\) (Stage [0-9]+:|Done)' $log \
    | while read -r day time _ rest; do echo "$(date -d "$day $time" +%s) $rest"; done \
    | awk -v budget=$([ $size = ci ] && echo 900 || echo 3600) '
        NR > 1 { printf "| %s | %d |\n", name, $1 - start }
        { start = $1; if (NR == 1) first = $1; name = $0; sub(/^[0-9]+ /, "", name) }
        END { printf "| **all stages** | **%d** |\n\nall stages: %d s = %.2f of the %d s budget\n",
                     start - first, start - first, (start - first) / budget, budget }'
else
  cd "$work"
fi

# The student's decoding speed on one core.
sys=exp/$mic/student_kd
best=$(awk '{print $NF}' $sys/decode_dev/scoring_kaldi/best_wer)   # .../wer_<LMWT>_<WIP>
name=${best##*/wer_}; lmwt=${name%%_*}; wip=${name#*_}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
one_core=""; command -v taskset > /dev/null && one_core="taskset -c 0"
py=$root/.venv/bin/python
t0=$(date +%s.%N)
fwd=$($one_core $py -c "
import time
from hdnn.cli import set_torch_threads
from hdnn.nnet.forward import forward_dir
set_torch_threads()
t = time.time()
forward_dir('data/$mic/dev_fbank', '$sys', 'ark,scp:$tmp/ll.ark,$tmp/ll.scp')
print(time.time() - t)" 2> $tmp/forward.log)
$one_core $py $root/steps_py/decode_mapped.py --nj 1 $nnet_decode_opts --min-lmwt $lmwt --max-lmwt $lmwt \
  --word-ins-penalty $wip --skip-scoring true --progress false \
  exp/$mic/tri/graph data/$mic/dev_fbank exp/$mic/tri_ali scp:$tmp/ll.scp $tmp/decode 2> $tmp/decode.log
t1=$(date +%s.%N)
awk -v fwd=$fwd -v wall=$(echo "$t1 - $t0" | bc) -v point="LMWT $lmwt, WIP $wip, $nnet_decode_opts" '
  $1 == "frames" { audio = $2 / 100 } $1 == "seconds" { search = $2 }
  END { printf "\nstudent_kd decoding of dev on one core (%s): %.1f s of audio\n", point, audio
        printf "  forward %.1f s + graph search %.1f s: %.0fx faster than real time (budget: >= 50x)\n",
               fwd, search, audio / (fwd + search)
        printf "  wall time with start-up (Python, torch, model and graph loading) %.1f s: %.0fx\n",
               wall, audio / wall }
' $tmp/decode/decode_stats.txt
if [ -f RESULTS.md ]; then echo; sed -n '/^| mic/,/^$/p' RESULTS.md; fi

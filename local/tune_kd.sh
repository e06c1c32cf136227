#!/usr/bin/env bash
# Tune knowledge distillation on dev: for each point of a grid of the interpolation weight λ
# (--kd-lambda), the temperature τ (--kd-temperature) and, if given, the learning rate
# (train.py --learn-rate) and, if given, newbob's halving and stopping (--schedules: named sets of
# train.py options; both join run.sh's --train-opts, so they override the recipe's KD schedule,
# run.sh --kd-train-opts and --untranscribed-train-opts, and the schedule default is that one) and
# the amount of untranscribed audio (--untranscribed N: student_kd_u<N>x; 0: student_kd), stages 7-8
# of run.sh train and decode that student in a recipe dir of its own
# (kd_tune/<mic>/l<λ>_t<τ>[_lr<rate>][_<schedule>][_u<N>x]: links to this recipe's data, features,
# tri model and teacher), then one table: dev %WER at each point's
# best LM weight (what the choice is made on), eval %WER at that dev setting (reported, never used
# to choose), the epochs trained and the best CV frame accuracy. Run it in the recipe dir after
# stage 6 of the same --mic.
#
# Extra arguments after -- go to every run.sh, e.g. -- --size demo --backend py.

set -euo pipefail

mic=ihm
lambdas="0.5 1.0"
temperatures="1 2 4"
learn_rates=   # empty: train.py's default learning rate, the point dirs without _lr<rate>
schedules=     # NAME=OPT[,OPT...] ...: train.py options per point (default: none, no _<NAME>)
untranscribed=0   # N ...: student_kd_u<N>x (0: student_kd, no _u<N>x)
jobs=2      # grid points trained and decoded side by side, each with one job at a time

usage() {
  cat <<EOF
Usage: $0 [--mic ihm|sdm1] [--lambdas "L ..."] [--temperatures "T ..."] [--learn-rates "R ..."]
          [--schedules "NAME=OPT[,OPT...] ..."] [--untranscribed "N ..."] [--jobs N] [-- <run.sh options>]
 e.g.: $0 --mic ihm --lambdas "0.5 1.0" --temperatures "1 2 4" -- --backend py --size demo
       $0 --mic ihm --lambdas 1.0 --temperatures 1 --learn-rates "0.004 0.016" -- --backend py --size demo
       $0 --mic ihm --lambdas 1.0 --temperatures 1 \
          --schedules "default sh0.001=--start-halving-impr=0.001 keep6=--keep-lr-iters=6" -- --backend py --size demo
       $0 --mic ihm --lambdas 1.0 --temperatures 1 --learn-rates "0.008 0.004" --untranscribed "1 2" -- --backend py --size demo
A schedule NAME (letters, digits, '.', '-') names train.py options written --option=value, joined
by commas; the name default stands for none. --untranscribed N trains student_kd_u<N>x, student_kd
with N times the training set's amount of untranscribed audio (run.sh --untranscribed-factors).
Writes kd_tune/<mic>/l<λ>_t<τ>[_lr<rate>][_<NAME>][_u<N>x]/ (one recipe dir per point) and
kd_tune/<mic>/results.md.
EOF
}
while [ $# -gt 0 ]; do
  case $1 in
    --mic|--lambdas|--temperatures|--learn-rates|--schedules|--untranscribed|--jobs) [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 1; }
      v=${1#--}; printf -v "${v//-/_}" '%s' "$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) usage; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; usage >&2; exit 1 ;;
  esac
done

rates=${learn_rates:-default}   # default: train.py's learning rate
. "$(dirname "$0")/tune_points.sh"
named_opts --schedules "${schedules:-default}"   # the schedules: point_names, point_opts

for u in $untranscribed; do
  [[ $u =~ ^[0-9]+$ ]] || { echo "$0: --untranscribed: '$u': a whole number expected (0: student_kd)" >&2; exit 1; }
done

recipe=$(pwd -P)
[ -f "$recipe/run.sh" ] || { echo "$0: run it in the recipe dir (no run.sh in $recipe)" >&2; exit 1; }
. ./path.sh
for f in exp/$mic/teacher/.done exp/$mic/tri/graph/.done data/$mic/train_fbank/feats.scp; do
  [ -e "$f" ] || { echo "$0: $f is missing: run run.sh --mic $mic to stage 6 first" >&2; exit 1; }
done

# point_dir L T R S U: the point's recipe dir (R default: no _lr<rate>; S default: no _<schedule>;
# U 0: no _u<N>x).
point_dir() { echo kd_tune/$mic/l$1_t$2$([ $3 = default ] || echo _lr$3)$([ $4 = default ] || echo _$4)$([ $5 = 0 ] || echo _u$5x); }

# student U: the student a point trains
student() { if [ $1 = 0 ]; then echo student_kd; else echo student_kd_u$1x; fi; }

# with_train_opts EXTRA OPTS...: the run.sh options OPTS with the train.py options EXTRA appended
# to their --train-opts (added if there are none; train.py takes the last of an option it is given).
with_train_opts() {
  local x=$1 found=false; shift
  while [ $# -gt 0 ]; do
    case $1 in
      --train-opts) printf '%s\0' "$1" "${2:-} $x"; found=true; shift 2 || shift ;;
      --train-opts=*) printf '%s\0' "$1 $x"; found=true; shift ;;
      *) printf '%s\0' "$1"; shift ;;
    esac
  done
  [ $found = true ] || printf '%s\0' --train-opts "$x"
}

# point L T R S U: stages 7-8 of student_kd (U 0) or student_kd_u<U>x at λ = L, τ = T, learning
# rate R, schedule S (log: <point dir>/tune.log).
point() {
  local dir what="λ $1, τ $2" opts=("${run_opts[@]}") extra=; dir=$(point_dir $1 $2 $3 $4 $5)
  point_make $dir tri 'tri_ali*' teacher make_feats make_fbank
  [ $3 = default ] || { what+=", learning rate $3"; extra="--learn-rate $3"; }
  [ $4 = default ] || { what+=", schedule $4 (${point_opts[$4]})"; extra+=" ${point_opts[$4]}"; }
  [ $5 = 0 ] || what+=", ${5}x untranscribed"
  [ -z "$extra" ] || mapfile -d '' opts < <(with_train_opts "${extra# }" "${run_opts[@]}")
  echo "$0: $what: $dir (log: $dir/tune.log)"
  (cd $dir && ./run.sh --mic $mic --stage 7 --stop-stage 8 --nj 1 --nnet-jobs 1 \
      --untranscribed-factors $([ $5 = 0 ] && echo none || echo $5) --nnet-systems $(student $5) \
      --kd-lambda $1 --kd-temperature $2 "${opts[@]}" > tune.log 2>&1) \
    || { echo "$0: $what failed: $(tail -1 $dir/tune.log) (log: $dir/tune.log)" >&2; return 1; }
}

run_opts=("$@")
grid=()   # the points, "L T R S U" each, in the order trained and tabled
for u in $untranscribed; do
  for s in "${point_names[@]}"; do
    for r in $rates; do
      for t in $temperatures; do
        for l in $lambdas; do grid+=("$l $t $r $s $u"); done
      done
    done
  done
done
pids=()
for p in "${grid[@]}"; do
  while [ $(jobs -rp | wc -l) -ge $jobs ]; do sleep 1; done
  point $p & pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait $p || failed=1; done
[ $failed = 0 ] || exit 1

out=kd_tune/$mic/results.md
{
  echo "| λ | τ | learning rate | schedule | untranscribed | dev %WER (best) | eval %WER (at dev's setting) | LM weight | epochs | best CV frame accuracy |"
  echo "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"
  for p in "${grid[@]}"; do
    read -r l t r s u <<< "$p"
    d=$(point_dir $p)/exp/$mic/$(student $u)
    curve=$(python -c "import torch, sys; h = torch.load(sys.argv[1], weights_only=False)['history']
cv = [100 * e['cv']['accuracy'] for e in h if 'cv' in e]
print('%d | %.2f %%' % (len([e for e in h if 'train' in e]), max(cv)))" $d/checkpoint.pt)
    sched=$s; [ $s = default ] || sched="$s (\`${point_opts[$s]}\`)"
    cells=$(dev_cells $d)
    echo "| $l | $t | $r | $sched | ${u}x | $cells | $curve |"
  done
} > $out.tmp
mv $out.tmp $out
cat $out

#!/usr/bin/env bash
# Tune knowledge distillation on dev: for each point of a grid of the interpolation weight λ
# (--kd-lambda), the temperature τ (--kd-temperature) and, if given, the learning rate
# (train.py --learn-rate, through run.sh --train-opts), stages 7-8 of run.sh train and decode
# student_kd in a recipe dir of its own (kd_tune/<mic>/l<λ>_t<τ>[_lr<rate>]: links to this
# recipe's data, features, tri model and teacher), then one table: dev %WER at each point's best LM
# weight (what the choice is made on), eval %WER at that dev setting (reported, never used to
# choose), the epochs trained and the best CV frame accuracy. Run it in the recipe dir after
# stage 6 of the same --mic.
#
# Extra arguments after -- go to every run.sh, e.g. -- --size demo --backend py.

set -euo pipefail

mic=ihm
lambdas="0.5 1.0"
temperatures="1 2 4"
learn_rates=   # empty: train.py's default learning rate, the point dirs without _lr<rate>
jobs=2      # grid points trained and decoded side by side, each with one job at a time

usage() {
  cat <<EOF
Usage: $0 [--mic ihm|sdm1] [--lambdas "L ..."] [--temperatures "T ..."] [--learn-rates "R ..."] [--jobs N]
          [-- <run.sh options>]
 e.g.: $0 --mic ihm --lambdas "0.5 1.0" --temperatures "1 2 4" -- --backend py --size demo
       $0 --mic ihm --lambdas 1.0 --temperatures 1 --learn-rates "0.004 0.016" -- --backend py --size demo
Writes kd_tune/<mic>/l<λ>_t<τ>[_lr<rate>]/ (one recipe dir per point) and kd_tune/<mic>/results.md.
EOF
}
while [ $# -gt 0 ]; do
  case $1 in
    --mic|--lambdas|--temperatures|--learn-rates|--jobs) [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 1; }
      v=${1#--}; printf -v "${v//-/_}" '%s' "$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) usage; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; usage >&2; exit 1 ;;
  esac
done

recipe=$(pwd -P)
[ -f "$recipe/run.sh" ] || { echo "$0: run it in the recipe dir (no run.sh in $recipe)" >&2; exit 1; }
. ./path.sh
for f in exp/$mic/teacher/.done exp/$mic/tri/graph/.done data/$mic/train_fbank/feats.scp; do
  [ -e "$f" ] || { echo "$0: $f is missing: run run.sh --mic $mic to stage 6 first" >&2; exit 1; }
done

rates=${learn_rates:-default}   # default: train.py's learning rate

# point_dir L T R: the point's recipe dir (R default: no _lr<rate>).
point_dir() { echo kd_tune/$mic/l$1_t$2$([ $3 = default ] || echo _lr$3); }

# point_make DIR: unless it exists, a recipe dir whose stages 7-8 see this one's earlier stages;
# its data dir is a copy (the steps split it), the rest links.
point_make() {
  local dir=$1 f
  if [ ! -d $dir ]; then
    mkdir -p $dir.tmp/data $dir.tmp/exp/$mic
    for f in run.sh path.sh cmd.sh conf local; do ln -s "$(readlink -f $recipe/$f)" $dir.tmp/$f; done
    for f in fbank mfcc; do [ ! -e $recipe/$f ] || ln -s $recipe/$f $dir.tmp/$f; done
    for f in lang lang_test local; do ln -s $recipe/data/$f $dir.tmp/data/$f; done
    cp -r $recipe/data/$mic $dir.tmp/data/
    find $dir.tmp/data -depth -type d -name 'split[0-9]*' -exec rm -rf {} +
    for f in $recipe/exp/$mic/*; do
      case ${f##*/} in tri|tri_ali*|teacher|make_feats|make_fbank) ln -s $f $dir.tmp/exp/$mic/ ;; esac
    done
    [ $mic = ihm ] || ln -s $recipe/exp/ihm $dir.tmp/exp/ihm
    mv $dir.tmp $dir
  fi
}

# with_learn_rate R OPTS...: the run.sh options OPTS with train.py's --learn-rate R appended to
# their --train-opts (added if there are none; train.py takes the last --learn-rate it is given).
with_learn_rate() {
  local r=$1 found=false; shift
  while [ $# -gt 0 ]; do
    case $1 in
      --train-opts) printf '%s\0' "$1" "${2:-} --learn-rate $r"; found=true; shift 2 || shift ;;
      --train-opts=*) printf '%s\0' "$1 --learn-rate $r"; found=true; shift ;;
      *) printf '%s\0' "$1"; shift ;;
    esac
  done
  [ $found = true ] || printf '%s\0' --train-opts "--learn-rate $r"
}

# point L T R: stages 7-8 of student_kd at λ = L, τ = T, learning rate R (log: <point dir>/tune.log).
point() {
  local dir what="λ $1, τ $2" opts=("${run_opts[@]}"); dir=$(point_dir $1 $2 $3)
  point_make $dir
  if [ $3 != default ]; then
    what+=", learning rate $3"
    mapfile -d '' opts < <(with_learn_rate $3 "${run_opts[@]}")
  fi
  echo "$0: $what: $dir (log: $dir/tune.log)"
  (cd $dir && ./run.sh --mic $mic --stage 7 --stop-stage 8 --nj 1 --nnet-jobs 1 --untranscribed-factors none \
      --nnet-systems student_kd --kd-lambda $1 --kd-temperature $2 "${opts[@]}" > tune.log 2>&1) \
    || { echo "$0: $what failed: $(tail -1 $dir/tune.log) (log: $dir/tune.log)" >&2; return 1; }
}

run_opts=("$@")
pids=()
for r in $rates; do
  for t in $temperatures; do
    for l in $lambdas; do
      while [ $(jobs -rp | wc -l) -ge $jobs ]; do sleep 1; done
      point $l $t $r & pids+=($!)
    done
  done
done
failed=0
for p in "${pids[@]}"; do wait $p || failed=1; done
[ $failed = 0 ] || exit 1

# wer FILE: the %WER of a best_wer file
wer() { awk '{print $2}' $1; }
out=kd_tune/$mic/results.md
{
  echo "| λ | τ | learning rate | dev %WER (best) | eval %WER (at dev's setting) | LM weight | epochs | best CV frame accuracy |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
  for r in $rates; do
    for t in $temperatures; do
      for l in $lambdas; do
        d=$(point_dir $l $t $r)/exp/$mic/student_kd
        curve=$(python -c "import torch, sys; h = torch.load(sys.argv[1], weights_only=False)['history']
cv = [100 * e['cv']['accuracy'] for e in h if 'cv' in e]
print('%d | %.2f %%' % (len([e for e in h if 'train' in e]), max(cv)))" $d/checkpoint.pt)
        lmwt=$(sed -n 's:.*/wer_\([0-9]*\)_.*:\1:p' $d/decode_dev/scoring_kaldi/best_wer)
        echo "| $l | $t | $r | $(wer $d/decode_dev/scoring_kaldi/best_wer) | $(wer $d/decode_eval/scoring_kaldi/best_wer) | $lmwt | $curve |"
      done
    done
  done
} > $out.tmp
mv $out.tmp $out
cat $out

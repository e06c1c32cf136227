#!/usr/bin/env bash
# Tune sequence training on dev: for each stage-10 system (--systems) and each named set of
# steps_py/train_smbr.py options (--settings: the learning rate, the passes, the teacher's weight α
# of student_ts_smbr, the criterion, frame smoothing ...), stage 10 of run.sh trains and decodes
# that system in a recipe dir of its own (smbr_tune/<mic>/<system>_<setting>: links to this
# recipe's data, features, tri model, teacher and student_kd, and to the source nnet's alignments
# and denominator, made once, by the first point of that source), then one table: dev %WER at each
# point's best LM weight (what the choice is made on), eval %WER at that dev setting (reported,
# never used to choose), the p of the MAPSSWE test against the source system on each set, and the
# expected frame accuracy over the denominator (MMI: the loss) in the first pass and in the last.
# A setting's options join run.sh's --smbr-opts after its own, which come after the variant's own
# options, so each overrides those before it. Run it in the recipe dir after stage 8 of the same --mic.
#
# Extra arguments after -- go to every run.sh, e.g. -- --size demo --backend py.

set -euo pipefail

mic=ihm
systems="student_smbr student_ts_smbr"
settings=default   # NAME=OPT[,OPT...] ...: train_smbr.py options per point (default: none)
jobs=2             # points trained and decoded side by side, each one job at a time

usage() {
  cat <<EOF
Usage: $0 [--mic ihm|sdm1] [--systems "SYSTEM ..."] [--settings "NAME=OPT[,OPT...] ..."] [--jobs N]
          [-- <run.sh options>]
 e.g.: $0 --mic ihm --systems "student_smbr teacher_smbr" \\
          --settings "default lr3e-6=--learn-rate=3e-6" -- --backend py --size demo
       $0 --mic ihm --systems student_ts_smbr \\
          --settings "a0.2=--ts-weight=0.2 a0.8=--ts-weight=0.8" -- --backend py --size demo
SYSTEM: teacher_smbr, student_smbr, student_ts_smbr or student_gate_smbr (run.sh, stage 10).
A setting NAME (letters, digits, '.', '-') names train_smbr.py options written --option=value,
joined by commas; the name default stands for none (run.sh's own). Writes
smbr_tune/<mic>/<SYSTEM>_<NAME>/ (one recipe dir per point) and smbr_tune/<mic>/results.md.
EOF
}
while [ $# -gt 0 ]; do
  case $1 in
    --mic|--systems|--settings|--jobs) [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 1; }
      v=${1#--}; printf -v "$v" '%s' "$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) usage; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; usage >&2; exit 1 ;;
  esac
done
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "$0: --jobs $jobs: a number, at least 1" >&2; exit 1; }

. "$(dirname "$0")/tune_points.sh"
named_opts --settings "$settings"   # the settings: point_names, point_opts

. "$(dirname "$0")/smbr_systems.sh"
# source_of SYSTEM: the nnet a stage-10 system starts from (student_kd_smbrt, distilled rather than
# trained with sMBR, is not tuned here)
source_of() {
  [ $1 != student_kd_smbrt ] && smbr_source $1 2>/dev/null || {
    echo "$0: --systems: $1: one of teacher_smbr student_smbr student_ts_smbr student_gate_smbr expected" >&2
    return 1; }
}
for sys in $systems; do source_of $sys >/dev/null; done

recipe=$(pwd -P)
[ -f "$recipe/run.sh" ] || { echo "$0: run it in the recipe dir (no run.sh in $recipe)" >&2; exit 1; }
. ./path.sh
for sys in $systems; do
  f=exp/$mic/$(source_of $sys)/decode_eval/.done
  [ -e $f ] || { echo "$0: $f is missing: run run.sh --mic $mic to stage 8 first" >&2; exit 1; }
done

# source_home SOURCE: the exp dir that holds the source nnet's alignments and denominator complete
# (either backend's): this recipe's, after its own stage 10, or a point's of that source; none yet:
# nothing.
source_home() {
  local e
  for e in $recipe/exp/$mic $recipe/smbr_tune/$mic/*/exp/$mic; do
    if [ -e $e/$1_ali/.done ] && { [ -e $e/$1_dengraph/.done ] || { [ -e $e/$1_denlats/.done ] && [ -e $e/dengraph/.done ]; }; }; then
      echo $e; return
    fi
  done
}

# point SYSTEM SETTING: stage 10 of SYSTEM with the setting's options (log: <point dir>/tune.log).
point() {
  local dir=smbr_tune/$mic/$1_$2 what="$1, setting $2" opts=() src home f links=()
  [ $2 = default ] || what+=" (${point_opts[$2]})"
  src=$(source_of $1) home=$(source_home $src)
  for f in ${src}_ali ${src}_dengraph ${src}_denlats dengraph; do   # as far as made already
    [ -z "$home" ] || [ ! -e $home/$f ] || links+=("$(readlink -f $home/$f)")
  done
  point_make $dir tri 'tri_ali*' teacher student_kd make_feats make_fbank ${links[@]+"${links[@]}"}
  [ $2 = default ] || opts=(--smbr-opts "$user_smbr_opts ${point_opts[$2]}")
  echo "$0: $what: $dir (log: $dir/tune.log)"
  (cd $dir && ./run.sh --mic $mic --stage 10 --stop-stage 10 --nj 1 ${run_opts[@]+"${run_opts[@]}"} \
      --smbr-systems $1 ${opts[@]+"${opts[@]}"} > tune.log 2>&1) \
    || { echo "$0: $what failed: $(tail -1 $dir/tune.log) (log: $dir/tune.log)" >&2; return 1; }
}

run_opts=("$@")
user_smbr_opts=   # run.sh --smbr-opts among them: the settings' options join them (they come last)
for ((i = 0; i < ${#run_opts[@]}; i++)); do
  case ${run_opts[i]} in
    --smbr-opts) user_smbr_opts=${run_opts[i + 1]:-} ;;
    --smbr-opts=*) user_smbr_opts=${run_opts[i]#--smbr-opts=} ;;
  esac
done
grid=()   # the points, "SYSTEM SETTING" each, in the order trained and tabled
for sys in $systems; do for s in "${point_names[@]}"; do grid+=("$sys $s"); done; done

# The first point of each source makes its alignments and denominator; the source's other points
# wait for them (and link them); $jobs points run at a time.
pids=()
declare -A first=()   # source -> the pid of its first point
failed=0
for p in "${grid[@]}"; do
  src=$(source_of ${p%% *})
  while :; do
    if [ -n "$(source_home $src)" ] || [ -z "${first[$src]:-}" ]; then
      [ $(jobs -rp | wc -l) -lt $jobs ] && break
    elif ! kill -0 ${first[$src]} 2>/dev/null; then
      wait ${first[$src]} || true   # it ended without making them: failed (its message said why)
      failed=1; break 2
    fi
    sleep 2
  done
  point $p & pids+=($!)
  [ -n "${first[$src]:-}" ] || first[$src]=$!
done
for q in ${pids[@]+"${pids[@]}"}; do wait $q || failed=1; done
[ $failed = 0 ] || exit 1

out=smbr_tune/$mic/results.md
{
  echo "| system | setting | dev %WER (best) | eval %WER (at dev's setting) | LM weight | p dev | p eval | frame accuracy (MMI: loss per frame), pass 1 → last |"
  echo "|---|---|---:|---:|---:|---:|---:|---|"
  for p in "${grid[@]}"; do
    read -r sys s <<< "$p"
    src=$(source_of $sys) d=smbr_tune/$mic/${sys}_$s/exp/$mic/$sys
    acc=$(awk -F'\t' 'NR == 2 {a = $4; c = $5} NR > 1 {b = $4; e = $5}
      END {if (a == "nan") printf "MMI loss %.4f → %.4f", c, e; else printf "%.3f → %.3f", a, b}' $d/curve.tsv)
    setting=$s; [ $s = default ] || setting="$s (\`${point_opts[$s]}\`)"
    cells=$(dev_cells $d); p_dev=$(p_at_dev dev exp/$mic/$src $d); p_eval=$(p_at_dev eval exp/$mic/$src $d)
    echo "| $sys | $setting | $cells | $p_dev | $p_eval | $acc |"
  done
  for src in $(for sys in $systems; do source_of $sys; done | sort -u); do
    cells=$(dev_cells exp/$mic/$src)
    echo "| $src (source) | | $cells | | | |"
  done
} > $out.tmp
mv $out.tmp $out
cat $out

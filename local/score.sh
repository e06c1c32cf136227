#!/usr/bin/env bash
# Scoring of a decode dir of Kaldi lattices, called by steps/decode.sh and the recipe:
# Kaldi's steps/score_kaldi.sh (LM weight x word insertion penalty sweep, wer_<LMWT>_<WIP>,
# scoring_kaldi/best_wer), then NIST sclite's reports of the best setting (summary, per-speaker,
# alignments, details) in <decode-dir>/scoring_kaldi/sclite/best_<LMWT>_<WIP>.*, as
# steps_py/score.py writes them for --backend py.
# Usage: local/score.sh [options of steps/score_kaldi.sh] <data-dir> <lang-dir|graph-dir> <decode-dir>
set -euo pipefail

steps/score_kaldi.sh "$@"

data=${*: -3:1}
dir=${*: -1}
scoring=$dir/scoring_kaldi
best=$(awk '{print $NF}' $scoring/best_wer)   # .../wer_<LMWT>_<WIP>
name=${best##*/wer_}
lmwt=${name%%_*}
wip=${name#*_}

sclite=
for s in "$(command -v sclite || true)" /usr/lib/sctk/bin/sclite "${KALDI_ROOT:-}/tools/sctk/bin/sclite"; do
  if [ -z "$sclite" ] && [ -x "$s" ]; then sclite=$s; fi
done
if [ -z "$sclite" ]; then
  echo "$0: sclite not found (Debian package sctk): no sclite reports for $dir" >&2
  exit 0
fi

# trn HYP REF: the hypotheses of every reference utterance (missing: empty) as a trn file,
# `words (spk_utt)`, with '_' and '-' in speaker ids made '.' (sclite splits ids there).
trn() {
  awk -v hyps="$1" -v utt2spk=$data/utt2spk '
    BEGIN { while ((getline l < utt2spk) > 0) { split(l, f); spk[f[1]] = f[2] }
            while ((getline l < hyps) > 0) { n = split(l, f); u = f[1]; w = "";
              for (i = 2; i <= n; i++) w = w f[i] " "; hyp[u] = w } }
    { s = spk[$1]; gsub(/[-_]/, ".", s); print hyp[$1] "(" s "_" $1 ")" }' "$2"
}
out=$scoring/sclite
mkdir -p $out
trn $scoring/test_filt.txt $scoring/test_filt.txt > $scoring/test_filt.trn
trn $scoring/penalty_$wip/$lmwt.txt $scoring/test_filt.txt > $scoring/penalty_$wip/$lmwt.trn
"$sclite" -r $scoring/test_filt.trn trn -h $scoring/penalty_$wip/$lmwt.trn trn -i spu_id \
  -O $out -n best_${lmwt}_${wip} -o sum rsum pralign dtl > $out/log.best 2>&1 \
  || { echo "$0: sclite failed, see $out/log.best" >&2; exit 1; }
grep -h '| Sum' $out/best_${lmwt}_${wip}.sys || true

#!/usr/bin/env bash
# Copy a headset (IHM) data dir's features under the utterance ids of the parallel distant-mic
# (SDM) data dir: same segments, so same frames, with _H0<k>_ in each id turned into _SDM_ (the
# ids of local/make_mini_ami.py and of Kaldi's AMI data prep). SDM models can then train on
# alignments made from the headset audio (Kaldi's AMI --use-ihm-ali) and on the soft targets of
# a headset teacher. The copy holds feats.scp, cmvn.scp (speakers are the same), utt2spk,
# spk2utt and text, not the audio; it is checked against the SDM dir: the same utterances and,
# where both have utt2num_frames, the same frame counts.

set -euo pipefail

if [ $# -ne 3 ]; then
  cat >&2 <<EOF
Usage: $0 <ihm-data> <sdm-data> <out-dir>
 e.g.: $0 data/ihm/train data/sdm1/train data/sdm1/train_ihmdata
EOF
  exit 1
fi
ihm=$1 sdm=$2 dir=$3
export LC_ALL=C

for f in $ihm/feats.scp $ihm/cmvn.scp $ihm/utt2spk $sdm/utt2spk; do
  [ -f $f ] || { echo "$0: no such file $f" >&2; exit 1; }
done

tmp=$dir.tmp$$
rm -rf $tmp && mkdir -p $tmp
trap 'rm -rf $tmp' EXIT
to_sdm() { sed -E 's/^([^ ]*)_H0[0-9]_/\1_SDM_/' "$1" | sort -k1,1 -s; }
for f in feats.scp utt2spk text utt2num_frames; do
  [ ! -f $ihm/$f ] || to_sdm $ihm/$f > $tmp/$f
done
cp $ihm/cmvn.scp $tmp/cmvn.scp
awk '{if ($2 != spk) {if (spk != "") print line; spk = $2; line = $2} line = line " " $1} END {if (spk != "") print line}' \
  $tmp/utt2spk > $tmp/spk2utt

if ! cmp -s <(cut -d' ' -f1-2 $tmp/utt2spk) <(cut -d' ' -f1-2 $sdm/utt2spk); then
  first=$(diff <(cut -d' ' -f1-2 $tmp/utt2spk) <(cut -d' ' -f1-2 $sdm/utt2spk) | grep -m1 '^[<>]' || true)
  echo "$0: $ihm and $sdm are not parallel: their utterances and speakers differ after _H0<k>_ -> _SDM_ (first: $first)" >&2
  exit 1
fi
if [ -f $tmp/utt2num_frames ] && [ -f $sdm/utt2num_frames ] && ! cmp -s $tmp/utt2num_frames $sdm/utt2num_frames; then
  first=$(diff $tmp/utt2num_frames $sdm/utt2num_frames | grep -m1 '^[<>]' || true)
  echo "$0: $ihm and $sdm differ in frame counts (utt2num_frames; first: $first)" >&2
  exit 1
fi
rm -rf $dir && mv $tmp $dir
trap - EXIT
echo "$0: $dir: $(wc -l < $dir/utt2spk) utterances of $ihm under the ids of $sdm"

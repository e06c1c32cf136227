#!/usr/bin/env bash
# Kaldi data dirs for the real AMI corpus, made by Kaldi's own AMI recipe (egs/ami/s5b).
#
# Usage: local/ami_data_prep.sh <AMI-dir> <mic> <data-root>
#   <AMI-dir>   the AMI audio as local/ami_download.sh leaves it (<AMI-dir>/<meeting>/audio/*.wav)
#   <mic>       ihm or sdm1
#   <data-root> gets <mic>/{train,dev,eval} (Kaldi's *_orig dirs, validated), and local/dict
#               and local/lm_train.txt from CMUdict via local/prepare_dict.py
# Needs KALDI_ROOT (a Kaldi checkout with egs/ami/s5b and built binaries), and the AMI
# annotations: Kaldi's local/ami_text_prep.sh downloads ami_public_manual_1.6.1.zip unless
# that file already lies in <AMI-dir>.
# Users who already have AMI data dirs need none of this: point the recipe at them.
set -euo pipefail

usage() { sed -n '2,13s/^# \{0,1\}//p' "$0"; }
case ${1:-} in -h|--help) usage; exit 0 ;; esac
[ $# -eq 3 ] || { usage >&2; exit 1; }
ami=$(readlink -f "$1"); mic=$2; data=$(readlink -m "$3")
here=$(cd "$(dirname "$0")/.." && pwd)
case $mic in ihm) base=ihm ;; sdm1) base=sdm ;; *) echo "$0: error: mic must be ihm or sdm1, not '$mic'" >&2; exit 1 ;; esac
s5b=${KALDI_ROOT:-}/egs/ami/s5b
[ -n "${KALDI_ROOT:-}" ] && [ -f "$s5b/local/ami_${base}_data_prep.sh" ] \
  || { echo "$0: error: set KALDI_ROOT to a Kaldi checkout with egs/ami/s5b" >&2; exit 1; }
[ -d "$ami" ] || { echo "$0: error: no AMI directory $1" >&2; exit 1; }

# Kaldi's scripts run from a recipe dir: a scratch one under <data-root>/local.
work=$data/local/ami_s5b
mkdir -p "$work/data/local/downloads"
for d in local steps utils; do ln -sfn "$s5b/$d" "$work/$d"; done
cat > "$work/path.sh" <<PATH_SH
export KALDI_ROOT=$KALDI_ROOT
[ -f \$KALDI_ROOT/tools/config/common_path.sh ] && . \$KALDI_ROOT/tools/config/common_path.sh
export LC_ALL=C
PATH_SH
zip=ami_public_manual_1.6.1.zip
[ -f "$ami/$zip" ] && ln -sfn "$ami/$zip" "$work/data/local/downloads/$zip"

cd "$work"
[ -f data/local/annotations/train.txt ] || local/ami_text_prep.sh data/local/downloads
local/ami_${base}_data_prep.sh "$ami" "$mic"
for set in dev eval; do local/ami_${base}_scoring_data_prep.sh "$ami" "$mic" $set; done

for set in train dev eval; do
  rm -rf "$data/$mic/$set"; mkdir -p "$data/$mic"
  cp -r "data/$mic/${set}_orig" "$data/$mic/$set"
  utils/validate_data_dir.sh --no-feats "$data/$mic/$set"
done
"$here/.venv/bin/python" "$here/local/prepare_dict.py" "$data" "$data/$mic/train"
echo "$0: AMI $mic data dirs are in $data/$mic"

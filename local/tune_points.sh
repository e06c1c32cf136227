# What local/tune_kd.sh and local/tune_smbr.sh share (sourced): the named sets of options of their
# grids, the recipe dir of each grid point and what their tables read of a decode dir. They set
# $recipe (the recipe dir) and $mic first.

# named_opts OPTION VALUE: VALUE, "NAME=--option=value[,--option=value...] ...", into point_names
# (the names, in order) and point_opts[NAME] (its options, space-separated); the name default
# stands for none. A malformed item is one line naming OPTION and the item, and exit 1.
named_opts() {
  local s name
  point_names=()
  declare -gA point_opts=()
  for s in $2; do
    name=${s%%=*}
    [[ $name =~ ^[A-Za-z0-9.-]+$ ]] && [ -z "${point_opts[$name]+x}" ] \
      || { echo "$0: $1: '$s': a new NAME (letters, digits, '.', '-') expected before '='" >&2; exit 1; }
    if [ $name = default ]; then
      [ "$s" = default ] || { echo "$0: $1: '$s': the name default takes no options" >&2; exit 1; }
      point_opts[$name]=
    else
      [[ $s =~ ^[^=]+=--[a-z-]+=[^,]+(,--[a-z-]+=[^,]+)*$ ]] \
        || { echo "$0: $1: '$s': NAME=--option=value[,--option=value...] expected" >&2; exit 1; }
      point_opts[$name]=${s#*=}; point_opts[$name]=${point_opts[$name]//,/ }
    fi
    point_names+=("$name")
  done
}

# point_make DIR LINK...: unless it exists, a recipe dir whose later stages see this recipe's
# earlier ones: links to its scripts, features, lang dirs and, for each LINK, the entries of
# exp/$mic that match it (a pattern) or, for a LINK holding a /, that path; its data dir is a copy
# (the steps split it).
point_make() {
  local dir=$1 link f; shift
  [ ! -d $dir ] || return 0
  mkdir -p $dir.tmp/data $dir.tmp/exp/$mic
  for f in run.sh path.sh cmd.sh conf local; do ln -s "$(readlink -f $recipe/$f)" $dir.tmp/$f; done
  for f in fbank mfcc; do [ ! -e $recipe/$f ] || ln -s $recipe/$f $dir.tmp/$f; done
  for f in lang lang_test local; do ln -s $recipe/data/$f $dir.tmp/data/$f; done
  cp -r $recipe/data/$mic $dir.tmp/data/
  find $dir.tmp/data -depth -type d -name 'split[0-9]*' -exec rm -rf {} +
  for link in "$@"; do
    case $link in */*) ;; *) link="$recipe/exp/$mic/$link" ;; esac
    for f in $link; do [ ! -e "$f" ] || ln -s "$f" $dir.tmp/exp/$mic/; done
  done
  [ $mic = ihm ] || ln -s $recipe/exp/ihm $dir.tmp/exp/ihm
  mv $dir.tmp $dir
}

# The table cells below are read into variables before a row is printed (x=$(...) under set -e
# and pipefail), so that a missing or unreadable decode stops the table script with the CLI's
# message rather than leaving an empty cell.

# wer FILE: the %WER of a best_wer or wer_<LMWT>_<WIP> file; lmwt BEST-WER: the LM weight it was
# scored at
wer() { awk '/^%WER/ {print $2; exit}' $1; }
lmwt() { sed -n 's:.*/wer_\([0-9]*\)_.*:\1:p' $1; }

# wer_at_dev SYSTEM-DIR SET: the system's %WER on SET at the setting its dev decode chose, the
# number reported for eval (--backend kaldi sweeps eval's lattices too, so eval's own best_wer is
# not it)
wer_at_dev() { python $HDNN_ROOT/steps_py/wer_at_dev.py $1 $2 | awk '{print $2}'; }

# dev_cells SYSTEM-DIR: "dev %WER (best) | eval %WER (at dev's setting) | LM weight" of a system
dev_cells() {
  local best=$1/decode_dev/scoring_kaldi/best_wer dev at_dev lm
  # && and not ';': a function run inside $(...) does not keep set -e
  dev=$(wer $best) && at_dev=$(wer_at_dev $1 eval) && lm=$(lmwt $best) && echo "$dev | $at_dev | $lm"
}

# p_at_dev SET DIR-A DIR-B: the two-sided MAPSSWE p of systems DIR-A and DIR-B on SET, each at its
# dev setting
p_at_dev() {
  python $HDNN_ROOT/steps_py/compare_wer.py --at-dev $2/decode_$1 $3/decode_$1 | sed -n 's/.*MAPSSWE p=\([^ ]*\).*/\1/p'
}

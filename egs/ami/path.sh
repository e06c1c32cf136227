# Environment of the recipe: hdnn's Python steps, and real Kaldi when KALDI_ROOT holds a build.
# (Resolved through symlinks, so a recipe dir of links to this one works too.)
HDNN_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
export HDNN_ROOT
export PATH=$HDNN_ROOT/.venv/bin:$PATH:$HDNN_ROOT/tools/bin   # tools/bin: run.pl where Kaldi's is not
export PYTHONUNBUFFERED=1
export LC_ALL=C
# One thread and fixed instruction-set code paths for every process, Kaldi's binaries included,
# so that a run writes the same bytes on any machine (hdnn/numerics.py).
eval "$(python -c 'import hdnn.numerics as n; print(n.shell_exports(), end="")')"
if [ -n "${KALDI_ROOT:-}" ] && [ -x "$KALDI_ROOT/src/bin/copy-int-vector" ]; then
  for d in bin featbin latbin gmmbin fstbin lmbin nnetbin; do PATH=$KALDI_ROOT/src/$d:$PATH; done
  export PATH=$KALDI_ROOT/egs/wsj/s5/utils:$PATH
  [ -f "$KALDI_ROOT/tools/config/common_path.sh" ] && . "$KALDI_ROOT/tools/config/common_path.sh"
fi

#!/usr/bin/env python3
"""Dict dir and LM text for data dirs made elsewhere (e.g. real AMI by local/ami_data_prep.sh).

  python local/prepare_dict.py <data-root> <train-dir>

Writes <data-root>/local/dict from CMUdict for the words of <train-dir>/text, and
<data-root>/local/lm_train.txt (those transcripts). Words without a CMUdict pronunciation
are left out of the lexicon, so training maps them to <UNK>; their counts go to
<data-root>/local/oov_counts.txt.
"""
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hdnn.cli import get_parser, run_main, setup_logging  # noqa: E402
from hdnn.errors import atomic_open  # noqa: E402
from hdnn.kaldi.data_dir import read_kaldi_map  # noqa: E402
from mini_ami import data_prep, lexicon  # noqa: E402


def main(argv=None):
    p = get_parser(__doc__.split("\n\n")[0], usage="%(prog)s <data-root> <train-dir>")
    p.add_argument("data_root", type=Path)
    p.add_argument("train_dir", type=Path)
    args = p.parse_args(argv)
    setup_logging(args.data_root / "local" / "log" / "prepare_dict.log")
    texts = list(read_kaldi_map(args.train_dir / "text").values())
    cmu = lexicon.cmudict_lexicon()
    words = sorted({w for t in texts for w in t.split() if w in cmu})
    n = lexicon.write_dict_dir(args.data_root / "local" / "dict", words)
    oov = data_prep.oov_counts([{"text": t} for t in texts], set(words))
    with atomic_open(args.data_root / "local" / "oov_counts.txt") as f:
        f.write("".join(f"train {c} {w}\n" for w, c in sorted(oov.items(), key=lambda kv: (-kv[1], kv[0]))))
    with atomic_open(args.data_root / "local" / "lm_train.txt") as f:
        f.write("".join(t + "\n" for t in sorted(set(texts), key=str.encode)))
    logging.info("lexicon: %d entries for %d words; %d word types (%d tokens) without a CMUdict "
                 "pronunciation map to <UNK> (see oov_counts.txt)", n, len(words), len(oov), sum(oov.values()))


if __name__ == "__main__":
    run_main(main)

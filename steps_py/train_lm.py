#!/usr/bin/env python3
"""An interpolated Kneser-Ney n-gram LM (ARPA) from training text, as SRILM's
ngram-count -kndiscount (kaldingram), optionally entropy-pruned (ngram -prune). Words outside
the lang dir's vocabulary become its OOV word; <lm-dir>/oov_counts.txt counts them.
Writes <lm-dir>/lm_<order>gram.arpa.gz, for format_lm."""
from hdnn.cli import get_parser, run_main, setup_logging

USAGE = """%(prog)s [options] <lm-train-text> <lang-dir> <lm-dir>
 e.g.: %(prog)s --order 3 data/local/lm_train.txt data/lang data/local/lm"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("text")
    p.add_argument("lang_dir")
    p.add_argument("lm_dir")
    p.add_argument("--order", type=int, default=3, choices=[1, 2, 3, 4, 5], help="n-gram order")
    p.add_argument("--prune-thresh", type=float, default=0.0,
                   help="entropy pruning threshold (relative perplexity change); 0 keeps all n-grams")
    args = p.parse_args(argv)
    setup_logging(f"{args.lm_dir}/log/train_lm.log")
    from hdnn.gmm.lm import train_lm

    print(train_lm(args.text, args.lang_dir, args.lm_dir, order=args.order, prune_thresh=args.prune_thresh))


if __name__ == "__main__":
    run_main(main)

#!/usr/bin/env python3
"""A lang dir with a grammar: copies <lang-dir> to <out-dir> and adds G.fst made from an ARPA
LM (arpa2fst with #0 on back-off arcs, ilabel-sorted), as Kaldi's utils/format_lm.sh."""
from hdnn.cli import get_parser, run_main, setup_logging

USAGE = """%(prog)s [options] <lang-dir> <arpa-LM> <lexicon> <out-dir>
 e.g.: %(prog)s data/lang data/local/lm/lm_3gram.arpa.gz data/local/dict/lexicon.txt data/lang_test
 (<lexicon> is accepted like utils/format_lm.sh and not used)"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("lang_dir")
    p.add_argument("arpa")
    p.add_argument("lexicon")
    p.add_argument("out_dir")
    args = p.parse_args(argv)
    setup_logging()
    from hdnn.gmm.lm import format_lm

    format_lm(args.lang_dir, args.arpa, args.out_dir)


if __name__ == "__main__":
    run_main(main)

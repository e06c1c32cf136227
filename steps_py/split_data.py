#!/usr/bin/env python3
"""Split a data dir for parallel jobs, as Kaldi's utils/split_data.sh: <data>/split<N>/{1..N},
each a data dir of whole speakers with nearly equal numbers of utterances (--per-utt:
<data>/split<N>utt, runs of utterances). A job dir is rewritten only when its content changes."""
from hdnn.cli import get_parser, run_main, str2bool

USAGE = """%(prog)s [--per-utt] <data-dir> <num-to-split>
 e.g.: %(prog)s data/ihm/dev_fbank 2"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("data_dir")
    p.add_argument("num_to_split", type=int)
    p.add_argument("--per-utt", type=str2bool, nargs="?", const=True, default=False,
                   help="ignore speakers: split runs of utterances")
    args = p.parse_args(argv)
    from hdnn.kaldi.data_dir import split_data

    split_data(args.data_dir, args.num_to_split, per_utt=args.per_utt)


if __name__ == "__main__":
    run_main(main)

#!/usr/bin/env python3
"""Per-speaker cepstral mean and variance statistics, as Kaldi's steps/compute_cmvn_stats.sh
(compute-cmvn-stats --spk2utt): <cmvn-dir>/cmvn_<name>.{ark,scp} and <data-dir>/cmvn.scp."""
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging
from hdnn.errors import HdnnError

USAGE = """%(prog)s [options] <data-dir> [<log-dir> [<cmvn-dir>]]
 e.g.: %(prog)s data/ihm/train exp/make_mfcc/ihm/train mfcc"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("data_dir")
    p.add_argument("log_dir", nargs="?", help="default: <data-dir>/log")
    p.add_argument("cmvn_dir", nargs="?", help="default: <data-dir>/data")
    args = p.parse_args(argv)
    if not Path(args.data_dir).is_dir():
        raise HdnnError(f"{args.data_dir}: no such data directory")
    log_dir = args.log_dir or f"{args.data_dir}/log"
    setup_logging(f"{log_dir}/compute_cmvn_stats.log")
    from hdnn.gmm.features import compute_cmvn_stats

    compute_cmvn_stats(args.data_dir, log_dir, args.cmvn_dir)


if __name__ == "__main__":
    run_main(main)

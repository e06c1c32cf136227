#!/usr/bin/env python3
"""MFCC features for a data dir, as Kaldi's steps/make_mfcc.sh: compute-mfcc-feats options from
--mfcc-config, compressed archives <mfcc-dir>/raw_mfcc_<name>.JOB.{ark,scp} written by --nj
parallel jobs, then <data-dir>/feats.scp and <data-dir>/utt2num_frames."""
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging, str2bool
from hdnn.errors import HdnnError

USAGE = """%(prog)s [options] <data-dir> [<log-dir> [<mfcc-dir>]]
 e.g.: %(prog)s --nj 2 --mfcc-config conf/mfcc.conf data/ihm/train exp/make_mfcc/ihm/train mfcc"""


def feature_main(kind, doc, argv):
    p = get_parser(doc, usage=USAGE.replace("mfcc", kind))
    p.add_argument("data_dir")
    p.add_argument("log_dir", nargs="?", help="default: <data-dir>/log")
    p.add_argument("feat_dir", nargs="?", help="default: <data-dir>/data")
    p.add_argument(f"--{kind}-config", dest="config", help=f"compute-{kind}-feats options (Kaldi config file)")
    p.add_argument("--nj", type=int, default=4, help="parallel jobs")
    p.add_argument("--cmd", default="run.pl", help="accepted for compatibility with steps/*.sh; unused")
    p.add_argument("--compress", type=str2bool, default=True, help="must be true: archives are compressed")
    p.add_argument("--write-utt2num-frames", type=str2bool, default=True, help="always written")
    p.add_argument("--progress", type=str2bool, default=True, help="show a progress bar")
    args = p.parse_args(argv)
    if not Path(args.data_dir).is_dir():
        raise HdnnError(f"{args.data_dir}: no such data directory")
    log_dir = args.log_dir or f"{args.data_dir}/log"
    setup_logging(f"{log_dir}/make_{kind}.log")
    from hdnn.gmm.features import make_features

    make_features(args.data_dir, kind, args.config, log_dir, args.feat_dir, nj=args.nj,
                  progress=args.progress)


def main(argv=None):
    feature_main("mfcc", __doc__, argv)


if __name__ == "__main__":
    run_main(main)

#!/usr/bin/env python3
"""Speaker-independent forced alignment with a GMM system, as Kaldi's steps/align_si.sh.
Writes <align-dir>/{ali.JOB.gz,final.mdl,tree,num_jobs}; utterances that fail at --beam are
retried at --retry-beam, then skipped and counted."""
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging, str2bool
from hdnn.gmm.options import CMD_HELP

USAGE = """%(prog)s [options] <data-dir> <lang-dir> <src-dir> <align-dir>
 e.g.: %(prog)s --nj 2 data/ihm/train data/lang exp/ihm/mono exp/ihm/mono_ali"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("data_dir")
    p.add_argument("lang_dir")
    p.add_argument("src_dir")
    p.add_argument("align_dir")
    p.add_argument("--nj", type=int, default=4, help="parallel jobs (data split by speaker)")
    p.add_argument("--cmd", default="run.pl", help=CMD_HELP)
    p.add_argument("--beam", type=float, default=10.0, help="alignment beam")
    p.add_argument("--retry-beam", type=float, default=40.0, help="beam for utterances that failed")
    p.add_argument("--careful", type=str2bool, default=False, help="gmm-align-compiled --careful")
    p.add_argument("--boost-silence", type=float, default=1.0, help="scale of silence likelihoods")
    args = p.parse_args(argv)
    setup_logging(Path(args.align_dir) / "log" / "align_si.log")
    from hdnn.gmm.train import align_si

    res = align_si(args.data_dir, args.lang_dir, args.src_dir, args.align_dir, nj=args.nj, beam=args.beam,
                   retry_beam=args.retry_beam, careful=args.careful, boost_silence=args.boost_silence,
                   cmd=args.cmd)
    print(f"{args.align_dir}: {res.summary()}")


if __name__ == "__main__":
    run_main(main)

#!/usr/bin/env python3
"""Flat-start monophone GMM-HMM training, as Kaldi's steps/train_mono.sh: gmm-init-mono,
equal alignment, 40 iterations of Viterbi EM with realignment and mixing up to --totgauss.
Writes <dir>/{tree,final.mdl,final.occs,ali.JOB.gz,num_jobs} and <dir>/log/train_mono.log."""
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging, str2bool
from hdnn.gmm.options import CMD_HELP

USAGE = """%(prog)s [options] <data-dir> <lang-dir> <exp-dir>
 e.g.: %(prog)s --nj 2 data/ihm/train data/lang exp/ihm/mono"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("data_dir")
    p.add_argument("lang_dir")
    p.add_argument("exp_dir")
    p.add_argument("--nj", type=int, default=4, help="parallel jobs (data split by speaker)")
    p.add_argument("--cmd", default="run.pl", help=CMD_HELP)
    p.add_argument("--totgauss", type=int, default=1000, help="target number of Gaussians")
    p.add_argument("--num-iters", type=int, default=40, help="EM iterations")
    p.add_argument("--max-iter-inc", type=int, default=30, help="last iteration that adds Gaussians")
    p.add_argument("--initial-beam", type=float, default=6.0, help="alignment beam of the first pass")
    p.add_argument("--regular-beam", type=float, default=10.0, help="alignment beam after the first pass")
    p.add_argument("--retry-beam", type=float, default=40.0, help="beam for utterances that failed")
    p.add_argument("--careful", type=str2bool, default=False, help="gmm-align-compiled --careful")
    p.add_argument("--boost-silence", type=float, default=1.0, help="scale of silence likelihoods in alignment")
    p.add_argument("--power", type=float, default=0.25, help="exponent of occupancy for allocating Gaussians")
    p.add_argument("--progress", type=str2bool, default=True, help="show a progress bar")
    args = p.parse_args(argv)
    setup_logging(Path(args.exp_dir) / "log" / "train_mono.log")
    from hdnn.gmm.mono import MonoConfig, train_mono

    cfg = MonoConfig(num_iters=args.num_iters, max_iter_inc=args.max_iter_inc, initial_beam=args.initial_beam,
                     regular_beam=args.regular_beam, retry_beam=args.retry_beam, totgauss=args.totgauss,
                     careful=args.careful, boost_silence=args.boost_silence, power=args.power)
    train_mono(args.data_dir, args.lang_dir, args.exp_dir, nj=args.nj, config=cfg, cmd=args.cmd,
               progress=args.progress)


if __name__ == "__main__":
    run_main(main)

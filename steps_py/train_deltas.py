#!/usr/bin/env python3
"""Triphone GMM-HMM training on delta features, as Kaldi's steps/train_deltas.sh: tree
statistics, phone clustering, decision-tree building, gmm-init-model, convert-ali, then
35 iterations of Viterbi EM with realignment at iterations 10, 20 and 30.
Writes <exp-dir>/{tree,final.mdl,final.occs,ali.JOB.gz,num_jobs} and log/train_deltas.log."""
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging, str2bool

USAGE = """%(prog)s [options] <num-leaves> <tot-gauss> <data-dir> <lang-dir> <alignment-dir> <exp-dir>
 e.g.: %(prog)s 2000 10000 data/ihm/train data/lang exp/ihm/mono_ali exp/ihm/tri1"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("num_leaves", type=int)
    p.add_argument("tot_gauss", type=int)
    p.add_argument("data_dir")
    p.add_argument("lang_dir")
    p.add_argument("ali_dir")
    p.add_argument("exp_dir")
    p.add_argument("--nj", type=int, default=None, help="parallel jobs (default: num_jobs of <alignment-dir>)")
    p.add_argument("--cmd", default="run.pl", help="accepted for compatibility with steps/*.sh; unused")
    p.add_argument("--num-iters", type=int, default=35, help="EM iterations")
    p.add_argument("--max-iter-inc", type=int, default=25, help="last iteration that adds Gaussians")
    p.add_argument("--realign-iters", default="10 20 30", help="iterations that realign the data")
    p.add_argument("--beam", type=float, default=10.0, help="alignment beam")
    p.add_argument("--retry-beam", type=float, default=40.0, help="beam for utterances that failed")
    p.add_argument("--careful", type=str2bool, default=False, help="gmm-align-compiled --careful")
    p.add_argument("--boost-silence", type=float, default=1.0, help="scale of silence likelihoods")
    p.add_argument("--power", type=float, default=0.25, help="exponent of occupancy for allocating Gaussians")
    p.add_argument("--cluster-thresh", type=float, default=-1.0,
                   help="objf threshold of the bottom-up leaf merging (-1: the smallest split)")
    p.add_argument("--progress", type=str2bool, default=True, help="show a progress bar")
    args = p.parse_args(argv)
    setup_logging(Path(args.exp_dir) / "log" / "train_deltas.log")
    from hdnn.gmm.deltas import DeltasConfig, train_deltas

    cfg = DeltasConfig(num_iters=args.num_iters, max_iter_inc=args.max_iter_inc,
                       realign_iters=tuple(int(x) for x in args.realign_iters.split()), beam=args.beam,
                       retry_beam=args.retry_beam, careful=args.careful, boost_silence=args.boost_silence,
                       power=args.power, cluster_thresh=args.cluster_thresh)
    train_deltas(args.num_leaves, args.tot_gauss, args.data_dir, args.lang_dir, args.ali_dir, args.exp_dir,
                 nj=args.nj, config=cfg, progress=args.progress)


if __name__ == "__main__":
    run_main(main)

#!/usr/bin/env python3
"""LDA+MLLT triphone GMM-HMM training, as Kaldi's steps/train_lda_mllt.sh: CMVN features
spliced over +-3 frames and projected to --dim by LDA (classes: the pdfs of <alignment-dir>),
a decision tree, then 35 iterations of Viterbi EM with realignment at 10, 20, 30 and an MLLT
transform re-estimated at --mllt-iters. Writes <exp-dir>/{tree,final.mdl,final.mat,splice_opts,
final.occs,ali.JOB.gz,num_jobs} and log/train_lda_mllt.log."""
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging, str2bool

USAGE = """%(prog)s [options] <num-leaves> <tot-gauss> <data-dir> <lang-dir> <alignment-dir> <exp-dir>
 e.g.: %(prog)s 2500 15000 data/ihm/train data/lang exp/ihm/tri1_ali exp/ihm/tri2"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    for name in ("num_leaves", "tot_gauss"):
        p.add_argument(name, type=int)
    for name in ("data_dir", "lang_dir", "ali_dir", "exp_dir"):
        p.add_argument(name)
    p.add_argument("--nj", type=int, default=None, help="parallel jobs (default: num_jobs of <alignment-dir>)")
    p.add_argument("--cmd", default="run.pl", help="accepted for compatibility with steps/*.sh; unused")
    p.add_argument("--dim", type=int, default=40, help="dimension after LDA")
    p.add_argument("--left-context", type=int, default=3, help="frames spliced on the left")
    p.add_argument("--right-context", type=int, default=3, help="frames spliced on the right")
    p.add_argument("--mllt-iters", default="2 4 6 12", help="iterations that re-estimate MLLT")
    p.add_argument("--num-iters", type=int, default=35, help="EM iterations")
    p.add_argument("--max-iter-inc", type=int, default=25, help="last iteration that adds Gaussians")
    p.add_argument("--realign-iters", default="10 20 30", help="iterations that realign the data")
    p.add_argument("--beam", type=float, default=10.0, help="alignment beam")
    p.add_argument("--retry-beam", type=float, default=40.0, help="beam for utterances that failed")
    p.add_argument("--boost-silence", type=float, default=1.0, help="scale of silence likelihoods")
    p.add_argument("--power", type=float, default=0.25, help="exponent of occupancy for allocating Gaussians")
    p.add_argument("--cluster-thresh", type=float, default=-1.0,
                   help="objf threshold of the bottom-up leaf merging (-1: the smallest split)")
    p.add_argument("--progress", type=str2bool, default=True, help="show a progress bar")
    args = p.parse_args(argv)
    setup_logging(Path(args.exp_dir) / "log" / "train_lda_mllt.log")
    from hdnn.gmm.lda_mllt import LdaMlltConfig, train_lda_mllt

    ints = lambda s: tuple(int(x) for x in s.split())  # noqa: E731
    cfg = LdaMlltConfig(dim=args.dim, left_context=args.left_context, right_context=args.right_context,
                        mllt_iters=ints(args.mllt_iters), num_iters=args.num_iters,
                        max_iter_inc=args.max_iter_inc, realign_iters=ints(args.realign_iters), beam=args.beam,
                        retry_beam=args.retry_beam, boost_silence=args.boost_silence, power=args.power,
                        cluster_thresh=args.cluster_thresh)
    train_lda_mllt(args.num_leaves, args.tot_gauss, args.data_dir, args.lang_dir, args.ali_dir, args.exp_dir,
                   nj=args.nj, config=cfg, progress=args.progress)


if __name__ == "__main__":
    run_main(main)

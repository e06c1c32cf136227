#!/usr/bin/env python3
"""LDA+MLLT triphone GMM-HMM training, as Kaldi's steps/train_lda_mllt.sh: CMVN features
spliced over +-3 frames and projected to --dim by LDA (classes: the pdfs of <alignment-dir>),
a decision tree, then 35 iterations of Viterbi EM with realignment at 10, 20, 30 and an MLLT
transform re-estimated at --mllt-iters. Writes <exp-dir>/{tree,final.mdl,final.mat,splice_opts,
final.occs,ali.JOB.gz,num_jobs} and log/train_lda_mllt.log."""
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging
from hdnn.gmm.options import add_triphone_options, int_list, triphone_config

USAGE = """%(prog)s [options] <num-leaves> <tot-gauss> <data-dir> <lang-dir> <alignment-dir> <exp-dir>
 e.g.: %(prog)s 2500 15000 data/ihm/train data/lang exp/ihm/tri1_ali exp/ihm/tri2"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    add_triphone_options(p)
    p.add_argument("--dim", type=int, default=40, help="dimension after LDA")
    p.add_argument("--left-context", type=int, default=3, help="frames spliced on the left")
    p.add_argument("--right-context", type=int, default=3, help="frames spliced on the right")
    p.add_argument("--mllt-iters", default="2 4 6 12", help="iterations that re-estimate MLLT")
    args = p.parse_args(argv)
    setup_logging(Path(args.exp_dir) / "log" / "train_lda_mllt.log")
    from hdnn.gmm.lda_mllt import LdaMlltConfig, train_lda_mllt

    cfg = LdaMlltConfig(dim=args.dim, left_context=args.left_context, right_context=args.right_context,
                        mllt_iters=int_list(args.mllt_iters), **triphone_config(args))
    train_lda_mllt(args.num_leaves, args.tot_gauss, args.data_dir, args.lang_dir, args.ali_dir, args.exp_dir,
                   nj=args.nj, config=cfg, cmd=args.cmd, progress=args.progress)


if __name__ == "__main__":
    run_main(main)

#!/usr/bin/env python3
"""Triphone GMM-HMM training on delta features, as Kaldi's steps/train_deltas.sh: tree
statistics, phone clustering, decision-tree building, gmm-init-model, convert-ali, then
35 iterations of Viterbi EM with realignment at iterations 10, 20 and 30.
Writes <exp-dir>/{tree,final.mdl,final.occs,ali.JOB.gz,num_jobs} and log/train_deltas.log."""
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging
from hdnn.gmm.options import add_triphone_options, triphone_config

USAGE = """%(prog)s [options] <num-leaves> <tot-gauss> <data-dir> <lang-dir> <alignment-dir> <exp-dir>
 e.g.: %(prog)s 2000 10000 data/ihm/train data/lang exp/ihm/mono_ali exp/ihm/tri1"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    add_triphone_options(p)
    args = p.parse_args(argv)
    setup_logging(Path(args.exp_dir) / "log" / "train_deltas.log")
    from hdnn.gmm.deltas import DeltasConfig, train_deltas

    train_deltas(args.num_leaves, args.tot_gauss, args.data_dir, args.lang_dir, args.ali_dir, args.exp_dir,
                 nj=args.nj, config=DeltasConfig(**triphone_config(args)), cmd=args.cmd,
                 progress=args.progress)


if __name__ == "__main__":
    run_main(main)

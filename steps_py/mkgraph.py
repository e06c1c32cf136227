#!/usr/bin/env python3
"""The decoding graph HCLG.fst, as Kaldi's utils/mkgraph.sh: L_disambig o G determinised and
minimised, context expansion (C), the HMM transducer of the tree and model (H), disambiguation
symbols removed, self-loops added. Writes <graph-dir>/{HCLG.fst, words.txt, phones.txt, phones/,
disambig_tid.int, num_pdfs}; skips the work when HCLG.fst was made from the same inputs and
options (<graph-dir>/.stamp)."""
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging

USAGE = """%(prog)s [options] <lang-dir> <model-dir> <graph-dir>
 e.g.: %(prog)s data/lang_test exp/ihm/tri1 exp/ihm/tri1/graph"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("lang_dir")
    p.add_argument("model_dir")
    p.add_argument("graph_dir")
    p.add_argument("--transition-scale", type=float, default=1.0, help="scale of transition probabilities in H")
    p.add_argument("--self-loop-scale", type=float, default=0.1, help="scale of self-loop probabilities")
    args = p.parse_args(argv)
    setup_logging(Path(args.graph_dir) / "log" / "mkgraph.log")
    from hdnn.gmm.graph import mkgraph

    print(mkgraph(args.lang_dir, args.model_dir, args.graph_dir, transition_scale=args.transition_scale,
                  self_loop_scale=args.self_loop_scale))


if __name__ == "__main__":
    run_main(main)

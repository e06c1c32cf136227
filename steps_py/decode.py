#!/usr/bin/env python3
"""GMM decoding, as Kaldi's steps/decode.sh: CMVN + delta features, the model of <model-dir>
(default: the graph dir's parent) and HCLG.fst, --nj jobs split by speaker. Without lattice
determinisation in the wheels, the best path is decoded once per (LM weight, word insertion
penalty) of local/score.sh's sweep: <decode-dir>/tra/<LMWT>_<WIP>.tra; then scored (score.py)
unless --skip-scoring true. Utterances with no surviving token are retried with --retry-beam,
then output partially (as --allow-partial) or empty, and counted in decode_stats.txt.

--hyps-from DIR takes the hypotheses of another decode dir, searched at the same points with the
same graph and search options, for the utterances it holds, and searches only the others: the
recipe searches dev at the LM weight chosen on dev_tune, whose own hypotheses at that weight a
new search would find again."""
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging
from hdnn.gmm.options import add_decode_options, decode_config, round_scorer, score_decode

USAGE = """%(prog)s [options] <graph-dir> <data-dir> <decode-dir>
 e.g.: %(prog)s --nj 2 exp/ihm/tri1/graph data/ihm/dev exp/ihm/tri1/decode_dev
 e.g.: %(prog)s --nj 2 --min-lmwt 14 --max-lmwt 14 --word-ins-penalty 0.0 \\
          --hyps-from exp/ihm/tri1/decode_dev_tune exp/ihm/tri1/graph data/ihm/dev exp/ihm/tri1/decode_dev"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("graph_dir")
    p.add_argument("data_dir")
    p.add_argument("decode_dir")
    p.add_argument("--model-dir", help="dir of final.mdl and tree (default: the graph dir's parent)")
    add_decode_options(p)
    args = p.parse_args(argv)
    setup_logging(Path(args.decode_dir) / "log" / "decode.log")
    from hdnn.gmm.decode import decode_gmm

    stats = decode_gmm(args.graph_dir, args.data_dir, args.decode_dir, model_dir=args.model_dir, nj=args.nj,
                       config=decode_config(args), cmd=args.cmd, progress=args.progress,
                       score=round_scorer(args, args.graph_dir), hyps_from=args.hyps_from)
    score_decode(args, args.graph_dir, stats)


if __name__ == "__main__":
    run_main(main)

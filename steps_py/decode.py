#!/usr/bin/env python3
"""GMM decoding, as Kaldi's steps/decode.sh: CMVN + delta features, the model of <model-dir>
(default: the graph dir's parent) and HCLG.fst, --nj jobs split by speaker. Without lattice
determinisation in the wheels, the best path is decoded once per (LM weight, word insertion
penalty) of local/score.sh's sweep: <decode-dir>/tra/<LMWT>_<WIP>.tra; then scored (score.py)
unless --skip-scoring true. Utterances with no surviving token are retried with --retry-beam,
then output partially (as --allow-partial) or empty, and counted in decode_stats.txt."""
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging, str2bool

USAGE = """%(prog)s [options] <graph-dir> <data-dir> <decode-dir>
 e.g.: %(prog)s --nj 2 exp/ihm/tri1/graph data/ihm/dev exp/ihm/tri1/decode_dev"""


def add_decode_options(p):
    p.add_argument("--nj", type=int, default=4, help="parallel jobs")
    p.add_argument("--cmd", default="run.pl", help="accepted for compatibility with steps/*.sh; unused")
    p.add_argument("--beam", type=float, default=13.0, help="decoding beam")
    p.add_argument("--max-active", type=int, default=7000, help="maximum active states")
    p.add_argument("--min-active", type=int, default=200, help="minimum active states")
    p.add_argument("--retry-beam", type=float, default=30.0,
                   help="beam of the second try when no token reaches a final state")
    p.add_argument("--min-lmwt", type=int, default=7, help="smallest LM weight of the sweep")
    p.add_argument("--max-lmwt", type=int, default=17, help="largest LM weight of the sweep")
    p.add_argument("--word-ins-penalty", default="0.0,0.5,1.0", help="comma-separated penalties of the sweep")
    p.add_argument("--search", choices=("grid", "coarse"), default="grid",
                   help="grid: every LM weight of the range; coarse: coarse-to-fine around the best "
                        "(scored between rounds; about half the searches on a wide range)")
    p.add_argument("--skip-scoring", type=str2bool, default=False, help="do not score")
    p.add_argument("--progress", type=str2bool, default=True, help="show a progress bar")


def decode_config(args):
    from hdnn.gmm.decode import DecodeConfig

    return DecodeConfig(beam=args.beam, max_active=args.max_active, min_active=args.min_active,
                        retry_beam=args.retry_beam, min_lmwt=args.min_lmwt, max_lmwt=args.max_lmwt,
                        word_ins_penalty=tuple(w.strip() for w in args.word_ins_penalty.split(",")),
                        search=args.search)


def round_scorer(args, lang_dir):
    """score(points) for the rounds of a coarse-to-fine search (None with --skip-scoring)."""
    if args.skip_scoring:
        return None
    from hdnn.scoring import score_points

    return lambda points: score_points(args.data_dir, lang_dir, args.decode_dir, sweep=points)


def score_decode(args, lang_dir, stats):
    """Score the settings decoded and print the best %WER line."""
    if args.skip_scoring:
        return
    from hdnn.scoring import score

    score(args.data_dir, lang_dir, args.decode_dir, sweep=stats.points)
    print((Path(args.decode_dir) / "scoring_kaldi" / "best_wer").read_text().strip())


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
                       config=decode_config(args), progress=args.progress,
                       score=round_scorer(args, args.graph_dir))
    score_decode(args, args.graph_dir, stats)


if __name__ == "__main__":
    run_main(main)

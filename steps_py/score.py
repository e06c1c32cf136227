#!/usr/bin/env python3
"""Scoring of a decode dir, as Kaldi's local/score.sh (steps/score_kaldi.sh) with NIST sclite:
every (LM weight, word insertion penalty) of the decode's sweep against <data-dir>/text.
Writes <decode-dir>/wer_<LMWT>_<WIP>, scoring_kaldi/best_wer and sclite's reports
(scoring_kaldi/sclite/*.sys with per-speaker results); prints the best %WER line."""
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging
from hdnn.errors import HdnnError

USAGE = """%(prog)s [options] <data-dir> <lang-dir|graph-dir> <decode-dir>
 e.g.: %(prog)s data/ihm/dev exp/ihm/tri1/graph exp/ihm/tri1/decode_dev"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("data_dir")
    p.add_argument("lang_dir")
    p.add_argument("decode_dir")
    p.add_argument("--cmd", default="run.pl",
                   help="how the scoring jobs (one per penalty) run: run.pl (built in), queue.pl, slurm.pl, ...")
    p.add_argument("--min-lmwt", type=int, help="smallest LM weight (default: all decoded)")
    p.add_argument("--max-lmwt", type=int, help="largest LM weight (default: all decoded)")
    p.add_argument("--word-ins-penalty", help="comma-separated penalties (default: all decoded)")
    args = p.parse_args(argv)
    setup_logging(Path(args.decode_dir) / "scoring_kaldi" / "log" / "score.log")
    from hdnn.scoring import score, sweep_of

    sweep = sweep_of(args.decode_dir)
    if args.min_lmwt is not None:
        sweep = [k for k in sweep if k[0] >= args.min_lmwt]
    if args.max_lmwt is not None:
        sweep = [k for k in sweep if k[0] <= args.max_lmwt]
    if args.word_ins_penalty:
        wips = {w.strip() for w in args.word_ins_penalty.split(",")}
        sweep = [k for k in sweep if k[1] in wips]
    if not sweep:
        raise HdnnError(f"{args.decode_dir}: no decoded LM weight and penalty in the requested range")
    score(args.data_dir, args.lang_dir, args.decode_dir, sweep=sweep, cmd=args.cmd)
    print((Path(args.decode_dir) / "scoring_kaldi" / "best_wer").read_text().strip())


if __name__ == "__main__":
    run_main(main)

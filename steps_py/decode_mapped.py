#!/usr/bin/env python3
"""Decoding of an nnet's pdf log-likelihoods, as latgen-faster-mapped in Kaldi's
steps/nnet/decode.sh: the transition model of <model-dir>/final.mdl maps pdfs to the graph's
transition-ids. The log-likelihoods (log posteriors minus log priors, as nnet-forward
--class-frame-counts writes them) come from an rspecifier; a JOB in it is replaced by the job
number. Best paths per (LM weight, word insertion penalty): <decode-dir>/tra/<LMWT>_<WIP>.tra,
scored against <data-dir>/text unless --skip-scoring true.

--hyps-from DIR takes the hypotheses of another decode dir, searched at the same points with the
same graph and search options, for the utterances it holds, and searches only the others: the
recipe searches dev's other half (its log-likelihoods alone) at the LM weight chosen on dev_tune
and takes dev_tune's own hypotheses at that weight, which a new search would find again."""
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging
from hdnn.gmm.options import add_decode_options, decode_config, round_scorer, score_decode

USAGE = """%(prog)s [options] <graph-dir> <data-dir> <model-dir> <loglike-rspecifier> <decode-dir>
 e.g.: %(prog)s --nj 2 exp/ihm/tri1/graph data/ihm/dev exp/ihm/tri1_ali \\
          scp:exp/ihm/student/decode_dev/loglikes.scp exp/ihm/student/decode_dev
 e.g.: %(prog)s --nj 2 --min-lmwt 11 --max-lmwt 11 --word-ins-penalty 0.0 \\
          --hyps-from exp/ihm/student/decode_dev_tune exp/ihm/tri1/graph data/ihm/dev exp/ihm/tri1_ali \\
          scp:exp/ihm/student/decode_dev/loglikes.scp exp/ihm/student/decode_dev"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("graph_dir")
    p.add_argument("data_dir")
    p.add_argument("model_dir")
    p.add_argument("loglikes")
    p.add_argument("decode_dir")
    add_decode_options(p)
    p.set_defaults(min_lmwt=4, max_lmwt=15)
    args = p.parse_args(argv)
    setup_logging(Path(args.decode_dir) / "log" / "decode.log")
    from hdnn.gmm.decode import decode_mapped

    stats = decode_mapped(args.graph_dir, args.model_dir, args.loglikes, args.decode_dir, nj=args.nj,
                          config=decode_config(args), cmd=args.cmd, progress=args.progress,
                          score=round_scorer(args, args.graph_dir), hyps_from=args.hyps_from)
    score_decode(args, args.graph_dir, stats)


if __name__ == "__main__":
    run_main(main)

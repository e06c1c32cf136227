"""One job of an alignment pass (steps_py/train_*.py, align_si.py, align_mapped.py):
compile-train-graphs for the transcripts of <data> (the job's split), then gmm-align-compiled
with <model-dir>/<model>, align-equal-compiled (--equal), or align-compiled-mapped on an nnet's
log-likelihoods (--loglikes); the alignments into <ali-out> (ali.JOB.gz)."""
from hdnn.cli import get_parser, run_main, setup_logging, str2bool

USAGE = """python -m hdnn.bin.gmm_align [options] <model-dir> <model> <lang-dir> <data> <ali-out>
 e.g.: python -m hdnn.bin.gmm_align --beam=10 exp/ihm/mono 12.mdl data/lang data/ihm/train/split2/1 \\
          exp/ihm/mono/ali.1.gz"""


def add_feature_options(p):
    """The options that say how a job computes its model's features."""
    p.add_argument("--transform", help="LDA+MLLT matrix: spliced CMVN features times it (default: CMVN + deltas)")
    p.add_argument("--context", default="3:3", help="splice context LEFT:RIGHT of --transform")
    p.add_argument("--loglikes", help="rspecifier of an nnet's pdf log-likelihoods instead of features")


def feature_args(args):
    context = tuple(int(c) for c in args.context.split(":"))
    return {"transform": args.transform, "context": context}


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    for name in ("model_dir", "model", "lang_dir", "data_dir", "ali_out"):
        p.add_argument(name)
    p.add_argument("--equal", action="store_true", help="align-equal-compiled (no model scores)")
    p.add_argument("--beam", type=float, default=10.0)
    p.add_argument("--retry-beam", type=float, default=40.0)
    p.add_argument("--careful", type=str2bool, default=False)
    p.add_argument("--boost-silence", type=float, default=1.0)
    p.add_argument("--summary", help="write the counts (failed, retried, likelihood) here as JSON")
    add_feature_options(p)
    args = p.parse_args(argv)
    setup_logging()
    from hdnn.gmm.train import align_job

    align_job(args.model_dir, args.model, args.lang_dir, args.data_dir, args.ali_out, beam=args.beam,
              retry_beam=args.retry_beam, careful=args.careful, boost=args.boost_silence, equal=args.equal,
              loglikes=args.loglikes, summary=args.summary, **feature_args(args))


if __name__ == "__main__":
    run_main(main)

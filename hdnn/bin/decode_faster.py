"""One job of a decode (steps_py/decode.py, decode_mapped.py): Kaldi's decode-faster on a GMM's
likelihoods of CMVN + delta features (--features, the job's split data dir), or
latgen-faster-mapped's search on an nnet's pdf log-likelihoods (--loglikes), best paths at each
(LM weight, word insertion penalty) of --points into <decode-dir>/tra/<LMWT>_<WIP>.<job>.tra and
the marker <decode-dir>/tra/.done.<job>."""
from hdnn.cli import get_parser, run_main, setup_logging

USAGE = """python -m hdnn.bin.decode_faster [options] <graph-dir> <model-dir> <decode-dir> <job>
 e.g.: python -m hdnn.bin.decode_faster --features=data/ihm/dev/split2/1 --points=10_0.0,11_0.0 \\
          exp/ihm/tri/graph exp/ihm/tri exp/ihm/tri/decode_dev 1"""


def points(s):
    """"10_0.0,11_0.0" -> ((10, "0.0"), (11, "0.0"))."""
    return tuple((int(p.split("_", 1)[0]), p.split("_", 1)[1]) for p in s.split(","))


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("graph_dir")
    p.add_argument("model_dir")
    p.add_argument("decode_dir")
    p.add_argument("job", type=int)
    p.add_argument("--features", help="data dir of the job's utterances (GMM decoding)")
    p.add_argument("--delta-order", type=int, default=2, help="delta order of the GMM's features")
    p.add_argument("--loglikes", help="rspecifier of the job's pdf log-likelihoods (nnet decoding)")
    p.add_argument("--points", type=points, required=True, help="LMWT_WIP,... to decode")
    p.add_argument("--nj", type=int, default=1, help="number of jobs (for the log)")
    p.add_argument("--beam", type=float, default=13.0)
    p.add_argument("--max-active", type=int, default=7000)
    p.add_argument("--min-active", type=int, default=200)
    p.add_argument("--retry-beam", type=float, default=30.0)
    p.add_argument("--skip-utts", help="file whose lines start with utterances not to search (their "
                                       "hypotheses are taken from another decode dir)")
    args = p.parse_args(argv)
    setup_logging()
    from hdnn.gmm.decode import DecodeConfig, decode_job

    config = DecodeConfig(beam=args.beam, max_active=args.max_active, min_active=args.min_active,
                          retry_beam=args.retry_beam, points=args.points)
    decode_job(args.job, args.nj, args.decode_dir, args.graph_dir, args.model_dir, config,
               features=args.features, delta_order=args.delta_order, loglikes=args.loglikes,
               skip_utts=args.skip_utts)


if __name__ == "__main__":
    run_main(main)

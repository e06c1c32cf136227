#!/usr/bin/env python3
"""Forward a data dir through a trained model and write a Kaldi table, like Kaldi's
`nnet-forward --no-softmax=true --class-frame-counts=<model-dir>/ali_train_pdf.counts`:
per utterance a (frames x pdfs) matrix of log-likelihoods log P(s|x) - log P(s), for
latgen-faster-mapped. Alternatively log-posteriors, or top-k posteriors (a Kaldi Posterior
table, e.g. stored teacher targets for train.py --teacher-post).

The features are prepared as in training (the model dir's feature_opts.json, global_cmvn.npz).
With --spk-params DIR each utterance is forwarded through its speaker's adapted model
(DIR/<spk>.pt from steps_py/adapt.py, found through utt2spk); a speaker without a file is an error.
"""
import math

from hdnn.cli import get_parser, run_main, set_torch_threads, setup_logging, str2bool
from hdnn.errors import HdnnError
from hdnn.nnet.forward import OUTPUTS

USAGE = """%(prog)s [options] <data-dir> <model-dir> <wspecifier>
 e.g.: %(prog)s data/dev exp/hdnn ark,scp:exp/hdnn/loglikes_dev.ark,exp/hdnn/loglikes_dev.scp
       %(prog)s data/dev exp/hdnn ark:- | latgen-faster-mapped ... ark:- ...
       %(prog)s --output posteriors --topk 20 data/train exp/dnn ark,scp:post.ark,post.scp
       %(prog)s --spk-params exp/hdnn_adapt/spk data/dev exp/hdnn_adapt ark:- | ..."""


def get_args(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("data_dir")
    p.add_argument("model_dir")
    p.add_argument("wspecifier", help="ark,scp:A.ark,A.scp or ark:- (stdout) or ark:| command")
    p.add_argument("--output", default="loglikes", choices=OUTPUTS)
    p.add_argument("--model", help="model file (default: <model-dir>/final.pt)")
    p.add_argument("--class-frame-counts", help="pdf counts for the priors (default: <model-dir>/ali_train_pdf.counts)")
    p.add_argument("--prior-floor", type=float, default=1e-10, help="classes rarer than this are never chosen")
    p.add_argument("--topk", type=int, default=20, help="posteriors: pdfs kept per frame")
    p.add_argument("--min-weight", type=float, default=0.0, help="posteriors: drop pdfs under this weight")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature of (log-)posteriors")
    p.add_argument("--spk-params", help="dir of per-speaker adapted parameters (<spk>.pt, steps_py/adapt.py)")
    p.add_argument("--log-file", help="also log to this file")
    p.add_argument("--verbose", type=str2bool, default=False)
    args = p.parse_args(argv)
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        raise HdnnError(f"--temperature {args.temperature}: must be a positive number")
    if args.topk < 1:
        raise HdnnError(f"--topk {args.topk}: must be at least 1")
    return args


def main(argv=None):
    args = get_args(argv)
    setup_logging(args.log_file, args.verbose)
    set_torch_threads()
    from hdnn.nnet.forward import forward_dir

    forward_dir(args.data_dir, args.model_dir, args.wspecifier, args.output, args.model, args.class_frame_counts,
                args.prior_floor, args.topk, args.min_weight, args.temperature, args.spk_params)


if __name__ == "__main__":
    run_main(main)

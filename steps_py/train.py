#!/usr/bin/env python3
"""Train a frame-level acoustic model (DNN teacher or HDNN student) on Kaldi data, like
Kaldi's steps/nnet/train.sh: cross-entropy on pdf alignments, or knowledge distillation from a
teacher (--teacher: run on the fly; --teacher-post: stored top-k posteriors), SGD with
nnet1's newbob learning-rate schedule (or Adam), checkpoints every epoch.

Re-running the same command resumes after the last complete epoch. For data-parallel training,
start it with `torchrun --nproc_per_node N steps_py/train.py ...`.

Writes <exp-dir>/final.pt, nnet/epoch*.pt, checkpoint.pt, final.feature_transform,
feature_opts.json, global_cmvn.npz, ali_train_pdf.counts, curves.png and log/train.log.
"""
import logging
import sys
from pathlib import Path

from hdnn.cli import get_parser, run_main, set_torch_threads, setup_logging, str2bool
from hdnn.errors import HdnnError
from hdnn.nnet.models import PRESETS

USAGE = """%(prog)s [options] <data-tr> <data-cv> <targets> <exp-dir>
       %(prog)s [options] --cv-fraction F <data> <targets> <exp-dir>
 <targets>: an alignment dir (ali.*.gz + final.mdl) or a pdf-id rspecifier (scp:ali.scp, ark:...)
 e.g.: %(prog)s --model-preset student-small --teacher exp/dnn/final.pt \\
           data/train_tr90 data/train_cv10 exp/tri3_ali exp/hdnn_kd"""


def get_args(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("dirs", nargs="+", metavar="ARG", help="see usage")
    p.add_argument("--cv-fraction", type=float, help="split <data> by speaker, this fraction of speakers held out for CV")
    g = p.add_argument_group("model")
    g.add_argument("--model-preset", default="dnn-small", choices=sorted(PRESETS), help="architecture")
    g.add_argument("--num-pdfs", type=int, help="number of outputs (default: from the alignments)")
    g = p.add_argument_group("knowledge distillation")
    g.add_argument("--teacher", help="teacher model file (e.g. exp/dnn/final.pt), run on the fly; "
                                     "its dir's feature set-up is used for the student too")
    g.add_argument("--teacher-post", help="rspecifier of stored teacher posteriors (Kaldi Posterior, top-k)")
    g.add_argument("--kd-lambda", type=float, default=0.5, help="weight of the soft targets")
    g.add_argument("--kd-temperature", type=float, default=1.0, help="softmax temperature of the soft targets")
    g.add_argument("--untranscribed", metavar="DATA",
                   help="a data dir of untranscribed audio (features, no text) to train on with the soft targets "
                        "alone: each of its frames costs the soft term at full weight, as if --kd-lambda were 1 "
                        "(utterances of CV speakers are left out); needs --teacher or --teacher-post")
    g = p.add_argument_group("optimisation (nnet1's train_scheduler.sh)")
    g.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    g.add_argument("--learn-rate", type=float, help="sgd: per frame, as nnet1 (default 0.008); adam: 0.001")
    g.add_argument("--momentum", type=float, default=0.0, help="sgd momentum")
    g.add_argument("--minibatch-size", type=int, default=256, help="frames per minibatch (per process)")
    g.add_argument("--randomizer-size", type=int, default=32768, help="frames in the shuffling buffer")
    g.add_argument("--seed", type=int, default=777, help="seed of initialisation and frame shuffling")
    g.add_argument("--max-iters", type=int, default=20, help="most epochs")
    g.add_argument("--min-iters", type=int, default=0, help="fewest epochs")
    g.add_argument("--keep-lr-iters", type=int, default=0, help="epochs before the learning rate may change")
    g.add_argument("--start-halving-impr", type=float, default=0.01, help="halve once CV improves less")
    g.add_argument("--end-halving-impr", type=float, default=0.001, help="stop once CV improves less")
    g.add_argument("--halving-factor", type=float, default=0.5)
    g.add_argument("--max-epochs-this-run", type=int, help="stop after this many epochs (run again to resume)")
    g = p.add_argument_group("features and targets")
    g.add_argument("--apply-cmvn", type=str2bool, default=True, help="per-speaker CMVN from cmvn.scp")
    g.add_argument("--norm-vars", type=str2bool, default=False, help="CMVN with variance normalisation")
    g.add_argument("--splice", type=int, default=5, help="frames of context on each side")
    g.add_argument("--global-cmvn", type=str2bool, default=True, help="global mean/variance normalisation")
    g.add_argument("--length-tolerance", type=int, default=5, help="most frames features and targets may differ by")
    g.add_argument("--max-skip-fraction", type=float, default=0.1,
                   help="error when more utterances than this lack targets or mismatch in length")
    g = p.add_argument_group("devices")
    g.add_argument("--use-gpu", default="no", choices=["no", "yes", "optional"],
                   help="train on a GPU (yes: one per process, torchrun's LOCAL_RANK; optional: when there is one); "
                        "data-parallel runs on GPUs use NCCL, on CPUs gloo")
    p.add_argument("--verbose", type=str2bool, default=False)
    args = p.parse_args(argv)
    want = 3 if args.cv_fraction is not None else 4
    if len(args.dirs) != want:
        p.error(f"expected {want} arguments, got {len(args.dirs)} (see usage)")
    if args.teacher and args.teacher_post:
        p.error("give --teacher or --teacher-post, not both")
    if args.untranscribed and not (args.teacher or args.teacher_post):
        p.error("--untranscribed needs a teacher (--teacher or --teacher-post): its frames have soft targets only")
    if args.cv_fraction is not None and not 0.0 < args.cv_fraction < 1.0:
        raise HdnnError(f"--cv-fraction {args.cv_fraction}: must be in (0, 1)")
    return args


def main(argv=None):
    args = get_args(argv)
    set_torch_threads()
    from hdnn.nnet import distributed
    from hdnn.nnet.train import TrainConfig

    device = distributed.select_device(args.use_gpu)
    rank, world_size = distributed.init_from_env(device)
    exp_dir = Path(args.dirs[-1])
    setup_logging(exp_dir / "log" / ("train.log" if rank == 0 else f"train.rank{rank}.log"), args.verbose)
    if rank > 0:  # the other ranks log to their files; only warnings reach the terminal
        logging.getLogger().handlers[0].setLevel(logging.WARNING)
    if world_size > 1:
        logging.info("data-parallel training: rank %d of %d", rank, world_size)
    logging.info("training on %s", device)
    if args.cv_fraction is not None:
        tr_dir, cv_dir = split_tr_cv(args.dirs[0], exp_dir, args.cv_fraction, args.seed)
    else:
        tr_dir, cv_dir = args.dirs[:2]
    config = TrainConfig(**{k: getattr(args, k) for k in (
        "optimizer", "learn_rate", "momentum", "minibatch_size", "randomizer_size", "seed", "max_iters",
        "min_iters", "keep_lr_iters", "start_halving_impr", "end_halving_impr", "halving_factor",
        "kd_lambda", "kd_temperature")})
    try:
        _train(args, tr_dir, cv_dir, exp_dir, config, device)
    except HdnnError as e:
        if args.cv_fraction is None:
            raise
        # the split's data dirs are copies of lines of <data>: name the user's files, not the copies
        raise HdnnError(str(e).replace(str(tr_dir), args.dirs[0]).replace(str(cv_dir), args.dirs[0])) from None
    finally:
        distributed.shutdown()


def _train(args, tr_dir, cv_dir, exp_dir, config, device):
    from hdnn.nnet.train import train_from_dirs

    train_from_dirs(tr_dir, cv_dir, args.dirs[-2], exp_dir, args.model_preset, config,
                    teacher=args.teacher, teacher_post=args.teacher_post, num_pdfs=args.num_pdfs,
                    length_tolerance=args.length_tolerance, max_skip_fraction=args.max_skip_fraction,
                    max_epochs_this_run=args.max_epochs_this_run, device=device,
                    untranscribed=args.untranscribed, cmvn=args.apply_cmvn,
                    norm_vars=args.norm_vars, splice=args.splice, global_cmvn=args.global_cmvn)


def split_tr_cv(data_dir, exp_dir, cv_fraction, seed):
    """<exp-dir>/data/{tr,cv}: a by-speaker split of data_dir (utils/subset_data_dir_tr_cv.sh)."""
    from hdnn.kaldi.data_dir import subset_tr_cv
    from hdnn.nnet import distributed

    tr_dir, cv_dir = exp_dir / "data" / "tr", exp_dir / "data" / "cv"
    if distributed.is_main():
        subset_tr_cv(data_dir, tr_dir, cv_dir, cv_fraction=cv_fraction, seed=seed)
    distributed.barrier()
    return tr_dir, cv_dir


if __name__ == "__main__":
    run_main(main, sys.argv[1:])

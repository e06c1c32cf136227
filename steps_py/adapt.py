#!/usr/bin/env python3
"""Speaker adaptation of a trained model: for each speaker of <data-dir>, fine-tune a copy of
<model-dir>/final.pt on that speaker's audio and keep only the adapted parameters, one small
file per speaker in <exp-dir>/spk/<spk>.pt. <exp-dir> also gets the model dir's files, so
that `forward.py --spk-params <exp-dir>/spk <data> <exp-dir> ...` decodes with the adapted
models.

Targets: an alignment dir or pdf-id rspecifier (supervised: of the reference transcript;
unsupervised: of a first pass's hypotheses, e.g. steps_py/align_mapped.py on a data dir whose
text is the first pass's output), or --teacher: a teacher model's posteriors on the same audio
(no transcript, no first pass). The unadapted model's posteriors regularise the targets
(--kld-rho, Yu et al. 2013), and held-out utterances of each speaker stop the training early;
see hdnn/nnet/adapt.py. A rerun skips speakers whose file was made from the same model and
options and redoes the others.
"""
import logging
from pathlib import Path

from hdnn.cli import get_parser, run_main, set_torch_threads, setup_logging, str2bool
from hdnn.nnet.adapt import UPDATES

USAGE = """%(prog)s [options] <data-dir> <model-dir> <targets> <exp-dir>
       %(prog)s [options] --teacher <teacher-model> <data-dir> <model-dir> <exp-dir>
 <targets>: an alignment dir (ali.*.gz + final.mdl) or a pdf-id rspecifier
 e.g.: %(prog)s --update gates data/ihm/dev_fbank exp/ihm/student_kd exp/ihm/student_kd/ali_dev_1pass \\
           exp/ihm/student_adapt_unsup
       %(prog)s --teacher exp/ihm/teacher/final.pt data/ihm/dev_fbank exp/ihm/student_kd \\
           exp/ihm/student_adapt_teacher"""


def get_args(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("dirs", nargs="+", metavar="ARG", help="see usage")
    p.add_argument("--teacher", help="teacher model file: adapt to its posteriors (no transcript)")
    p.add_argument("--update", default="gates", choices=UPDATES,
                   help="what is adapted: the HDNN's gates, LHUC scales, or every weight")
    p.add_argument("--learn-rate", type=float, default=0.002, help="SGD learning rate per frame (as nnet1)")
    p.add_argument("--max-epochs", type=int, default=5, help="most passes over a speaker's data")
    p.add_argument("--minibatch-size", type=int, default=256)
    p.add_argument("--kld-rho", type=float, default=0.5,
                   help="weight of the unadapted model's posteriors in the targets (0: none)")
    p.add_argument("--held-out", type=float, default=0.1,
                   help="fraction of each speaker's utterances held out to stop early (0: no stopping)")
    p.add_argument("--min-confidence", type=float, default=0.0,
                   help="alignments: drop frames whose aligned pdf has less unadapted posterior")
    p.add_argument("--max-seconds", type=float, default=0.0,
                   help="adapt on the first this many seconds of each speaker's utterances (0: all of them)")
    p.add_argument("--seed", type=int, default=777)
    p.add_argument("--verbose", type=str2bool, default=False)
    args = p.parse_args(argv)
    want = 3 if args.teacher else 4
    if len(args.dirs) != want:
        p.error(f"expected {want} arguments, got {len(args.dirs)} (see usage)")
    return args


def main(argv=None):
    args = get_args(argv)
    exp_dir = Path(args.dirs[-1])
    setup_logging(exp_dir / "log" / f"adapt.{Path(args.dirs[0]).name}.log", args.verbose)
    set_torch_threads()
    from hdnn.nnet.adapt import AdaptConfig, adapt_dir

    config = AdaptConfig(**{k: getattr(args, k) for k in (
        "update", "learn_rate", "max_epochs", "minibatch_size", "kld_rho", "held_out", "min_confidence",
        "max_seconds", "seed")})
    targets = None if args.teacher else args.dirs[2]
    reports = adapt_dir(args.dirs[0], args.dirs[1], exp_dir, config, targets=targets, teacher=args.teacher)
    frames = sum(r["frames"] for r in reports.values())
    summary = f"{exp_dir}: adapted {args.update} for {len(reports)} speakers on {frames} frames"
    logging.info(summary)
    print(summary)


if __name__ == "__main__":
    run_main(main)

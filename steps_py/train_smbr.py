#!/usr/bin/env python3
"""Sequence-discriminative training (sMBR by default) of a trained model, like Kaldi nnet1's
steps/nnet/train_mpe.sh --do-smbr true: per-utterance SGD on the expected frame accuracy over
denominator lattices (made by latgen-faster-mapped from the model's log-likelihoods), the
network's scores replacing the lattices' acoustic costs (see hdnn/nnet/smbr.py).

<ali-dir>: transition-id alignments (ali.*.gz + final.mdl) of the reference transcripts;
<denlat-dir>: lat.*.gz, or den_graph.npz: the lattice-free denominator of
steps_py/make_den_graph.py (a transition-id bigram of the training alignments), for a Kaldi-free
setup. With --teacher and --ts-weight the loss mixes in the teacher's soft
targets (teacher-student sMBR); --update gates trains only the HDNN's gates. <exp-dir> becomes a
model dir (final.pt, nnet/iter<N>.pt, curve.tsv, log/train_smbr.log); a killed run resumes.
"""
import logging
from pathlib import Path

from hdnn.cli import get_parser, run_main, set_torch_threads, setup_logging, str2bool
from hdnn.nnet.smbr import CRITERIA, UPDATES, SmbrConfig

USAGE = """%(prog)s [options] <data-dir> <lang-dir> <model-dir> <ali-dir> <denlat-dir> <exp-dir>
 e.g.: %(prog)s data/ihm/train_fbank data/lang exp/ihm/student_kd exp/ihm/student_kd_ali \\
           exp/ihm/student_kd_denlats exp/ihm/student_smbr"""

OPTIONS = ("criterion", "learn_rate", "num_iters", "acoustic_scale", "lm_scale", "one_silence_class", "smooth",
           "ts_weight", "temperature", "update", "seed")


def get_args(argv=None):
    d = SmbrConfig()
    p = get_parser(__doc__, usage=USAGE)
    for name in ("data_dir", "lang_dir", "model_dir", "ali_dir", "denlat_dir", "exp_dir"):
        p.add_argument(name)
    p.add_argument("--criterion", default=d.criterion, choices=CRITERIA)
    p.add_argument("--learn-rate", type=float, default=d.learn_rate,
                   help="SGD learning rate per utterance (gradient summed over frames, as nnet1)")
    p.add_argument("--num-iters", type=int, default=d.num_iters, help="passes over the training data")
    p.add_argument("--acoustic-scale", type=float, default=d.acoustic_scale, help="kappa")
    p.add_argument("--lm-scale", type=float, default=d.lm_scale, help="scale of the lattices' graph costs (a den_graph.npz's are used at scale 1)")
    p.add_argument("--one-silence-class", type=str2bool, default=d.one_silence_class,
                   help="silence against silence counts as correct (false: silence never does)")
    p.add_argument("--smooth", type=float, default=d.smooth, help="weight of frame cross-entropy on the alignment")
    p.add_argument("--teacher", help="teacher model file, for --ts-weight")
    p.add_argument("--ts-weight", type=float, default=d.ts_weight,
                   help="weight of tau^2 KL(teacher || model) against the sequence criterion")
    p.add_argument("--temperature", type=float, default=d.temperature, help="tau of the teacher term")
    p.add_argument("--update", default=d.update, choices=UPDATES, help="train every weight or only the gates")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--verbose", type=str2bool, default=False)
    return p.parse_args(argv)


def main(argv=None):
    args = get_args(argv)
    setup_logging(Path(args.exp_dir) / "log" / "train_smbr.log", args.verbose)
    set_torch_threads()
    from hdnn.nnet.smbr import train_smbr

    config = SmbrConfig(**{k: getattr(args, k) for k in OPTIONS})
    final = train_smbr(args.data_dir, args.model_dir, args.ali_dir, args.denlat_dir, args.lang_dir, args.exp_dir,
                       config, teacher=args.teacher)
    logging.info("done: %s", final)
    print(final)


if __name__ == "__main__":
    run_main(main)

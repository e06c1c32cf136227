#!/usr/bin/env python3
"""Forced alignment with an nnet, as Kaldi's steps/nnet/align.sh (compile-train-graphs, then
align-compiled-mapped on the nnet's pdf log-likelihoods, acoustic scale 0.1, transition and
self-loop scales 1.0 and 0.1): the transcripts of <data-dir> aligned with the log-likelihoods
in <loglikes-scp> (steps_py/forward.py) and the transition model and tree of <model-dir>.
Writes <align-dir>/{ali.JOB.gz,final.mdl,tree,num_jobs}; utterances that fail at --beam are
retried at --retry-beam, then skipped and counted.

With a data dir whose text is a first decoding pass's output, the alignments are the
unsupervised adaptation targets of steps_py/adapt.py."""
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging
from hdnn.gmm.options import CMD_HELP

USAGE = """%(prog)s [options] <data-dir> <lang-dir> <model-dir> <loglikes-scp> <align-dir>
 e.g.: %(prog)s --nj 2 data/ihm/dev_1pass data/lang exp/ihm/tri_ali \\
           scp:exp/ihm/student_kd/loglikes_dev.scp exp/ihm/student_kd/ali_dev_1pass"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("data_dir")
    p.add_argument("lang_dir")
    p.add_argument("model_dir", help="holds final.mdl and tree (e.g. the nnet's alignment dir)")
    p.add_argument("loglikes", help="scp table of pdf log-likelihoods (random access)")
    p.add_argument("align_dir")
    p.add_argument("--nj", type=int, default=4, help="parallel jobs (data split by speaker)")
    p.add_argument("--cmd", default="run.pl", help=CMD_HELP)
    p.add_argument("--beam", type=float, default=10.0, help="alignment beam")
    p.add_argument("--retry-beam", type=float, default=40.0, help="beam for utterances that failed")
    args = p.parse_args(argv)
    setup_logging(Path(args.align_dir) / "log" / "align_mapped.log")
    from hdnn.gmm.train import align_mapped

    res = align_mapped(args.data_dir, args.lang_dir, args.model_dir, args.loglikes, args.align_dir,
                       nj=args.nj, beam=args.beam, retry_beam=args.retry_beam,
                       cmd=args.cmd)
    print(f"{args.align_dir}: {res.summary()}")


if __name__ == "__main__":
    run_main(main)

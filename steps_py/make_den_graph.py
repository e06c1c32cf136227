#!/usr/bin/env python3
"""The lattice-free denominator of sequence training without lattices (hdnn/nnet/dengraph.py):
a bigram over the transition-ids of an alignment dir's alignments, written to
<dir>/den_graph.npz, which steps_py/train_smbr.py takes in place of a denominator-lattice dir.
The counterpart of steps/nnet/make_denlats.sh for the Kaldi-free backend."""
import logging
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging

USAGE = """%(prog)s [options] <ali-dir> <dir>
 <ali-dir>: ali.*.gz + final.mdl (the training alignments, e.g. of the nnet to be trained)
 e.g.: %(prog)s exp/ihm/student_kd_ali exp/ihm/student_kd_dengraph"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("ali_dir")
    p.add_argument("dir")
    args = p.parse_args(argv)
    setup_logging(Path(args.dir) / "log" / "make_den_graph.log")
    from hdnn.kaldi.alignments import ali_files, model_file, read_alignments
    from hdnn.kaldi.gmm_model import read_transition_model
    from hdnn.nnet.dengraph import DenGraph

    files = ali_files(args.ali_dir)
    tid2pdf = read_transition_model(model_file(args.ali_dir)).tid2pdf
    items = ((utt, ali) for path in files for utt, ali in read_alignments(path))
    graph = DenGraph.from_alignments(items, tid2pdf, f"{args.ali_dir}/ali.*.gz")
    out = Path(args.dir) / "den_graph.npz"
    graph.save(out)
    summary = f"{out}: {graph.num_states} states (transition-ids), {graph.num_arcs} arcs, from {len(files)} alignment files"
    logging.info("%s", summary)
    print(summary)


if __name__ == "__main__":
    run_main(main)

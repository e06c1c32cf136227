#!/usr/bin/env python3
"""Convert alignments (transition-ids) to pdf-ids, as Kaldi's ali-to-pdf."""
from hdnn.cli import get_parser, run_main, setup_logging

USAGE = """%(prog)s <model> <alignments-rspecifier> <pdfs-wspecifier>
 e.g.: %(prog)s exp/tri1/final.mdl "ark:gunzip -c exp/tri1/ali.1.gz|" ark,t:-"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("model")
    p.add_argument("alignments")
    p.add_argument("pdfs")
    args = p.parse_args(argv)
    setup_logging()
    from hdnn.gmm.align import ali_to_pdf
    from hdnn.kaldi.gmm_model import read_transition_model
    from hdnn.kaldi.io import read_int_vectors, write_int_vectors

    tm = read_transition_model(args.model)
    alis = read_int_vectors(args.alignments)
    write_int_vectors(args.pdfs, ((utt, ali_to_pdf(tm, ali, utt, args.model)) for utt, ali in alis))


if __name__ == "__main__":
    run_main(main)

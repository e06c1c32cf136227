#!/usr/bin/env python3
"""Convert alignments (transition-ids) to phone sequences, per-frame phones or a phone CTM,
as Kaldi's ali-to-phones."""
from hdnn.cli import get_parser, run_main, setup_logging, str2bool

USAGE = """%(prog)s [options] <model> <alignments-rspecifier> <phones-wspecifier|ctm-wxfilename>
 e.g.: %(prog)s exp/tri1/final.mdl "ark:gunzip -c exp/tri1/ali.1.gz|" ark,t:-
       %(prog)s --ctm-output true exp/tri1/final.mdl "ark:gunzip -c exp/tri1/ali.1.gz|" exp/tri1/phones.1.ctm"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("model")
    p.add_argument("alignments")
    p.add_argument("output")
    p.add_argument("--per-frame", type=str2bool, default=False, help="one phone per frame")
    p.add_argument("--ctm-output", type=str2bool, default=False,
                   help="write a CTM (utt 1 start duration phone) to the output file ('-' for stdout)")
    p.add_argument("--frame-shift", type=float, default=0.01, help="seconds per frame, for --ctm-output")
    p.add_argument("--phone-symbol-table", default=None,
                   help="with --ctm-output: phones.txt, to write phone names instead of ids")
    args = p.parse_args(argv)
    setup_logging()
    import sys

    from hdnn.errors import atomic_open
    from hdnn.gmm.align import ali_to_phones, phone_ctm_lines
    from hdnn.kaldi.gmm_model import read_phone_table, read_transition_model
    from hdnn.kaldi.io import read_int_vectors, write_int_vectors

    tm = read_transition_model(args.model)
    alis = read_int_vectors(args.alignments)
    if args.ctm_output:
        table = read_phone_table(args.phone_symbol_table) if args.phone_symbol_table else None
        lines = (line for utt, ali in alis for line in phone_ctm_lines(tm, utt, ali, args.frame_shift, table))
        if args.output == "-":
            sys.stdout.writelines(line + "\n" for line in lines)
        else:
            with atomic_open(args.output) as f:
                f.writelines(line + "\n" for line in lines)
        return
    write_int_vectors(args.output, ((utt, ali_to_phones(tm, ali, args.per_frame)) for utt, ali in alis))


if __name__ == "__main__":
    run_main(main)

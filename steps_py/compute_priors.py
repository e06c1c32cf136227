#!/usr/bin/env python3
"""Count the frames of each pdf in alignments, like Kaldi's
`analyze-counts --binary=false --counts-dim=N`: writes the `ali_train_pdf.counts` text vector
`[ c0 c1 ... ]` (every count plus 0.5) that forward.py turns into priors."""
from hdnn.cli import get_parser, run_main, setup_logging

USAGE = """%(prog)s [options] <targets> <counts-out>
 <targets>: an alignment dir (ali.*.gz + final.mdl) or a pdf-id rspecifier
 e.g.: %(prog)s exp/tri3_ali exp/dnn/ali_train_pdf.counts"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("targets")
    p.add_argument("counts_out")
    p.add_argument("--num-pdfs", type=int, help="counts-dim (default: from the model, else max pdf-id + 1)")
    args = p.parse_args(argv)
    setup_logging()
    from hdnn.kaldi.counts import counts_from_alignments, write_counts
    from hdnn.kaldi.alignments import read_targets

    targets, source, num_pdfs = read_targets(args.targets, args.num_pdfs)
    counts = counts_from_alignments(targets.items(), num_pdfs)
    write_counts(args.counts_out, counts)
    print(f"{args.counts_out}: {num_pdfs} pdfs, {int(counts.sum() - 0.5 * num_pdfs)} frames of {len(targets)} utterances")


if __name__ == "__main__":
    run_main(main)

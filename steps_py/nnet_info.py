#!/usr/bin/env python3
"""Print the architecture of an acoustic model, like Kaldi's nnet-info.

The last line is `parameters: N`.
"""
from hdnn.cli import get_parser, run_main
from hdnn.errors import HdnnError


def get_args(argv=None):
    parser = get_parser(__doc__, usage="%(prog)s [options] <model-file>\n"
                                       "       %(prog)s --preset NAME --input-dim D --num-pdfs N")
    parser.add_argument("model", nargs="?", help="a model file written by train.py (e.g. exp/dnn/final.pt)")
    parser.add_argument("--preset", help="describe a preset architecture instead of a model file")
    parser.add_argument("--input-dim", type=int, default=440, help="network input dim for --preset")
    parser.add_argument("--num-pdfs", type=int, default=4000, help="number of outputs for --preset")
    args = parser.parse_args(argv)
    if (args.model is None) == (args.preset is None):
        parser.error("give a model file or --preset, not both")
    return args


def main(argv=None):
    args = get_args(argv)
    from hdnn.nnet.models import describe, load_model, model_from_preset

    if args.preset:
        if args.input_dim <= 0 or args.num_pdfs <= 0:
            raise HdnnError("--input-dim and --num-pdfs must be positive")
        model = model_from_preset(args.preset, args.input_dim, args.num_pdfs)
    else:
        model = load_model(args.model)
    print("\n".join(describe(model)))


if __name__ == "__main__":
    run_main(main)

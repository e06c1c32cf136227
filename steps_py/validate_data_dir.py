#!/usr/bin/env python3
"""Check a Kaldi data directory as utils/validate_data_dir.sh does: files sorted (C locale)
and unique, utt2spk/spk2utt consistent and speaker-sorted, and the same utterance,
speaker and recording ids in every file. Prints the first problem, naming its file."""
from hdnn.cli import get_parser, run_main, setup_logging

USAGE = """%(prog)s [--no-feats] [--no-text] [--no-wav] <data-dir>
 The --no-xxx options waive the requirement that xxx exists; a present file is checked.
 e.g.: %(prog)s data/ihm/train"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("data_dir")
    p.add_argument("--no-feats", action="store_true", help="feats.scp need not exist")
    p.add_argument("--no-text", action="store_true", help="text need not exist")
    p.add_argument("--no-wav", action="store_true", help="wav.scp need not exist")
    args = p.parse_args(argv)
    setup_logging()
    from hdnn.kaldi.data_dir import DataDir, validate_data_dir

    validate_data_dir(args.data_dir, no_feats=args.no_feats, no_text=args.no_text, no_wav=args.no_wav)
    d = DataDir(args.data_dir)
    print(f"{args.data_dir}: valid data directory ({d.num_utts} utterances, {len(d.spk2utt)} speakers)")


if __name__ == "__main__":
    run_main(main)

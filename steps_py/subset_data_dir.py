#!/usr/bin/env python3
"""Copy part of a Kaldi data directory, as utils/subset_data_dir.sh does: the utterances of a
list (--utt-list) or of the speakers of a list (--spk-list); every per-utterance, per-speaker
and per-recording file is filtered, spk2utt rebuilt. The new dir appears whole or not at all."""
from hdnn.cli import get_parser, run_main, setup_logging

USAGE = """%(prog)s (--utt-list <file> | --spk-list <file>) <src-data-dir> <dest-data-dir>
 e.g.: %(prog)s --utt-list exp/ihm/adapt_curve/dev_pool.list data/ihm/dev_fbank exp/ihm/adapt_curve/dev_pool"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("src")
    p.add_argument("dest")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--utt-list", help="file whose first field on each line is an utterance id")
    which.add_argument("--spk-list", help="file whose first field on each line is a speaker id")
    args = p.parse_args(argv)
    setup_logging()
    from hdnn.errors import HdnnError
    from hdnn.kaldi.data_dir import DataDir, subset_data_dir, subset_data_dir_by_speakers

    path = args.utt_list or args.spk_list
    try:
        ids = [line.split()[0] for line in open(path, encoding="utf-8") if line.strip()]
    except OSError as e:
        raise HdnnError(f"{path}: cannot read: {e.strerror}") from None
    if args.utt_list:
        subset_data_dir(args.src, args.dest, ids)
    else:
        subset_data_dir_by_speakers(args.src, args.dest, ids)
    d = DataDir(args.dest)
    print(f"{args.dest}: {d.num_utts} utterances, {len(d.spk2utt)} speakers")


if __name__ == "__main__":
    run_main(main)

#!/usr/bin/env python3
"""The %WER of a system on a test set at the LM weight and insertion penalty its dev decode chose
(<system-dir>/decode_dev/scoring_kaldi/best_wer): the number a set other than dev is reported
with (Kaldi's decoding sweeps every set's lattices, so that set's own best_wer is not it). Prints
the `%WER ...` line of <system-dir>/decode_<set>/wer_<LMWT>_<WIP>, followed by that file's path."""
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging
from hdnn.errors import HdnnError

USAGE = """%(prog)s [options] <system-dir> <set>
 e.g.: %(prog)s exp/ihm/student_smbr eval"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("system_dir")
    p.add_argument("set")
    args = p.parse_args(argv)
    setup_logging()
    from hdnn.scoring import wer_line_at
    from hdnn.significance import dev_setting

    setting = dev_setting(args.system_dir)
    decode = Path(args.system_dir) / f"decode_{args.set}"
    line = wer_line_at(decode, setting)
    if line is None:
        raise HdnnError(f"{decode}/wer_{setting[0]}_{setting[1]}: no such file or no %WER line in it "
                        f"(decode {args.set} at dev's setting)")
    print(line)


if __name__ == "__main__":
    run_main(main)

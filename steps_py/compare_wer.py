#!/usr/bin/env python3
"""Matched-pair significance of the WER difference between two systems decoded on the same set:
NIST's MAPSSWE test (sctk's sclite and sc_stats) and a paired bootstrap over utterances.
Reads each Kaldi-style decode dir's scoring_kaldi/test_filt.txt and
scoring_kaldi/penalty_<WIP>/<LMWT>.txt (as steps/score_kaldi.sh or steps_py/score.py leave
them), at the setting of its scoring_kaldi/best_wer unless given; with --at-dev, at the setting
its system's dev decode chose (<system>/decode_dev next to <system>/decode_<set>), the one a
test set is reported at. Prints one line:

  %WER A <wer> [ <errors> / <words> ] B <wer> [ <errors> / <words> ] MAPSSWE p=<p>
  bootstrap p=<p> better=<A|B|same> set=<set> <dir-A>/wer_<LMWT>_<WIP> vs <dir-B>/wer_<LMWT>_<WIP>

(on one line; fields separated by single spaces, decode dirs last). MAPSSWE p is two-tailed;
bootstrap p is the probability that B is not better than A (one-sided). Small p: the
difference is unlikely to be chance."""
from pathlib import Path

from hdnn.cli import get_parser, run_main, setup_logging
from hdnn.errors import atomic_open

USAGE = """%(prog)s [options] <decode-dir-A> <decode-dir-B>
 e.g.: %(prog)s exp/ihm/dnn/decode_dev exp/ihm/hdnn_kd/decode_dev
       %(prog)s --at-dev exp/ihm/student_kd/decode_eval exp/ihm/student_smbr/decode_eval"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("decode_dir_a")
    p.add_argument("decode_dir_b")
    for s in ("a", "b"):
        p.add_argument(f"--lmwt-{s}", help=f"LM weight of system {s.upper()}; None: its best_wer's")
        p.add_argument(f"--wip-{s}", help=f"word insertion penalty of system {s.upper()}; None: its best_wer's")
    p.add_argument("--at-dev", action="store_true",
                   help="each system at its dev decode's best setting (not with --lmwt-*/--wip-*)")
    p.add_argument("--set-name", help="name of the test set; None: decode dir A's name less 'decode_'")
    p.add_argument("--resamples", type=int, default=10000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap's generator")
    p.add_argument("--out", help="also write the line to this file")
    args = p.parse_args(argv)
    setup_logging()
    from hdnn.errors import HdnnError
    from hdnn.significance import compare, dev_setting, read_decode

    settings = [(args.lmwt_a, args.wip_a), (args.lmwt_b, args.wip_b)]
    if args.at_dev:
        if any(x is not None for s in settings for x in s):
            raise HdnnError("--at-dev takes each system's dev setting: give no --lmwt-* or --wip-*")
        settings = [dev_setting(Path(d).resolve().parent) for d in (args.decode_dir_a, args.decode_dir_b)]
    a = read_decode(args.decode_dir_a, *settings[0])
    b = read_decode(args.decode_dir_b, *settings[1])
    line = compare(a, b, set_name=args.set_name, resamples=args.resamples, seed=args.seed).line()
    if args.out:
        with atomic_open(args.out) as f:
            f.write(line + "\n")
    print(line)


if __name__ == "__main__":
    run_main(main)

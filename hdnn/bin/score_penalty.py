"""One job of a scoring (steps_py/score.py --cmd): the LM weights of the JOB-th penalty of
--sweep ("WIP:LMWT,LMWT;WIP:...") scored with sclite against <decode-dir>/scoring_kaldi/
test_filt.trn, as steps/score_kaldi.sh's jobs do: wer_<LMWT>_<WIP> and scoring_kaldi/ files."""
from hdnn.cli import get_parser, run_main, setup_logging

USAGE = """python -m hdnn.bin.score_penalty --sweep=SPEC <data-dir> <lang-dir> <decode-dir> <job>
 e.g.: python -m hdnn.bin.score_penalty --sweep=0.0:10,11,12 data/ihm/dev exp/ihm/tri/graph \\
          exp/ihm/tri/decode_dev 1"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    for name in ("data_dir", "lang_dir", "decode_dir"):
        p.add_argument(name)
    p.add_argument("job", type=int)
    p.add_argument("--sweep", required=True, help="WIP:LMWT,LMWT,...;WIP:... (one job per penalty)")
    args = p.parse_args(argv)
    setup_logging()
    from hdnn.scoring import score_point

    wip, lmwts = args.sweep.split(";")[args.job - 1].split(":")
    for lmwt in lmwts.split(","):
        res = score_point(args.data_dir, args.lang_dir, args.decode_dir, int(lmwt), wip)
        print(res.kaldi_line())


if __name__ == "__main__":
    run_main(main)

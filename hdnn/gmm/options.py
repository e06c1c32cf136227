"""Command-line options shared by the GMM-side steps: the triphone training steps
(steps_py/train_deltas.py and train_lda_mllt.py: the arguments and configuration section of
steps/train_deltas.sh), the two feature steps (make_mfcc.py, make_fbank.py) and the two decoding
steps (decode.py, decode_mapped.py). Imports no wheels, so `--help` stays fast."""
from pathlib import Path

from hdnn.cli import get_parser, setup_logging, str2bool
from hdnn.errors import HdnnError

# the LM-weight searches of hdnn/gmm/decode.py (defined here: --help imports no wheels)
SEARCHES = ("grid", "coarse", "descent")

CMD_HELP = "how the parallel jobs run: run.pl (built in), queue.pl, slurm.pl, ... (hdnn/jobs.py)"


def add_triphone_options(p):
    """<num-leaves> <tot-gauss> <data-dir> <lang-dir> <alignment-dir> <exp-dir> and the tree/EM options."""
    for name in ("num_leaves", "tot_gauss"):
        p.add_argument(name, type=int)
    for name in ("data_dir", "lang_dir", "ali_dir", "exp_dir"):
        p.add_argument(name)
    p.add_argument("--nj", type=int, default=None, help="parallel jobs (default: num_jobs of <alignment-dir>)")
    p.add_argument("--cmd", default="run.pl", help=CMD_HELP)
    p.add_argument("--num-iters", type=int, default=35, help="EM iterations")
    p.add_argument("--max-iter-inc", type=int, default=25, help="last iteration that adds Gaussians")
    p.add_argument("--realign-iters", default="10 20 30", help="iterations that realign the data")
    p.add_argument("--beam", type=float, default=10.0, help="alignment beam")
    p.add_argument("--retry-beam", type=float, default=40.0, help="beam for utterances that failed")
    p.add_argument("--careful", type=str2bool, default=False, help="gmm-align-compiled --careful")
    p.add_argument("--boost-silence", type=float, default=1.0, help="scale of silence likelihoods")
    p.add_argument("--power", type=float, default=0.25, help="exponent of occupancy for allocating Gaussians")
    p.add_argument("--cluster-thresh", type=float, default=-1.0,
                   help="objf threshold of the bottom-up leaf merging (-1: the smallest split)")
    p.add_argument("--progress", type=str2bool, default=True, help="show a progress bar")


def int_list(s):
    """"10 20 30" -> (10, 20, 30)."""
    return tuple(int(x) for x in s.split())


def triphone_config(args):
    """The DeltasConfig fields given by add_triphone_options' options."""
    return dict(num_iters=args.num_iters, max_iter_inc=args.max_iter_inc, realign_iters=int_list(args.realign_iters),
                beam=args.beam, retry_beam=args.retry_beam, careful=args.careful,
                boost_silence=args.boost_silence, power=args.power, cluster_thresh=args.cluster_thresh)


FEATURE_USAGE = """%(prog)s [options] <data-dir> [<log-dir> [<mfcc-dir>]]
 e.g.: %(prog)s --nj 2 --mfcc-config conf/mfcc.conf data/ihm/train exp/make_mfcc/ihm/train mfcc"""


def feature_main(kind, doc, argv):
    """steps/make_{mfcc,fbank}.sh's command line (make_mfcc.py, make_fbank.py)."""
    p = get_parser(doc, usage=FEATURE_USAGE.replace("mfcc", kind))
    p.add_argument("data_dir")
    p.add_argument("log_dir", nargs="?", help="default: <data-dir>/log")
    p.add_argument("feat_dir", nargs="?", help="default: <data-dir>/data")
    p.add_argument(f"--{kind}-config", dest="config", help=f"compute-{kind}-feats options (Kaldi config file)")
    p.add_argument("--nj", type=int, default=4, help="parallel jobs")
    p.add_argument("--cmd", default="run.pl", help=CMD_HELP)
    p.add_argument("--compress", type=str2bool, default=True, help="must be true: archives are compressed")
    p.add_argument("--write-utt2num-frames", type=str2bool, default=True, help="always written")
    p.add_argument("--progress", type=str2bool, default=True, help="show a progress bar")
    args = p.parse_args(argv)
    if not Path(args.data_dir).is_dir():
        raise HdnnError(f"{args.data_dir}: no such data directory")
    log_dir = args.log_dir or f"{args.data_dir}/log"
    setup_logging(f"{log_dir}/make_{kind}.log")
    from hdnn.gmm.features import make_features

    make_features(args.data_dir, kind, args.config, log_dir, args.feat_dir, nj=args.nj,
                  cmd=args.cmd, progress=args.progress)


def add_decode_options(p):
    p.add_argument("--nj", type=int, default=4, help="parallel jobs")
    p.add_argument("--cmd", default="run.pl", help=CMD_HELP)
    p.add_argument("--beam", type=float, default=13.0, help="decoding beam")
    p.add_argument("--max-active", type=int, default=7000, help="maximum active states")
    p.add_argument("--min-active", type=int, default=200, help="minimum active states")
    p.add_argument("--retry-beam", type=float, default=30.0,
                   help="beam of the second try when no token reaches a final state")
    p.add_argument("--min-lmwt", type=int, default=7, help="smallest LM weight of the sweep")
    p.add_argument("--max-lmwt", type=int, default=17, help="largest LM weight of the sweep")
    p.add_argument("--word-ins-penalty", default="0.0,0.5,1.0", help="comma-separated penalties of the sweep")
    p.add_argument("--search", choices=SEARCHES, default="grid",
                   help="grid: every LM weight of the range; coarse: coarse-to-fine around the best "
                        "(scored between rounds; about half the searches on a wide range); descent: "
                        "from --lmwt-start towards the better neighbour until both are worse")
    p.add_argument("--lmwt-start", type=int, default=0,
                   help="where --search descent starts (0: the middle of the range)")
    p.add_argument("--skip-scoring", type=str2bool, default=False, help="do not score")
    p.add_argument("--hyps-from", default=None,
                   help="decode dir whose hypotheses at the same points are taken for the utterances it holds "
                        "(searched with the same graph and search options); only the others are searched")
    p.add_argument("--progress", type=str2bool, default=True, help="show a progress bar")


def decode_config(args):
    from hdnn.gmm.decode import DecodeConfig

    return DecodeConfig(beam=args.beam, max_active=args.max_active, min_active=args.min_active,
                        retry_beam=args.retry_beam, min_lmwt=args.min_lmwt, max_lmwt=args.max_lmwt,
                        word_ins_penalty=tuple(w.strip() for w in args.word_ins_penalty.split(",")),
                        search=args.search, start_lmwt=args.lmwt_start)


def round_scorer(args, lang_dir):
    """score(points) for the rounds of a coarse-to-fine or descent search (None with --skip-scoring)."""
    if args.skip_scoring:
        return None
    from hdnn.scoring import score_points

    return lambda points: score_points(args.data_dir, lang_dir, args.decode_dir, sweep=points)


def score_decode(args, lang_dir, stats):
    """Score the settings decoded and print the best %WER line."""
    if args.skip_scoring:
        return
    from hdnn.scoring import score

    score(args.data_dir, lang_dir, args.decode_dir, sweep=stats.points)
    print((Path(args.decode_dir) / "scoring_kaldi" / "best_wer").read_text().strip())

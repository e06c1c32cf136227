"""Command-line options shared by the triphone training steps (steps_py/train_deltas.py and
train_lda_mllt.py): the arguments and configuration section of steps/train_deltas.sh.
Imports no wheels, so `--help` stays fast."""
from hdnn.cli import str2bool


def add_triphone_options(p):
    """<num-leaves> <tot-gauss> <data-dir> <lang-dir> <alignment-dir> <exp-dir> and the tree/EM options."""
    for name in ("num_leaves", "tot_gauss"):
        p.add_argument(name, type=int)
    for name in ("data_dir", "lang_dir", "ali_dir", "exp_dir"):
        p.add_argument(name)
    p.add_argument("--nj", type=int, default=None, help="parallel jobs (default: num_jobs of <alignment-dir>)")
    p.add_argument("--cmd", default="run.pl", help="accepted for compatibility with steps/*.sh; unused")
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

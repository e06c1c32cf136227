"""One job of an accumulation (steps_py/train_*.py): gmm-acc-stats-ali, or gmm-acc-mllt with
--mllt, of <model-dir>/<model> over the utterances of <data> (the job's split) aligned in
<ali>; the statistics, summed per speaker into exact sums, into <acc-out> (numpy .npz)."""
from hdnn.bin.gmm_align import add_feature_options, feature_args
from hdnn.cli import get_parser, run_main, setup_logging

USAGE = """python -m hdnn.bin.gmm_acc_stats [options] <model-dir> <model> <lang-dir> <data> <ali> <acc-out>
 e.g.: python -m hdnn.bin.gmm_acc_stats exp/ihm/mono 12.mdl data/lang data/ihm/train/split2/1 \\
          exp/ihm/mono/ali.1.gz exp/ihm/mono/acc.12.1.acc"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    for name in ("model_dir", "model", "lang_dir", "data_dir", "ali", "acc_out"):
        p.add_argument(name)
    p.add_argument("--mllt", action="store_true", help="MLLT statistics (gmm-acc-mllt) instead")
    add_feature_options(p)
    args = p.parse_args(argv)
    setup_logging()
    from hdnn.gmm.train import acc_job

    acc_job(args.model_dir, args.model, args.lang_dir, args.data_dir, args.ali, args.acc_out, mllt=args.mllt,
            **feature_args(args))


if __name__ == "__main__":
    run_main(main)

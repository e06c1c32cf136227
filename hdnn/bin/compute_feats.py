"""compute-{mfcc,fbank}-feats | copy-feats --compress for one job of make_mfcc/make_fbank:
the utterances listed in <utt-list> (of <data-dir>'s wav.scp and segments) into <ark> and its
.scp, their durations into <utt2dur>."""
from hdnn.cli import get_parser, run_main, setup_logging

USAGE = """python -m hdnn.bin.compute_feats [options] <data-dir> <utt-list> <ark> <utt2dur>
 e.g.: python -m hdnn.bin.compute_feats --kind=mfcc --config=conf/mfcc.conf data/ihm/train \\
          exp/make_mfcc/ihm/train/utts_mfcc_train.1 mfcc/raw_mfcc_train.1.ark exp/make_mfcc/ihm/train/utt2dur.1"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("data_dir")
    p.add_argument("utt_list")
    p.add_argument("ark")
    p.add_argument("utt2dur")
    p.add_argument("--kind", choices=("mfcc", "fbank"), required=True, help="feature type")
    p.add_argument("--config", help="Kaldi config file of the feature options")
    args = p.parse_args(argv)
    setup_logging()
    from hdnn.gmm.features import compute_job

    compute_job(args.data_dir, args.kind, args.config, args.utt_list, args.ark, args.utt2dur)


if __name__ == "__main__":
    run_main(main)

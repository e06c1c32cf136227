#!/usr/bin/env python3
"""MFCC features for a data dir, as Kaldi's steps/make_mfcc.sh: compute-mfcc-feats options from
--mfcc-config, compressed archives <mfcc-dir>/raw_mfcc_<name>.JOB.{ark,scp} written by --nj
parallel jobs, then <data-dir>/feats.scp and <data-dir>/utt2num_frames."""
from hdnn.cli import run_main
from hdnn.gmm.options import feature_main


def main(argv=None):
    feature_main("mfcc", __doc__, argv)


if __name__ == "__main__":
    run_main(main)

#!/usr/bin/env python3
"""Filterbank features for a data dir (the nnet's input), as Kaldi's steps/make_fbank.sh:
compute-fbank-feats options from --fbank-config (e.g. --num-mel-bins=40), compressed archives
<fbank-dir>/raw_fbank_<name>.JOB.{ark,scp} by --nj parallel jobs, <data-dir>/feats.scp."""
from hdnn.cli import run_main
from hdnn.gmm.options import feature_main


def main(argv=None):
    feature_main("fbank", __doc__, argv)


if __name__ == "__main__":
    run_main(main)

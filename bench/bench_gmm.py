#!/usr/bin/env python3
"""Benchmark of the Kaldi-free GMM front half on a corpus: features, lang, train_mono,
align_si, train_deltas and the final alignment, each timed, with the real-time factor
(seconds of work per second of speech), as a table. Not a test.

  bench/bench_gmm.py <data-root> <work-dir>        # data-root from local/make_mini_ami.py
"""
import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hdnn.cli import setup_logging  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_root", help="<data-root> with <mic>/train and local/dict")
    p.add_argument("work_dir")
    p.add_argument("--mic", default="ihm")
    p.add_argument("--nj", type=int, default=2)
    p.add_argument("--totgauss", type=int, default=1000, help="monophone Gaussians")
    p.add_argument("--num-leaves", type=int, default=500)
    p.add_argument("--tot-gauss", type=int, default=5000, help="triphone Gaussians")
    p.add_argument("--lda-mllt", action="store_true", help="also train_lda_mllt on the tri1 alignments")
    args = p.parse_args()
    work = Path(args.work_dir)
    setup_logging(work / "bench_gmm.log")
    logging.getLogger().handlers[0].setLevel(logging.WARNING)  # the table only on the terminal

    from hdnn.gmm.deltas import train_deltas
    from hdnn.gmm.lda_mllt import train_lda_mllt
    from hdnn.gmm.train import align_si
    from hdnn.gmm.features import compute_cmvn_stats, make_features
    from hdnn.gmm.lang import prepare_lang
    from hdnn.gmm.mono import train_mono
    from hdnn.kaldi.data_dir import read_kaldi_map

    data = work / "data" / "train"
    if not data.exists():
        import shutil
        shutil.copytree(Path(args.data_root) / args.mic / "train", data)
    lang = work / "lang"
    rows = []

    def timed(name, func, *a, **kw):
        start = time.time()
        result = func(*a, **kw)
        rows.append((name, time.time() - start))
        return result

    timed("prepare_lang", prepare_lang, Path(args.data_root) / "local" / "dict", "<UNK>", work / "lang_tmp", lang)
    timed("make_mfcc", make_features, data, "mfcc", nj=args.nj, progress=False)
    timed("compute_cmvn_stats", compute_cmvn_stats, data)
    frames = sum(int(n) for n in read_kaldi_map(data / "utt2num_frames").values())
    exp = work / "exp"
    for d in ("mono", "mono_ali", "tri1", "tri1_ali", "tri2", "tri2_ali"):
        if (exp / d).exists():
            import shutil
            shutil.rmtree(exp / d)
    timed("train_mono", train_mono, data, lang, exp / "mono", nj=args.nj, progress=False)
    timed("align_si (mono)", align_si, data, lang, exp / "mono", exp / "mono_ali", nj=args.nj)
    timed("train_deltas", train_deltas, args.num_leaves, args.tot_gauss, data, lang, exp / "mono_ali",
          exp / "tri1", progress=False)
    res = timed("align_si (tri1)", align_si, data, lang, exp / "tri1", exp / "tri1_ali", nj=args.nj)
    if args.lda_mllt:
        timed("train_lda_mllt", train_lda_mllt, args.num_leaves, args.tot_gauss, data, lang, exp / "tri1_ali",
              exp / "tri2", progress=False)
        res = timed("align_si (tri2)", align_si, data, lang, exp / "tri2", exp / "tri2_ali", nj=args.nj)

    speech = frames / 100.0
    print(f"\nGMM front half on {data} ({frames} frames = {speech / 60:.1f} min of speech, --nj {args.nj})")
    print(f"{'step':<22}{'seconds':>10}{'x real time':>14}")
    for name, secs in rows:
        print(f"{name:<22}{secs:>10.1f}{secs / speech:>14.4f}")
    total = sum(s for n, s in rows if n.startswith(("train", "align")))
    print(f"{'training + alignment':<22}{total:>10.1f}{total / speech:>14.4f}")
    print(f"final alignment: {res.summary()}")


if __name__ == "__main__":
    main()

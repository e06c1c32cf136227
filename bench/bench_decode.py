#!/usr/bin/env python3
"""Decoding speed: real-time factors of GMM decoding (steps_py/decode.py) and of mapped
decoding of pdf log-likelihoods (steps_py/decode_mapped.py, as for an nnet), on one core.

  python bench/bench_decode.py [--size ci] [--work bench/out/decode] [--prune-thresh 1e-7] [--lmwts 10 | 7:17]

Builds what it needs in --work (kept for reruns): the corpus, MFCC + CMVN, the lang dir, a
pruned 3-gram G, a monophone GMM (steps_py/train_mono.py) and its HCLG; then decodes
ihm/dev with one job. The mapped decoder gets the GMM's own log-likelihoods, so both decode
the same scores and must give the same words: the difference in time is the acoustic model.
Prints a table (graph size, seconds, RTF per pass, x faster than real time, WER).
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def step(name, *args):
    t0 = time.time()
    subprocess.run([sys.executable, str(ROOT / "steps_py" / f"{name}.py"), *map(str, args)], check=True,
                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.time() - t0


def prepare(work, size, prune):
    data = work / "data"
    if not (data / "ihm" / "dev" / "text").exists():
        subprocess.run([sys.executable, str(ROOT / "local" / "make_mini_ami.py"), "--size", size, "--nj", "2",
                        str(work / "corpus"), str(data)], check=True, cwd=ROOT, stderr=subprocess.DEVNULL)
    for part in ("train", "dev"):
        if not (data / "ihm" / part / "cmvn.scp").exists():
            step("make_mfcc", "--nj", 2, "--progress", "false", data / "ihm" / part, work / "log", work / "mfcc")
            step("compute_cmvn_stats", data / "ihm" / part, work / "log", work / "mfcc")
    if not (data / "lang_test" / "G.fst").exists():
        step("prepare_lang", data / "local" / "dict", "<UNK>", data / "local" / "lang", data / "lang")
        step("train_lm", "--prune-thresh", prune, data / "local" / "lm_train.txt", data / "lang", data / "local" / "lm")
        step("format_lm", data / "lang", data / "local" / "lm" / "lm_3gram.arpa.gz", "-", data / "lang_test")
    if not (work / "mono" / "final.mdl").exists():
        step("train_mono", "--nj", 2, "--progress", "false", data / "ihm" / "train", data / "lang", work / "mono")
    return data


def loglikes_of_gmm(work, data):
    """The GMM's pdf log-likelihoods of ihm/dev as an archive (what an nnet would give)."""
    import kaldiio
    from threadpoolctl import threadpool_limits

    from hdnn.gmm.decode import GmmScorer
    from hdnn.gmm.features import iter_cmvn_deltas
    from hdnn.gmm.model import GmmSystem

    scorer = GmmScorer(GmmSystem.load(work / "mono").am)
    scp = work / "loglikes_dev.scp"
    with threadpool_limits(limits=1):
        kaldiio.save_ark(str(work / "loglikes_dev.ark"),
                         {u: scorer(x) for u, x in iter_cmvn_deltas(data / "ihm" / "dev")}, scp=str(scp))
    return scp


def stats(decode_dir):
    s = dict(line.split() for line in (decode_dir / "decode_stats.txt").read_text().splitlines())
    best = (decode_dir / "scoring_kaldi" / "best_wer").read_text().split()
    return float(s["rtf_per_pass"]), int(s["passes"]), int(s["frames"]), best[1], int(s["retried"])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="ci")
    p.add_argument("--work", default="bench/out/decode")
    p.add_argument("--prune-thresh", default="1e-7")
    p.add_argument("--lmwts", default="10", help="LMWT or MIN:MAX of the sweep")
    p.add_argument("--beam", default="13.0")
    p.add_argument("--max-active", default="7000")
    args = p.parse_args()
    work = Path(args.work).absolute()
    work.mkdir(parents=True, exist_ok=True)
    data = prepare(work, args.size, args.prune_thresh)
    lo, _, hi = args.lmwts.partition(":")
    sweep = ["--min-lmwt", lo, "--max-lmwt", hi or lo, "--word-ins-penalty", "0.0", "--beam", args.beam,
             "--max-active", args.max_active]

    graph = work / "mono" / "graph"
    t_graph = step("mkgraph", data / "lang_test", work / "mono", graph) if not (graph / "HCLG.fst").exists() else None
    from hdnn.gmm.graph import read_graph

    states = read_graph(graph).num_states
    rows = []
    for name, run in (("GMM (decode)", lambda out: step("decode", "--nj", 1, "--progress", "false", *sweep,
                                                         graph, data / "ihm" / "dev", out)),
                      ("mapped (decode_mapped)", lambda out: step(
                          "decode_mapped", "--nj", 1, "--progress", "false", *sweep, graph, data / "ihm" / "dev",
                          work / "mono", f"scp:{loglikes_of_gmm(work, data)}", out))):
        out = work / f"decode_{name.split()[0].lower()}"
        wall = run(out)
        rtf, passes, frames, wer, retried = stats(out)
        rows.append((name, wall, rtf, passes, frames, wer, retried))

    print(f"\nHCLG (monophone, pruned 3-gram): {states} states; beam {args.beam}, max-active {args.max_active}"
          + (f", built in {t_graph:.1f} s" if t_graph else " (cached)"))
    print(f"{'decoder':<24}{'passes':>7}{'frames':>8}{'wall s':>8}{'RTF/pass':>10}{'x real time':>13}"
          f"{'retried':>9}{'%WER':>8}")
    for name, wall, rtf, passes, frames, wer, retried in rows:
        print(f"{name:<24}{passes:>7}{frames:>8}{wall:>8.1f}{rtf:>10.4f}{1 / rtf:>13.0f}{retried:>9}{wer:>8}")
    print(f"ratio GMM/mapped time per pass: {rows[0][2] / rows[1][2]:.2f}")


if __name__ == "__main__":
    main()

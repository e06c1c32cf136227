#!/usr/bin/env python3
"""Many graph searches at once on few cores, with and without search slots (hdnn/slots.py).

  python bench/bench_search_slots.py [--copies 8] [--utts 200] [--lmwt 11] \\
      <graph-dir> <model-dir> <nnet-dir> <fbank-data-dir> <work-dir>
  e.g.: python bench/bench_search_slots.py egs/ami/exp/ihm/tri/graph egs/ami/exp/ihm/tri \\
      egs/ami/exp/ihm/student_kd egs/ami/data/ihm/dev_fbank bench/out/slots

The nnet's log-likelihoods of the first --utts utterances of the data dir are computed
(steps_py/forward.py); then --copies identical decoding jobs (hdnn.bin.decode_faster, the
recipe's beam 8 / max-active 2000) are started at once, as a recipe's systems and jobs start
them, first with no slots (every job searching at once), then with HDNN_SEARCH_SLOTS set to one
slot per core, then one job alone. Prints wall seconds and the jobs' CPU seconds (user + system),
in all and per job: the cost of searches taking turns on a core is the growth of CPU per job.
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cores():
    return len(os.sched_getaffinity(0))


def loglikes(nnet, data, utts, work):
    """scp of the nnet's log-likelihoods of the first `utts` utterances of `data` (made anew on
    every run: a few seconds, and never those of another nnet or data dir)."""
    scp = work / "loglikes.scp"
    ids = [line.split()[0] for line in (Path(data) / "feats.scp").read_text().splitlines()[:utts]]
    (work / "utts").write_text("".join(f"{u}\n" for u in ids))
    subset = work / "data"
    subprocess.run([sys.executable, str(ROOT / "steps_py" / "subset_data_dir.py"), "--utt-list", work / "utts",
                    data, subset], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, str(ROOT / "steps_py" / "forward.py"), subset, nnet,
                    f"ark,scp:{work / 'loglikes.ark'},{scp}"], check=True, stderr=subprocess.DEVNULL)
    return scp


def run_copies(copies, slots, args, scp, work):
    """(wall s, CPU s of all jobs) of `copies` decoding jobs started at once."""
    env = dict(os.environ)
    env.pop("HDNN_SEARCH_SLOTS", None)
    if slots:
        env["HDNN_SEARCH_SLOTS"] = f"{work / 'slots'}:{slots}"
    dirs = [work / f"decode_{slots or 'none'}_{i}" for i in range(copies)]
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
        (d / "tra").mkdir(parents=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    procs = [subprocess.Popen([sys.executable, "-m", "hdnn.bin.decode_faster", f"--loglikes=scp:{scp}",
                               f"--points={args.lmwt}_0.0", "--beam", "8", "--max-active", "2000",
                               args.graph, args.model, d, "1"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for d in dirs]
    for p in procs:
        if p.wait() != 0:
            sys.exit(f"a decoding job failed: rerun it by hand ({' '.join(map(str, p.args))})")
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    outputs = {(d / "tra" / f"{args.lmwt}_0.0.1.tra").read_bytes() for d in dirs}
    if len(outputs) != 1:
        sys.exit("the copies found different best paths")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("graph")
    p.add_argument("model")
    p.add_argument("nnet")
    p.add_argument("data")
    p.add_argument("work")
    p.add_argument("--copies", type=int, default=8)
    p.add_argument("--utts", type=int, default=200)
    p.add_argument("--lmwt", type=int, default=11)
    args = p.parse_args()
    work = Path(args.work).absolute()
    work.mkdir(parents=True, exist_ok=True)
    scp = loglikes(args.nnet, args.data, args.utts, work)
    n = cores()
    rows = [(f"{args.copies} at once, no slots", args.copies, *run_copies(args.copies, 0, args, scp, work)),
            (f"{args.copies} at once, {n} slots", args.copies, *run_copies(args.copies, n, args, scp, work)),
            ("1 alone", 1, *run_copies(1, 0, args, scp, work))]
    print(f"\n{args.utts} utterances, LM weight {args.lmwt}, beam 8 / max-active 2000, {n} cores")
    print(f"{'jobs':<26}{'wall s':>8}{'CPU s':>8}{'CPU s per job':>15}")
    for name, k, wall, cpu in rows:
        print(f"{name:<26}{wall:>8.1f}{cpu:>8.1f}{cpu / k:>15.1f}")


if __name__ == "__main__":
    main()

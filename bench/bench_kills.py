#!/usr/bin/env python3
"""kill -9 at random points of the recipe, then reruns, against one uninterrupted run.

Runs egs/ami/run.sh on the `ci` corpus (the recipe tests' reduced settings, py backend) once
without interruption (the reference), then again in another recipe dir where every run is
killed with SIGKILL (the whole process group: the recipe, its steps and their jobs) after a
random delay, and rerun, until one run completes. Prints a table of the kills (after how many
seconds, in which stage) and whether the interrupted recipe wrote the same artifacts (byte for
byte, as tests/recipe/test_recipe_repro.py compares them) and the same RESULTS.md tables.

Usage: bench/bench_kills.py [--work DIR] [--seed N] [--min-delay S] [--max-delay S] [--max-kills N]
  ~2 uninterrupted ci runs of time on 2 cores (about 20-30 min); exits 1 when anything differs.
"""
import argparse
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.recipe.conftest import FAST, make_recipe_dir  # noqa: E402
from tests.recipe.test_recipe_repro import artifacts  # noqa: E402


def recipe_args(data_root):
    return ["--backend", "py", "--data-root", str(data_root), *FAST]


def start(recipe, args, log):
    env = {k: v for k, v in os.environ.items() if k != "KALDI_ROOT"}
    return subprocess.Popen(["bash", str(recipe / "run.sh"), *args], cwd=recipe, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def last_stage(log_file):
    stages = re.findall(r"Stage (\d+):", Path(log_file).read_text(errors="replace"))
    return stages[-1] if stages else "-"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default=str(ROOT / "bench" / "out" / "kills"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-delay", type=float, default=3.0)
    p.add_argument("--max-delay", type=float, default=45.0)
    p.add_argument("--max-kills", type=int, default=40, help="then let the run finish")
    args = p.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus"
    if not (corpus / "data").exists():
        subprocess.run([sys.executable, str(ROOT / "local" / "make_mini_ami.py"), "--size", "ci", "--seed", "0",
                        "--nj", "2", str(corpus / "corpus"), str(corpus / "data")], check=True, cwd=ROOT)
    rargs = recipe_args(corpus / "data")

    ref = work / "reference"
    if not (ref / "RESULTS.md").exists():
        if not ref.exists():
            make_recipe_dir(ref)
        t0 = time.time()
        with open(work / "reference.log", "w") as log:
            if start(ref, rargs, log).wait() != 0:
                sys.exit(f"the uninterrupted run failed: see {work / 'reference.log'}")
        print(f"uninterrupted run: {time.time() - t0:.0f} s")

    killed = work / "killed"
    if killed.exists():
        subprocess.run(["rm", "-rf", str(killed)], check=True)
    make_recipe_dir(killed)
    rng = random.Random(args.seed)
    kills, t_all = [], time.time()
    while True:
        n = len(kills) + 1
        log_file = work / f"killed.{n}.log"
        with open(log_file, "w") as log:
            proc = start(killed, rargs, log)
            delay = rng.uniform(args.min_delay, args.max_delay) if len(kills) < args.max_kills else None
            try:
                rc = proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                kills.append((delay, last_stage(log_file)))
                continue
        if rc != 0:
            sys.exit(f"run {n} after {len(kills)} kills failed (exit {rc}): see {log_file}")
        break
    print(f"interrupted runs: {len(kills)} kills, then a complete run; {time.time() - t_all:.0f} s in all\n")
    print("| kill | after s | stage running |\n|---:|---:|---|")
    for i, (delay, stage) in enumerate(kills, 1):
        print(f"| {i} | {delay:.1f} | {stage} |")

    a = artifacts(ref, corpus / "corpus")
    b = artifacts(killed, corpus / "corpus")
    missing, extra = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    differ = sorted(k for k in set(a) & set(b) if a[k] != b[k])
    tables = [(d / "RESULTS.md").read_text().split("\n", 5)[-1] for d in (ref, killed)]
    print(f"\nartifacts compared: {len(a)}; missing after the kills: {len(missing)}; extra: {len(extra)}; "
          f"different: {len(differ)}; RESULTS.md tables {'identical' if tables[0] == tables[1] else 'DIFFERENT'}")
    for k in (missing + extra + differ)[:20]:
        print("  ", k)
    sys.exit(0 if not (missing or extra or differ) and tables[0] == tables[1] else 1)


if __name__ == "__main__":
    main()

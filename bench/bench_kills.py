#!/usr/bin/env python3
"""kill -9 in every stage of the recipe, then reruns, against one uninterrupted run.

Runs egs/ami/run.sh on the `ci` corpus (the recipe tests' reduced settings, py backend) once
without interruption (the reference), then again in another recipe dir where runs are killed
with SIGKILL (the whole process group: the recipe, its steps and their jobs): for each stage in
turn, a run is started, and once its log reaches that stage it is killed after a random delay
within the time the stage took in the reference run (--kills-per-stage times per stage); then one last run completes. Prints a table of the kills
(the stage reached, the delay, the stage running when killed) and whether the interrupted recipe
wrote the same artifacts (byte for byte, as tests/recipe/test_recipe_repro.py compares them)
and the same RESULTS.md tables.

Usage: bench/bench_kills.py [--work DIR] [--seed N] [--max-delay S] [--kills-per-stage N]
  about 2-3 uninterrupted ci runs of time on 2 cores (10-20 min); exits 1 when anything differs.
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


def stage_seconds(log_file):
    """{stage: seconds} of a complete run's log (from the times of its "Stage N:" lines)."""
    marks = [(int(n), time.mktime(time.strptime(t, "%Y-%m-%d %H:%M:%S")))
             for t, n in re.findall(r"^(\S+ \S+) \(run\.sh:\d+\) Stage (\d+):", Path(log_file).read_text(), re.M)]
    return {n: max(marks[i + 1][1] - t, 1.0) for i, (n, t) in enumerate(marks[:-1])}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default=str(ROOT / "bench" / "out" / "kills"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-delay", type=float, default=60.0, help="seconds into a stage, at most, to kill")
    p.add_argument("--kills-per-stage", type=int, default=2)
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
    durations = stage_seconds(work / "reference.log")
    rng = random.Random(args.seed)
    kills, t_all = [], time.time()
    plan = [stage for stage in range(12) for _ in range(args.kills_per_stage)] + [None]
    for n, stage in enumerate(plan, 1):
        log_file = work / f"killed.{n}.log"
        with open(log_file, "w") as log:
            proc = start(killed, rargs, log)
            if stage is None:
                rc = proc.wait()
                break
            while proc.poll() is None and f"Stage {stage}:" not in log_file.read_text(errors="replace"):
                time.sleep(0.1)
            delay = rng.uniform(0.0, min(durations.get(stage, 1.0), args.max_delay))
            try:
                rc = proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                kills.append((stage, delay, last_stage(log_file)))
                continue
        if rc != 0:
            sys.exit(f"run {n} failed (exit {rc}): see {log_file}")
    if rc != 0:
        sys.exit(f"the last run failed (exit {rc}): see {log_file}")
    print(f"interrupted runs: {len(kills)} kills, then a complete run; {time.time() - t_all:.0f} s in all\n")
    print("| kill | stage reached | then after s | stage running when killed |\n|---:|---:|---:|---|")
    for i, (stage, delay, running) in enumerate(kills, 1):
        print(f"| {i} | {stage} | {delay:.1f} | {running} |")

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

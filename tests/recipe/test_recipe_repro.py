"""The same command, seed and commit write the same bytes: the ci recipe run a second time, in
other processes, from its own freshly generated corpus, with another --nj, one nnet job at a time
(--nnet-jobs 1: the first run trains, decodes and adapts two systems side by side), with a busy
process on half the cores, its parallel jobs through Kaldi's own utils/run.pl and its nnet training on
a Slurm cluster (Kaldi's slurm.pl against the one-node cluster of tests/slurm.py, as cuda_cmd),
against the session's first run through the built-in run.pl (tests/recipe/conftest.py py_run).
(The steps' parallel jobs on Slurm are tested in tests/test_jobs.py: slurm.pl waits 5 s on every
new log dir and polls every few seconds, which made a whole recipe run on it five times slower.)"""
import contextlib
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.recipe.conftest import CURVE_POINTS, NNETS, check, make_recipe_dir, run_recipe

# Files that record how a run went rather than what it made (times, job splits, commands).
VOLATILE = re.compile(
    r"(^|/)(log|q|split\d+(utt)?)/|\.log$|(^|/)\.done(\.\d+)?$|(^|/)(decode_stats\.txt|num_jobs)$"
    # what each output was made from (hdnn/stamps.py): file identities include sizes and times
    r"|\.stamp$"
    # the lock files of the search slots (egs/ami/cmd.sh; this test's second run has none)
    r"|(^|/)\.search_slots/"
    # one file per job: ali.JOB.gz, raw_mfcc_dev.JOB.ark, <LMWT>_<WIP>.JOB.tra, utt2dur.JOB, utts_mfcc_dev.JOB,
    # post.JOB.ark (post.scp is compared by its content)
    r"|(^|/)(ali|fsts|lat)\.\d+\.gz$|(^|/)raw_\w+\.\d+\.(ark|scp)$|(^|/)\d+_-?\d+\.\d+\.\d+\.tra$"
    r"|(^|/)utt2(dur|num_frames)\.\d+$|(^|/)utts_\w+\.\d+$|(^|/)post\.\d+\.(ark|scp)$"
    r"|^data/\.mini_ami$")  # stage 0's marker (the first run was given a data root)


@contextlib.contextmanager
def busy_cores():
    """A busy-looping process on half the cores while the block runs (scheduling, not speed,
    is what it changes)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(max(1, (os.cpu_count() or 2) // 2))]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def digest(*chunks):
    h = hashlib.md5()
    for c in chunks:
        h.update(c if isinstance(c, bytes) else str(c).encode())
    return h.hexdigest()


def table_digest(scp):
    """The matrices of a feats.scp/cmvn.scp, wherever (and in however many archives) they lie."""
    from hdnn.kaldi.io import MatrixReader

    table = MatrixReader(scp)
    return digest(*(part for utt in sorted(table.keys()) for part in (utt, np.ascontiguousarray(table[utt]).tobytes())))


def posterior_digest(scp, recipe_dir):
    """The posteriors of a post.scp (the teacher's soft targets), in however many archives they lie."""
    from hdnn.kaldi.posteriors import read_posteriors

    with contextlib.chdir(recipe_dir):  # the recipe's scp files name paths relative to it
        table = dict(read_posteriors(f"scp:{scp}"))
    return digest(*(part for utt in sorted(table) for part in (utt, repr(table[utt]))))


def artifacts(recipe_dir, corpus_dir):
    """{name: md5} of what a recipe run made: files byte for byte (the corpus path in text
    files replaced), tables split over jobs as their merged content."""
    from hdnn.kaldi.alignments import read_ali_dir

    recipe_dir, out = Path(recipe_dir), {}
    for top in ("data", "exp", "mfcc", "fbank"):
        for p in sorted((recipe_dir / top).rglob("*")):
            rel = str(p.relative_to(recipe_dir))
            if not p.is_file() or p.is_symlink() or VOLATILE.search(rel) or rel.startswith("data/sdm1/"):
                continue  # (the first run was given the ihm data only)
            if p.suffix == ".scp" and (p.name in ("feats.scp", "cmvn.scp") or top in ("mfcc", "fbank")):
                out[rel] = table_digest(p)
            elif p.name == "post.scp":
                out[rel] = posterior_digest(p.resolve(), recipe_dir)
            else:
                out[rel] = digest(p.read_bytes().replace(str(corpus_dir).encode(), b"<corpus>"))
    for ali_dir in sorted({p.parent for p in (recipe_dir / "exp").rglob("ali.1.gz")}):
        alis = read_ali_dir(ali_dir)
        out[f"{ali_dir.relative_to(recipe_dir)}/ali.*.gz"] = digest(*(x for u, a in alis.items()
                                                                      for x in (u, np.asarray(a).tobytes())))
    for png in ("wer_vs_params.png", "training_curves.png", "adaptation_curve.png"):
        out[png] = digest((recipe_dir / png).read_bytes())
    for wav in sorted(Path(corpus_dir).rglob("*.wav")):
        out[f"<corpus>/{wav.relative_to(corpus_dir)}"] = digest(wav.read_bytes())
    return out


def slurm_cmd_sh(request, recipe):
    """Point the recipe's cmd.sh at Kaldi's utils/run.pl for the parallel jobs and at Kaldi's
    slurm.pl and the test cluster for the nnet training; None where there is no cluster (the
    reason is printed and the run goes through the built-in run.pl)."""
    try:
        kaldi, cluster = request.getfixturevalue("kaldi"), request.getfixturevalue("slurm_cluster")
    except pytest.skip.Exception as e:
        print(f"the second run uses run.pl, not Slurm: {e}")
        return None
    slurm_pl = f"{kaldi}/egs/wsj/s5/utils/parallel/slurm.pl --config {cluster.slurm_pl_conf}"
    (recipe / "cmd.sh").unlink()
    run_pl = f"{kaldi}/egs/wsj/s5/utils/run.pl --max-jobs-run 3"
    (recipe / "cmd.sh").write_text(f'export train_cmd="{run_pl}"\nexport decode_cmd="{run_pl}"\n'
                                   f'export cuda_cmd="{slurm_pl} --mem 2G"\n')
    return cluster


def completed_slurm_jobs():
    """How many jobs (arrays of tasks: each task) Slurm's accounting holds as completed."""
    out = subprocess.run(["sacct", "--completion", "--noheader", "--allocations", "--parsable2",
                          "--starttime", "2000-01-01", "--format", "JobName,State"],
                         capture_output=True, text=True, check=True).stdout
    return sum(line.endswith("|COMPLETED") for line in out.splitlines())


def test_a_second_run_with_another_nj_and_job_runner_on_a_loaded_machine_writes_the_same_bytes(
        request, py_run, py_args, ci_corpus, tmp_path):
    args = list(py_args)
    i = args.index("--data-root")
    del args[i:i + 2]
    recipe = make_recipe_dir(tmp_path / "again")
    cluster = slurm_cmd_sh(request, recipe)
    jobs_before = completed_slurm_jobs() if cluster else 0
    with busy_cores():
        run = check(run_recipe(recipe, *args, "--size", "ci", "--nj", "3", "--nnet-jobs", "1"))
    print(f"second run{' (nnet training on Slurm)' if cluster else ''}: {run.seconds:.0f} s "
          f"(first: {py_run.seconds:.0f} s)")
    first = artifacts(py_run.dir, Path(ci_corpus).parent / "corpus")
    second = artifacts(recipe, recipe / "corpus" / "mini_ami")
    # the first run's dir is shared with other tests, which may add files (e.g. real Kaldi's
    # prepare_lang.sh writes dict/lexiconp.txt), never what the recipe made
    assert not set(second) - set(first), sorted(set(second) - set(first))[:8]
    assert sum(k.startswith("<corpus>") for k in second) > 10
    # five nnets (student_kd_u1x learns from the untranscribed audio too), and the copies of student_kd in the three adapted systems with 8 speakers' files
    # each, and in the points of the adaptation curve with a file per eval speaker
    curve_spk = len((recipe / "exp/ihm/student_adapt_curve/eval/pool/spk2utt").read_text().splitlines())
    assert sum("final.pt" in k for k in second) == len(NNETS) + 3 + CURVE_POINTS
    assert sum("/spk/" in k for k in second) == 3 * 8 + CURVE_POINTS * curve_spk
    assert len(second) > 500
    differ = [k for k in second if first[k] != second[k]]
    print(f"{len(second) - len(differ)} of {len(second)} artifacts the same bytes")
    assert not differ, f"{len(differ)} of {len(second)} artifacts differ, e.g. {differ[:8]}"
    results = [(d / "RESULTS.md").read_text().split("\n", 5)[-1] for d in (py_run.dir, recipe)]
    assert results[0] == results[1]  # all but the command line, which names the recipe dir
    if cluster:
        # the parallel jobs ran on this machine, the nnet training on Slurm (in the log, and in
        # its accounting: a completed job per nnet)
        logs = list((recipe / "exp" / "ihm" / "mono" / "log").glob("acc.*.log"))
        assert logs and not any("SLURM" in p.read_text() for p in logs)
        for nnet in NNETS:
            assert "SLURM_JOB_ID=" in (recipe / "exp" / "ihm" / nnet / "log" / "train_nnet.log").read_text()
        assert completed_slurm_jobs() - jobs_before >= len(NNETS)

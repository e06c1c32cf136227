"""kill -9 in the middle of a step, then a rerun: the same bytes as a run never killed, and no
temporaries left behind. (The training's own kill test is tests/nnet/test_train.py; the whole
recipe killed at random points is bench/bench_kills.py.)"""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

import kaldiio
import numpy as np

from tests.faults.common import STEPS, run
from tests.nnet.toy import make_data_dir


def start(name, *args):
    return subprocess.Popen([sys.executable, str(STEPS / f"{name}.py"), *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)


def kill_when(proc, ready, timeout=120):
    """SIGKILL the process group of `proc` once ready() holds; False when it ended first."""
    t0 = time.time()
    while not ready():
        if proc.poll() is not None or time.time() - t0 > timeout:
            return False
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def tree_digest(d, skip=("log",)):
    """{relative path: md5} of the files under d (logs and stamps aside)."""
    out = {}
    for root, dirs, files in os.walk(d):
        dirs[:] = [x for x in dirs if x not in skip]
        for f in files:
            p = os.path.join(root, f)
            if not f.endswith(".stamp"):
                out[os.path.relpath(p, d)] = hashlib.md5(open(p, "rb").read()).hexdigest()
    return out


def test_a_killed_forward_reruns_to_the_same_archive(teacher_dir, tmp_path):
    # enough frames (~140k) that the archive is written for seconds, not a moment to miss
    tr, _ = make_data_dir(tmp_path / "big", num_spk=8, utts_per_spk=50, frames=(300, 400))
    clean, out = tmp_path / "clean", tmp_path / "out"
    assert run("forward", tr, teacher_dir, f"ark,scp:{clean}.ark,{clean}.scp").returncode == 0
    out.mkdir()
    proc = start("forward", tr, teacher_dir, f"ark,scp:{out}/ll.ark,{out}/ll.scp")
    assert kill_when(proc, lambda: any(f.name.endswith(".tmp") for f in out.iterdir())), "ended before the kill"
    assert not (out / "ll.ark").exists() and not (out / "ll.scp").exists()
    assert run("forward", tr, teacher_dir, f"ark,scp:{out}/ll.ark,{out}/ll.scp").returncode == 0
    assert sorted(os.listdir(out)) == ["ll.ark", "ll.scp"]
    assert (out / "ll.ark").read_bytes() == open(f"{clean}.ark", "rb").read()


def test_a_killed_feature_extraction_reruns_to_the_same_features(espeak_corpus, tmp_path):
    results = {}
    for name in ("clean", "killed"):
        data = tmp_path / name / "data"
        shutil.copytree(espeak_corpus.data, data, ignore=shutil.ignore_patterns("feats.scp", "cmvn.scp", "conf"))
        args = ("--nj", 2, "--progress", "false", data, tmp_path / name / "log", tmp_path / name / "fbank")
        if name == "killed":
            log1 = tmp_path / name / "log" / "make_fbank_data.1.log"
            proc = start("make_fbank", *args)
            assert kill_when(proc, lambda: log1.exists() and log1.read_text().count("frames") >= 5), "ended first"
            assert not (data / "feats.scp").exists()
        assert run("make_fbank", *args).returncode == 0
        results[name] = {u: m for u, m in kaldiio.load_scp_sequential(str(data / "feats.scp"))}
    assert results["clean"].keys() == results["killed"].keys()
    assert all(np.array_equal(results["clean"][u], results["killed"][u]) for u in results["clean"])
    assert not list((tmp_path / "killed" / "fbank").glob(".*.tmp*"))


def test_a_killed_decode_reruns_to_the_same_transcripts(espeak_corpus, espeak_graph, tmp_path):
    sweep = ("--nj", 2, "--progress", "false", "--min-lmwt", 9, "--max-lmwt", 11, "--word-ins-penalty", "0.0")
    clean, out = tmp_path / "clean", tmp_path / "killed"
    assert run("decode", *sweep, espeak_graph, espeak_corpus.data, clean).returncode == 0
    proc = start("decode", *sweep, espeak_graph, espeak_corpus.data, out)
    assert kill_when(proc, lambda: (out / "log" / "decode.1.log").exists()), "ended before the kill"
    assert not (out / "scoring_kaldi" / "best_wer").exists()
    assert run("decode", *sweep, espeak_graph, espeak_corpus.data, out).returncode == 0
    a, b = tree_digest(clean), tree_digest(out)
    # transcripts and scores (best_wer and sclite's reports name their own dir, the markers hold times)
    kept = [k for k in a if k.endswith(".tra") or k.startswith("wer_")]
    assert len(kept) >= 7 and set(kept) == {k for k in b if k in kept}
    assert {k: a[k] for k in kept} == {k: b[k] for k in kept}

"""Operating-system failures: a read-only or full file system is one line naming the path and
what to do, found before long work where it can be; temporaries of killed runs are removed.
Read-only and full file systems are small tmpfs mounts (as root); skipped, with the reason,
where the machine does not allow mounting."""
import contextlib
import os
import subprocess

import pytest

from tests.faults.common import assert_one_line_error, run
from tests.nnet.toy import FAST


@contextlib.contextmanager
def tmpfs(path, size="64k", read_only=False):
    path.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}" + (",ro" if read_only else ""), "tmpfs",
                        str(path)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({p.stderr.strip() or 'not root'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_features_into_a_read_only_dir_fail_before_any_work(espeak_corpus, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(espeak_corpus.data, data, ignore=shutil.ignore_patterns("feats.scp", "cmvn.scp", "conf"))
    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        p = run("make_fbank", "--nj", 2, "--progress", "false", data, tmp_path / "log", ro / "fbank")
        last = assert_one_line_error(p, ro / "fbank")
        assert "Read-only file system" in last
    assert not list((tmp_path / "log").glob("make_fbank_*.log"))  # no job started
    assert not (data / "feats.scp").exists()


def test_forward_onto_a_full_disk(toy_split, teacher_dir, tmp_path):
    tr, _, _ = toy_split
    with tmpfs(tmp_path / "full", size="16k") as full:
        p = run("forward", tr, teacher_dir, f"ark,scp:{full}/ll.ark,{full}/ll.scp")
        last = assert_one_line_error(p, full, "No space left on device")
        assert "free some space" in last
        assert not (full / "ll.ark").exists() and not (full / "ll.scp").exists()
        assert not [f for f in os.listdir(full) if f.endswith(".tmp") or ".tmp" in f]


def test_training_into_a_read_only_dir(toy_data, tmp_path):
    data, ali = toy_data
    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        p = run("train", *FAST, "--cv-fraction", 0.25, data, ali, ro / "exp")
        assert_one_line_error(p, ro / "exp")


def test_decoding_into_a_read_only_dir(espeak_corpus, espeak_mono, espeak_graph, tmp_path):
    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        p = run("decode", "--nj", 2, "--progress", "false", "--min-lmwt", 10, "--max-lmwt", 10,
                "--word-ins-penalty", "0.0", espeak_graph, espeak_corpus.data, ro / "decode")
        assert_one_line_error(p, ro / "decode")


def test_temporaries_of_a_killed_forward_are_removed_by_the_next_run(toy_split, teacher_dir, tmp_path):
    tr, _, _ = toy_split
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / ".ll.ark.abc123.tmp", out / ".ll.scp.def456.tmp"]
    for f in stale:
        f.write_bytes(b"\0" * 1000)  # what kill -9 during the atomic write leaves
    p = run("forward", tr, teacher_dir, f"ark,scp:{out}/ll.ark,{out}/ll.scp")
    assert p.returncode == 0, p.stderr[-2000:]
    assert not any(f.exists() for f in stale)
    assert sorted(os.listdir(out)) == ["ll.ark", "ll.scp"]


def test_training_onto_a_full_disk(toy_data, tmp_path):
    data, ali = toy_data
    with tmpfs(tmp_path / "full", size="200k") as full:
        p = run("train", *FAST, "--cv-fraction", 0.25, "--model-preset", "teacher-small", data, ali, full / "exp")
        assert_one_line_error(p, full / "exp")
        assert not (full / "exp" / "final.pt").exists()

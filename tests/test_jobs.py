"""hdnn/jobs.py and the data-dir splits: Kaldi's `$cmd JOB=1:$nj` contract, built in (run.pl) and
through Kaldi's own run.pl and slurm.pl (on a one-node Slurm cluster, tests/slurm.py)."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hdnn import jobs
from hdnn.errors import HdnnError
from hdnn.kaldi.binaries import kaldi_env
from hdnn.kaldi.data_dir import DataDir, split_data, split_utts, subset_data_dir
from tests.kaldi.kaldi_data import make_data_dir

SPEAKERS = [f"S{i:02d}" for i in range(7)]


def _uneven_data_dir(root):
    """Seven speakers with 1..7 utterances: a split by speaker has to balance them."""
    full = make_data_dir(root / "full", speakers=SPEAKERS, utts_per_spk=7)
    keep = [u for s_index, s in enumerate(SPEAKERS) for u in DataDir(full).spk2utt[s][:s_index + 1]]
    subset_data_dir(full, root / "data", keep)
    return root / "data"


def _files(d):
    return {p.name: p.read_text() for p in sorted(Path(d).iterdir()) if p.is_file()}


@pytest.mark.kaldi
@pytest.mark.parametrize("per_utt", [False, True])
def test_split_data_writes_what_kaldis_split_data_writes(kaldi, tmp_path, per_utt):
    ours = _uneven_data_dir(tmp_path / "ours")
    theirs = _uneven_data_dir(tmp_path / "theirs")
    for nj in (1, 3, 4):
        split = split_data(ours, nj, per_utt=per_utt)
        p = subprocess.run(["utils/split_data.sh", *(["--per-utt"] if per_utt else []), str(theirs), str(nj)],
                           cwd=Path(kaldi) / "egs/wsj/s5", env=kaldi_env(), capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        for job in range(1, nj + 1):
            kaldi_files = _files(theirs / split.name / str(job))
            our_files = _files(split / str(job))
            assert set(kaldi_files) <= set(our_files), job
            for name, text in kaldi_files.items():
                assert our_files[name] == text.replace(str(tmp_path / "theirs"), str(tmp_path / "ours")), (nj, job, name)


def test_split_by_speaker_balances_utterances(tmp_path):
    data = _uneven_data_dir(tmp_path)
    parts = split_utts(data, 3)
    utt2spk = DataDir(data).utt2spk
    assert [len(p) for p in parts] == [6, 9, 13]  # utils/split_scp.pl's answer (checked against it above)
    assert sum(parts, []) == list(utt2spk)
    assert all(len({utt2spk[u] for u in p} & {utt2spk[u] for u in q}) == 0
               for i, p in enumerate(parts) for q in parts[i + 1:])
    with pytest.raises(HdnnError, match="cannot split 7 speakers into 8 jobs"):
        split_utts(data, 8)


def test_split_data_rewrites_only_what_changed(tmp_path):
    data = _uneven_data_dir(tmp_path)
    split = split_data(data, 2)
    before = {p: p.stat().st_mtime_ns for p in split.rglob("*") if p.is_file()}
    time.sleep(0.01)
    split_data(data, 2)
    assert {p: p.stat().st_mtime_ns for p in split.rglob("*") if p.is_file()} == before
    text = (data / "text").read_text().replace("HELLO", "GOODBYE", 1)
    (data / "text").write_text(text)
    split_data(data, 2)
    assert (split / "1" / "text").read_text().splitlines()[0] == text.splitlines()[0]
    assert (split / "2" / "utt2spk").stat().st_mtime_ns == before[split / "2" / "utt2spk"]


def _script(tmp_path, body):
    script = tmp_path / "job.py"
    script.write_text(body)
    return [sys.executable, str(script)]


def test_run_pl_built_in(tmp_path):
    """JOB in the command and the log; run.pl's log format; --max-jobs-run 1 runs one at a time."""
    command = _script(tmp_path, "import sys, time\n"
                                "t = time.time(); time.sleep(0.2)\n"
                                "open(sys.argv[2], 'w').write(f'{t} {time.time()}')\n"
                                "print('job', sys.argv[1], 'done')\n")
    jobs.run("run.pl --max-jobs-run 1 --mem 2G", 3, tmp_path / "log" / "t.JOB.log",
             command + ["JOB", str(tmp_path / "out.JOB")], progress=False)
    spans = sorted(tuple(map(float, (tmp_path / f"out.{j}").read_text().split())) for j in (1, 2, 3))
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    log = (tmp_path / "log" / "t.2.log").read_text().splitlines()
    assert log[0] == f"# {sys.executable} {command[1]} 2 {tmp_path}/out.2"
    assert log[1].startswith("# Started at ") and log[3] == "job 2 done"
    assert log[-2].startswith("# Accounting: time=") and log[-1].startswith("# Ended (code 0) at ")


def test_failed_job_is_named_with_its_log_and_error(tmp_path):
    command = _script(tmp_path, "import sys\n"
                                "if sys.argv[1] in ('2', '3'): sys.exit(f'job.py: error: utterance u{sys.argv[1]} is bad')\n")
    with pytest.raises(HdnnError) as e:
        jobs.run("run.pl", 3, tmp_path / "log" / "t.JOB.log", command + ["JOB"], what="test jobs", progress=False)
    assert str(e.value) == (f"test jobs: job 2 of 3 failed: utterance u2 is bad "
                            f"(log: {tmp_path}/log/t.2.log); 1 more of the 3 jobs failed")
    assert (tmp_path / "log" / "t.3.log").read_text().splitlines()[-1].startswith("# Ended (code 1)")
    # a Kaldi program's error: its ERROR line, not the stack trace or the exception's name after it
    kaldi_error = ("ERROR (latgen-faster-mapped[5.5]:main():x.cc:1) mismatch, matrix has 256 cols\n\n"
                   "[ Stack-Trace: ]\nlibkaldi-base.so(kaldi::MessageLogger::LogMessage() const+0x74c)\n\n"
                   "kaldi::KaldiFatalError")
    command = _script(tmp_path, f"import sys\nprint({kaldi_error!r}, end='')\nsys.exit(255)\n")
    with pytest.raises(HdnnError, match=r"job 1 of 1 failed: ERROR \(latgen-faster-mapped\[5\.5\]:main\(\):x\.cc:1\) "
                                        r"mismatch, matrix has 256 cols \(log: "):
        jobs.run("run.pl", 1, tmp_path / "log" / "k.JOB.log", command, progress=False)
    # a pipe whose Python step failed first: its error, not the Kaldi program's that followed
    command = _script(tmp_path, "import sys\nprint('forward.py: error: utt u1: NaN in features')\n"
                                f"print({kaldi_error!r}, end='')\nsys.exit(1)\n")
    with pytest.raises(HdnnError, match=r"job 1 of 1 failed: utt u1: NaN in features \(log: "):
        jobs.run("run.pl", 1, tmp_path / "log" / "p.JOB.log", command, progress=False)


def test_bad_cmd_is_one_clear_error(tmp_path):
    with pytest.raises(HdnnError, match="no such command 'qsub.pl'"):
        jobs.run("qsub.pl --mem 2G", 2, tmp_path / "t.JOB.log", ["true"])
    with pytest.raises(HdnnError, match="run.pl takes .* with a value, not '--bogus'"):
        jobs.run("run.pl --bogus 1", 2, tmp_path / "t.JOB.log", ["true"])
    with pytest.raises(HdnnError, match="bad --max-jobs-run '0'"):
        jobs.run("run.pl --max-jobs-run 0", 2, tmp_path / "t.JOB.log", ["true"])
    with pytest.raises(HdnnError, match="needs JOB in it"):
        jobs.run("run.pl", 2, tmp_path / "t.log", ["true"])
    with pytest.raises(HdnnError, match="No closing quotation"):
        jobs.run('run.pl --mem "2G', 2, tmp_path / "t.JOB.log", ["true"])


@pytest.mark.kaldi
def test_kaldis_run_pl(kaldi, tmp_path):
    command = _script(tmp_path, "import sys\nopen(sys.argv[2], 'w').write(sys.argv[1])\n"
                                "if sys.argv[1] == '3': sys.exit('job.py: error: three')\n")
    run_pl = f"{kaldi}/egs/wsj/s5/utils/run.pl"
    jobs.run(run_pl, 2, tmp_path / "log" / "t.JOB.log", command + ["JOB", str(tmp_path / "out.JOB")])
    assert [(tmp_path / f"out.{j}").read_text() for j in (1, 2)] == ["1", "2"]
    with pytest.raises(HdnnError, match=r"job 3 of 3 failed: three \(log: .*/t\.3\.log\)$"):
        jobs.run(run_pl, 3, tmp_path / "log" / "t.JOB.log", command + ["JOB", str(tmp_path / "out.JOB")])
    # a submission that fails before any job runs is named by the submitter's own message
    slurm_pl = f"{kaldi}/egs/wsj/s5/utils/parallel/slurm.pl --config {tmp_path}/missing.conf"
    with pytest.raises(HdnnError, match=r"^x: slurm.pl failed: Could not open config file .*missing.conf$"):
        jobs.run(slurm_pl, 2, tmp_path / "log" / "x.JOB.log", ["true"])


@pytest.mark.kaldi
def test_slurm_pl_on_a_real_cluster(kaldi, slurm_cluster, tmp_path):
    """Kaldi's slurm.pl submits the jobs as an array to the test cluster; a failing task is named."""
    slurm_pl = f"{kaldi}/egs/wsj/s5/utils/parallel/slurm.pl --config {slurm_cluster.slurm_pl_conf}"
    command = _script(tmp_path, "import os, sys\n"
                                "open(sys.argv[2], 'w').write(os.environ.get('SLURM_ARRAY_TASK_ID', 'none'))\n"
                                "if sys.argv[1] == '2' and len(sys.argv) > 3: sys.exit('job.py: error: two')\n")
    jobs.run(slurm_pl, 2, tmp_path / "log" / "t.JOB.log", command + ["JOB", str(tmp_path / "out.JOB")])
    assert [(tmp_path / f"out.{j}").read_text() for j in (1, 2)] == ["1", "2"]  # ran as Slurm array tasks
    with pytest.raises(HdnnError, match=r"job 2 of 2 failed: two \(log: .*/f\.2\.log\)$"):
        jobs.run(slurm_pl, 2, tmp_path / "log" / "f.JOB.log", command + ["JOB", str(tmp_path / "f.JOB"), "x"])


@pytest.mark.kaldi
def test_steps_on_slurm_make_what_run_pl_makes(kaldi, slurm_cluster, espeak_corpus, espeak_graph, tmp_path):
    """make_mfcc.py, decode.py and score.py with --cmd slurm.pl: the same archives, transcripts
    and scores as with the built-in run.pl, each job a task of a Slurm array."""
    import shutil

    from tests.gmm.fixtures import run_step

    slurm_pl = f"{kaldi}/egs/wsj/s5/utils/parallel/slurm.pl --config {slurm_cluster.slurm_pl_conf}"
    data = tmp_path / "data"
    shutil.copytree(espeak_corpus.data, data, ignore=shutil.ignore_patterns("data", "log", "split*"))
    run_step("make_mfcc", "--nj", 2, "--cmd", slurm_pl, data, tmp_path / "log", tmp_path / "mfcc")
    for job in (1, 2):
        assert (tmp_path / "mfcc" / f"raw_mfcc_data.{job}.ark").read_bytes() == \
            (espeak_corpus.data / "data" / f"raw_mfcc_data.{job}.ark").read_bytes()
        assert f"SLURM_ARRAY_TASK_ID={job}" in (tmp_path / "log" / f"make_mfcc_data.{job}.log").read_text()
    opts = ["--nj", 2, "--min-lmwt", 10, "--max-lmwt", 10, "--word-ins-penalty", "0.0", "--skip-scoring", "true",
            "--progress", "false"]
    run_step("decode", *opts, espeak_graph, espeak_corpus.data, tmp_path / "local")
    run_step("decode", *opts, "--cmd", slurm_pl, espeak_graph, espeak_corpus.data, tmp_path / "slurm")
    assert (tmp_path / "slurm" / "tra" / "10_0.0.tra").read_text() == (tmp_path / "local" / "tra" / "10_0.0.tra").read_text()
    assert "SLURM_ARRAY_TASK_ID=2" in (tmp_path / "slurm" / "log" / "decode.2.log").read_text()
    run_step("score", espeak_corpus.data, espeak_graph, tmp_path / "local")
    run_step("score", "--cmd", slurm_pl, espeak_corpus.data, espeak_graph, tmp_path / "slurm")
    assert (tmp_path / "slurm" / "wer_10_0.0").read_text() == (tmp_path / "local" / "wer_10_0.0").read_text()
    assert "SLURM_ARRAY_TASK_ID=1" in (tmp_path / "slurm" / "scoring_kaldi" / "log" / "score.1.log").read_text()


def _log_lines(path):
    """A run.pl log without its times: the command line, the output, the exit code."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith(("# Started at", "# Accounting")):
            lines.append(line.split(" at ")[0] if line.startswith("# Ended") else line)
    return lines


@pytest.mark.kaldi
def test_run_pl_command_line_behaves_as_kaldis(kaldi, tmp_path):
    """tools/bin/run.pl (the recipe's run.pl where there is no Kaldi) against Kaldi's utils/run.pl:
    the same logs (but for the times), exit statuses and messages; the command run by bash."""
    root = Path(__file__).resolve().parents[1]
    programs = {"ours": root / "tools" / "bin" / "run.pl", "theirs": Path(kaldi) / "egs/wsj/s5/utils/run.pl"}
    cases = ["JOB=1:3 log/a.JOB.log echo JOB \\| tr 1 X",
             "--max-jobs-run 1 JOB=2:4 log/b.JOB.log test JOB = 3",
             "log/c.log echo 'two words'",
             "JOB=5 log/e.JOB.log false",
             "JOB=1:2 log/d.log true"]
    for case in cases:
        runs = {}
        for name, prog in programs.items():
            (tmp_path / name).mkdir(exist_ok=True)
            p = subprocess.run(["bash", "-c", f"{prog} {case}"], cwd=tmp_path / name, capture_output=True, text=True)
            logs = {q.name: _log_lines(q) for q in sorted((tmp_path / name / "log").glob("*.log"))}
            runs[name] = (p.returncode, p.stderr.strip().splitlines()[:1], logs)
        assert runs["ours"] == runs["theirs"], case


@pytest.mark.kaldi
def test_gmm_training_on_slurm_makes_the_run_pl_model(kaldi, slurm_cluster, espeak_corpus, tmp_path):
    """train_mono.py's alignment and accumulation jobs as Slurm array tasks: the same model and
    alignments, byte for byte, as through the built-in run.pl."""
    from tests.gmm.fixtures import run_step

    slurm_pl = f"{kaldi}/egs/wsj/s5/utils/parallel/slurm.pl --config {slurm_cluster.slurm_pl_conf}"
    opts = ["--nj", 2, "--num-iters", 4, "--max-iter-inc", 3, "--totgauss", 300, "--progress", "false"]
    run_step("train_mono", *opts, espeak_corpus.data, espeak_corpus.lang, tmp_path / "local")
    run_step("train_mono", *opts, "--cmd", slurm_pl, espeak_corpus.data, espeak_corpus.lang, tmp_path / "slurm")
    for name in ("final.mdl", "ali.1.gz", "ali.2.gz"):
        assert (tmp_path / "slurm" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    assert "SLURM_ARRAY_TASK_ID=2" in (tmp_path / "slurm" / "log" / "acc.3.2.log").read_text()

"""train_smbr.py on the toy data with sausage denominator lattices: the expected frame accuracy
rises, a killed or extended run resumes to the same weights, gates-only and teacher-student
variants, bad input. Real Kaldi lattices: tests/recipe/test_recipe_kaldi.py."""
import numpy as np
import pytest
import torch

from hdnn.nnet.model_dir import load_feature_pipeline
from hdnn.nnet.models import load_model
from tests.nnet.toy import FAST, make_data_dir, make_sequence_dirs, run_step

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def seq(tmp_path_factory):
    """(data, lang, student dir, teacher file, ali dir, denlat dir) of the toy corpus."""
    root = tmp_path_factory.mktemp("smbr")
    data, ali = make_data_dir(root)
    ali_dir, lang, denlats = make_sequence_dirs(root, ali)
    run_step("train.py", *FAST, "--max-iters", "3", "--model-preset", "student-small", data, data, ali,
             root / "student")
    run_step("train.py", *FAST, "--max-iters", "3", "--model-preset", "teacher-small", data, data, ali,
             root / "teacher")
    return data, lang, root / "student", root / "teacher" / "final.pt", ali_dir, denlats


def smbr(seq, out, *opts, check=True):
    data, lang, student, _, ali_dir, denlats = seq
    return run_step("train_smbr.py", "--learn-rate", "2e-4", *opts, data, lang, student, ali_dir, denlats, out,
                    check=check)


def curve(out):
    rows = [line.split("\t") for line in (out / "curve.tsv").read_text().splitlines()[1:]]
    return [float(r[3]) for r in rows]


def weights(path):
    return load_model(path).state_dict()


@torch.no_grad()
def kl_to_teacher(seq, model_file):
    """Mean frame KL(teacher || model) over the toy data."""
    data, teacher_file = seq[0], seq[3]
    models = [load_model(f).eval() for f in (teacher_file, model_file)]
    pipes = [load_feature_pipeline(f.parent, data) for f in (teacher_file, model_file)]
    total, frames = 0.0, 0
    for utt in pipes[0].utts:
        p, q = (torch.log_softmax(m(torch.from_numpy(pipe(utt))), -1) for m, pipe in zip(models, pipes))
        total += (p.exp() * (p - q)).sum().item()
        frames += len(p)
    return total / frames


def test_smbr_raises_the_expected_frame_accuracy(seq, tmp_path):
    out = tmp_path / "smbr"
    smbr(seq, out, "--num-iters", "3")
    acc = curve(out)
    print("frame accuracy per iteration:", acc)
    assert len(acc) == 3 and acc[2] > acc[0] + 0.01
    assert sorted(p.name for p in (out / "nnet").iterdir()) == ["iter1.pt", "iter2.pt", "iter3.pt"]
    for name in ("feature_opts.json", "ali_train_pdf.counts", "final.pt"):
        assert (out / name).exists()
    log = (out / "log" / "train_smbr.log").read_text()
    assert "average frame accuracy" in log
    assert "iteration 3: 9 of 32 utterances" in log, log  # progress in the log, not only on a terminal
    ll = tmp_path / "ll.ark"
    run_step("forward.py", seq[0], out, f"ark:{ll}")
    assert ll.stat().st_size > 0


def test_resumed_and_extended_runs_equal_one_run(seq, tmp_path):
    one = tmp_path / "one"
    smbr(seq, one, "--num-iters", "2")
    two = tmp_path / "two"
    smbr(seq, two, "--num-iters", "1")
    p = smbr(seq, two, "--num-iters", "2")
    assert "resuming after iteration 1" in p.stderr
    a, b = weights(one / "final.pt"), weights(two / "final.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert curve(one) == curve(two)
    p = smbr(seq, two, "--num-iters", "2")
    assert "already trained" in p.stderr
    p = smbr(seq, two, "--num-iters", "2", "--smooth", "0.1")
    assert "training again" in p.stderr
    c = weights(two / "final.pt")
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_gates_only_changes_only_the_gates(seq, tmp_path):
    out = tmp_path / "gates"
    smbr(seq, out, "--num-iters", "1", "--update", "gates", "--learn-rate", "1e-3")
    before, after = weights(seq[2] / "final.pt"), weights(out / "final.pt")
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    print("changed:", changed)
    assert changed and all("gate" in k for k in changed)


def test_teacher_student_and_mmi_variants(seq, tmp_path):
    teacher = seq[3]
    smbr(seq, tmp_path / "ts", "--num-iters", "2", "--teacher", teacher, "--ts-weight", "0.5", "--temperature", "2")
    smbr(seq, tmp_path / "plain", "--num-iters", "2")
    ts, plain = weights(tmp_path / "ts" / "final.pt"), weights(tmp_path / "plain" / "final.pt")
    assert not all(torch.equal(ts[k], plain[k]) for k in ts)
    # the teacher's term keeps the model closer to the teacher than sMBR alone does
    kl = {name: kl_to_teacher(seq, tmp_path / name / "final.pt") for name in ("ts", "plain")}
    print("KL(teacher || model):", kl)
    assert kl["ts"] < kl["plain"]
    smbr(seq, tmp_path / "mmi", "--num-iters", "2", "--criterion", "mmi")
    obj = [float(line.split("\t")[4]) for line in (tmp_path / "mmi" / "curve.tsv").read_text().splitlines()[1:]]
    assert obj[1] < obj[0]  # logZ_den - kappa * y[num] per frame falls


def test_lattice_free_denominator_raises_the_expected_frame_accuracy(seq, tmp_path):
    data, lang, student, _, ali_dir, _ = seq
    den = tmp_path / "dengraph"
    p = run_step("make_den_graph.py", ali_dir, den)
    assert "states (transition-ids)" in p.stdout and (den / "log" / "make_den_graph.log").exists()
    out = tmp_path / "free"
    run_step("train_smbr.py", "--learn-rate", "2e-4", "--num-iters", "3", data, lang, student, ali_dir, den, out)
    acc = curve(out)
    print("frame accuracy per iteration (lattice-free):", acc)
    assert len(acc) == 3 and acc[2] > acc[0] + 0.01
    before, after = weights(student / "final.pt"), weights(out / "final.pt")
    assert not all(torch.equal(before[k], after[k]) for k in before)
    run_step("train_smbr.py", "--num-iters", "2", "--criterion", "mmi", data, lang, student, ali_dir, den, tmp_path / "mmi")
    obj = [float(line.split("\t")[4]) for line in (tmp_path / "mmi" / "curve.tsv").read_text().splitlines()[1:]]
    assert obj[1] < obj[0]
    # a graph of another transition model is refused, naming both
    from hdnn.nnet.dengraph import DenGraph

    g = DenGraph.load(den / "den_graph.npz")
    g.pdfs = (g.pdfs + 1) % (g.pdfs.max() + 1)
    other = tmp_path / "other"
    other.mkdir()
    g.save(other / "den_graph.npz")
    p = run_step("train_smbr.py", data, lang, student, ali_dir, other, tmp_path / "bad", check=False)
    assert p.returncode == 1 and "was not made with the transition model of" in p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "bad" / "final.pt").exists()


def test_bad_input_is_one_clear_line(seq, tmp_path):
    data, lang, student, teacher, ali_dir, denlats = seq
    cases = [
        (["--ts-weight", "0.5"], "a teacher (--teacher) is used exactly when --ts-weight > 0"),
        (["--criterion", "mpe"], "invalid choice: 'mpe'"),
        (["--learn-rate", "0"], "must be positive"),
    ]
    for opts, message in cases:
        p = smbr(seq, tmp_path / "bad", *opts, check=False)
        assert p.returncode != 0 and message in p.stderr, p.stderr
        assert "Traceback" not in p.stderr
    p = run_step("train_smbr.py", data, lang, student, ali_dir, tmp_path, tmp_path / "bad", check=False)
    assert p.returncode == 1 and "no lat.*.gz lattice files" in p.stderr and "Traceback" not in p.stderr
    # lattices of other utterances' lengths: named, and no model written
    short = tmp_path / "short"
    short.mkdir()
    from hdnn.kaldi.lattices import read_lattices, write_lattices

    lats = list(read_lattices(f"ark:gunzip -c {denlats}/lat.1.gz |"))
    utt, lat = lats[0]
    lat.num_states -= 1
    keep = lat.dst < lat.num_states
    for name in ("src", "dst", "tid", "word", "graph", "acoustic"):
        setattr(lat, name, getattr(lat, name)[keep])
    lat.final_graph, lat.final_acoustic = lat.final_graph[:-1], lat.final_acoustic[:-1]
    lat.final_graph[-1] = lat.final_acoustic[-1] = 0.0
    write_lattices(f"ark:| gzip -c > {short}/lat.1.gz", lats)
    p = run_step("train_smbr.py", data, lang, student, ali_dir, short, tmp_path / "bad2", check=False)
    assert p.returncode == 1 and f"lattice of {utt} has" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "bad2" / "final.pt").exists()
    # a damaged checkpoint
    out = tmp_path / "ckpt"
    smbr(seq, out, "--num-iters", "1")
    (out / "checkpoint.pt").write_bytes(b"garbage")
    p = smbr(seq, out, "--num-iters", "2", check=False)
    assert p.returncode == 1 and "checkpoint.pt: cannot resume from it" in p.stderr
    assert np.isfinite(curve(out)[0])

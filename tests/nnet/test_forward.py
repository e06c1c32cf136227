"""forward.py: log-likelihoods (nnet-forward --no-softmax --class-frame-counts), read back by real Kaldi."""
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from hdnn.errors import HdnnError
from hdnn.kaldi.alignments import read_pdf_alignments
from hdnn.kaldi.binaries import kaldi_env, run_kaldi
from hdnn.kaldi.counts import read_counts
from hdnn.kaldi.data_dir import read_kaldi_map
from hdnn.kaldi.io import read_matrices, write_matrices
from hdnn.kaldi.posteriors import read_posteriors
from hdnn.nnet.forward import forward_dir
from hdnn.nnet.model_dir import load_feature_pipeline

from tests.nnet.toy import STEPS, make_data_dir, run_step

torch.set_num_threads(1)


def _loglikes(tmp_path, data, model_dir, name="ll"):
    spec = f"ark,scp:{tmp_path}/{name}.ark,{tmp_path}/{name}.scp"
    run_step("forward.py", data, model_dir, spec)
    return dict(read_matrices(f"scp:{tmp_path}/{name}.scp"))


def test_loglikes_are_log_posteriors_minus_log_priors(teacher_dir, toy_split, tmp_path):
    tr, cv, _ = toy_split
    ll = _loglikes(tmp_path, cv, teacher_dir)
    counts = read_counts(teacher_dir / "ali_train_pdf.counts")
    log_prior = np.log(counts / counts.sum())
    pipeline = load_feature_pipeline(teacher_dir, cv)
    assert sorted(ll) == sorted(pipeline.utts)
    for utt, mat in ll.items():
        assert mat.shape == (len(pipeline(utt)), len(counts))
        # adding the log-priors back gives log-posteriors: each frame's softmax sums to one
        np.testing.assert_allclose(np.exp(mat + log_prior).sum(1), 1.0, rtol=1e-4)
    # the teacher is better than chance on held-out speakers
    ali = dict(read_pdf_alignments(toy_split[2]))
    correct = sum(int(((ll[u] + log_prior).argmax(1) == ali[u]).sum()) for u in ll)
    assert correct / sum(len(ali[u]) for u in ll) > 2 / 6


def test_forward_posteriors_are_topk(teacher_dir, toy_split, tmp_path):
    _, cv, _ = toy_split
    run_step("forward.py", "--output", "posteriors", "--topk", "2", cv, teacher_dir, f"ark:{tmp_path}/post.ark")
    posts = dict(read_posteriors(f"ark:{tmp_path}/post.ark"))
    assert len(posts) == len(read_kaldi_map(cv / "utt2spk"))
    frames = [f for post in posts.values() for f in post]
    assert all(1 <= len(f) <= 2 and abs(sum(w for _, w in f) - 1) < 1e-5 for f in frames)


def test_forward_bad_input_leaves_no_output(teacher_dir, toy_split, tmp_path):
    _, cv, _ = toy_split
    bad = tmp_path / "bad"
    shutil.copytree(cv, bad)
    utts = list(read_kaldi_map(bad / "feats.scp"))
    write_matrices(f"ark,scp:{bad}/nan.ark,{bad}/nan.scp", [(utts[2], np.full((40, 5), np.inf, np.float32))])
    lines = (bad / "feats.scp").read_text().splitlines()
    lines[2] = (bad / "nan.scp").read_text().strip()
    (bad / "feats.scp").write_text("\n".join(lines) + "\n")
    out = f"ark,scp:{tmp_path}/o.ark,{tmp_path}/o.scp"
    with pytest.raises(HdnnError, match=rf"feats\.scp: utterance {utts[2]} has NaN/Inf"):
        forward_dir(bad, teacher_dir, out)
    assert not list(tmp_path.glob("o.*")) and not list(tmp_path.glob(".o.*"))

    p = run_step("forward.py", bad, teacher_dir, out, check=False)
    assert p.returncode == 1 and p.stderr.strip().splitlines()[-1].startswith("forward.py: error: ")

    other = make_data_dir(tmp_path / "other", num_spk=2, feat_dim=7)[0]
    with pytest.raises(HdnnError, match=r"feats\.scp: features of dim 7, but the model in .* dim 5"):
        forward_dir(other, teacher_dir, out)
    (tmp_path / "few.counts").write_text("[ 1 2 3 ]\n")
    with pytest.raises(HdnnError, match=r"few\.counts: 3 counts, but the model has 6 outputs"):
        forward_dir(cv, teacher_dir, out, counts_file=tmp_path / "few.counts")
    assert not list(tmp_path.glob("o.*"))


@pytest.mark.kaldi
def test_kaldi_reads_forward_output(kaldi, teacher_dir, toy_split, tmp_path):
    tr, cv, ali = toy_split
    ll = _loglikes(tmp_path, cv, teacher_dir)
    # copy-feats reads the ark,scp; feat-to-len agrees on the frame counts
    text = run_kaldi(["copy-feats", f"scp:{tmp_path}/ll.scp", "ark,t:-"]).stdout
    (tmp_path / "ll.txt").write_bytes(text)
    for utt, mat in read_matrices(f"ark:{tmp_path}/ll.txt"):
        np.testing.assert_allclose(mat, ll[utt], rtol=1e-5, atol=1e-4)
    lens = dict(line.split() for line in run_kaldi(["feat-to-len", f"scp:{tmp_path}/ll.scp", "ark,t:-"])
                .stdout.decode().splitlines())
    assert {u: int(n) for u, n in lens.items()} == {u: len(m) for u, m in ll.items()}

    # ark:- to stdout, into a Kaldi pipe
    cmd = f"{sys.executable} {STEPS}/forward.py {cv} {teacher_dir} ark:- | copy-feats ark:- ark,t:{tmp_path}/piped.txt"
    subprocess.run(cmd, shell=True, capture_output=True, env=kaldi_env(), check=True)
    piped = dict(read_matrices(f"ark:{tmp_path}/piped.txt"))
    assert piped.keys() == ll.keys()
    for utt, mat in piped.items():
        np.testing.assert_allclose(mat, ll[utt], rtol=1e-5, atol=1e-4)

    # the priors: compute_priors.py writes what analyze-counts writes
    run_step("compute_priors.py", "--num-pdfs", "6", ali, tmp_path / "ours.counts")
    run_kaldi(["analyze-counts", "--binary=false", "--counts-dim=6", ali, str(tmp_path / "kaldi.counts")])
    np.testing.assert_allclose(read_counts(tmp_path / "ours.counts"), read_counts(tmp_path / "kaldi.counts"))

    # nnet-forward with the saved final.feature_transform computes the network input of training
    utt2spk = f"ark:{cv}/utt2spk"
    feats = f"ark:apply-cmvn --utt2spk={utt2spk} scp:{cv}/cmvn.scp scp:{cv}/feats.scp ark:- |"
    out = run_kaldi(["nnet-forward", str(teacher_dir / "final.feature_transform"), feats, "ark,t:-"]).stdout
    (tmp_path / "nnet_in.txt").write_bytes(out)
    pipeline = load_feature_pipeline(teacher_dir, cv)
    for utt, mat in read_matrices(f"ark:{tmp_path}/nnet_in.txt"):
        np.testing.assert_allclose(mat, pipeline(utt), rtol=1e-4, atol=1e-4)

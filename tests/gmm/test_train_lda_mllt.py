"""LDA+MLLT training: the transforms, the trained system, and real Kaldi using it."""
import subprocess

import numpy as np
import pytest

from hdnn.gmm.lda_mllt import estimate_lda, estimate_mllt
from hdnn.kaldi.binary import read_kaldi_matrix
from hdnn.kaldi.gmm_model import read_gmm_model


def test_lda_whitens_within_class_and_orders_by_separation():
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(6, 6))
    means = rng.normal(scale=3.0, size=(5, 6))
    labels = rng.integers(0, 5, size=4000)
    x = (rng.normal(size=(4000, 6)) + means[labels]) @ mix
    lda = estimate_lda([x], [labels], [np.ones(4000)], num_pdfs=5, dim=4)
    assert lda.shape == (4, 6)
    y = x @ lda.T
    within = sum(np.cov(y[labels == c].T, bias=True) * np.mean(labels == c) for c in range(5))
    np.testing.assert_allclose(within, np.eye(4), atol=0.05)
    spread = np.var([y[labels == c].mean(0) for c in range(5)], axis=0)
    assert list(spread) == sorted(spread, reverse=True)


def test_mllt_diagonalises_a_shared_covariance():
    """With one Gaussian of full covariance S, MLLT makes M S M^T diagonal."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 4))
    S = a @ a.T + np.eye(4)
    beta = 1000.0
    G = np.stack([beta * S / S[i, i] for i in range(4)])
    M = None
    for _ in range(5):  # alternate with re-estimating the variances, as training does
        T = np.eye(4) if M is None else M
        var = np.diag(T @ S @ T.T)
        G = np.stack([beta * (T @ S @ T.T) / var[i] for i in range(4)])
        step = estimate_mllt(beta, G, num_iters=50)
        M = step @ T
    C = M @ S @ M.T
    off = C - np.diag(np.diag(C))
    assert np.abs(off).max() < 1e-3 * np.abs(np.diag(C)).max()


def test_train_lda_mllt_outputs_and_timings(espeak_corpus, espeak_lda_mllt, espeak_tri):
    from tests.gmm.test_align import boundary_errors
    from tests.gmm.test_train import final_like

    mat = read_kaldi_matrix(espeak_lda_mllt / "final.mat")
    assert mat.shape == (40, 13 * 7)
    assert (espeak_lda_mllt / "splice_opts").read_text().split() == ["--left-context=3", "--right-context=3"]
    tm, am = read_gmm_model(espeak_lda_mllt / "final.mdl")
    assert am.dim == 40 and am.num_pdfs == tm.num_pdfs
    assert final_like(espeak_lda_mllt / "log" / "train_lda_mllt.log") > -60  # 40 dims, far above tri1's -80s
    errors, compared = boundary_errors(espeak_lda_mllt, espeak_corpus)
    assert compared >= 60 and np.median(errors) < 0.020


@pytest.mark.kaldi
def test_kaldi_aligns_with_our_lda_mllt_system(kaldi, espeak_corpus, espeak_lda_mllt, tmp_path):
    """Kaldi's own steps/align_si.sh reads our tree, final.mdl, final.mat and splice_opts, and
    its alignments agree with ours frame by frame."""
    from hdnn.kaldi.alignments import read_ali_dir
    from hdnn.gmm.train import align_si
    from hdnn.kaldi.gmm_model import read_transition_model
    from tests.gmm.test_train import _kaldi_recipe_dir

    env = _kaldi_recipe_dir(kaldi, tmp_path)
    data = tmp_path / "train"
    data.mkdir()
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", "feats.scp", "cmvn.scp"):
        (data / name).write_bytes((espeak_corpus.data / name).read_bytes())
    subprocess.run(["steps/align_si.sh", "--nj", "2", "--cmd", "utils/run.pl", "train", str(espeak_corpus.lang),
                    str(espeak_lda_mllt), "kaldi_ali"], cwd=tmp_path, env=env, check=True, capture_output=True)
    align_si(espeak_corpus.data, espeak_corpus.lang, espeak_lda_mllt, tmp_path / "our_ali", nj=2)
    theirs, ours = read_ali_dir(tmp_path / "kaldi_ali"), read_ali_dir(tmp_path / "our_ali")
    assert theirs.keys() == ours.keys() and len(ours) == 120
    tm = read_transition_model(espeak_lda_mllt / "final.mdl")
    same = sum(int((tm.tid2pdf[theirs[u]] == tm.tid2pdf[ours[u]]).sum()) for u in ours)
    assert same / sum(len(a) for a in ours.values()) > 0.99

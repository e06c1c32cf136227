"""Posterior tables (binary and text) against real copy-post/ali-to-post, top-k and dense forms."""
import numpy as np
import pytest

from hdnn.errors import HdnnError
from hdnn.kaldi.io import write_int_vectors
from hdnn.kaldi.posteriors import (dense_from_posterior, padded_posteriors, posterior_from_alignment,
                                   read_padded_posteriors, read_posteriors, topk_posteriors,
                                   write_posteriors)

POSTS = {
    "utt1": [[(3, 0.75), (10, 0.25)], [(0, 1.0)], [], [(7, 0.5), (7, 0.5)]],
    "utt2": [],
    "utt3": [[(2999, 0.125)]],
}


def _assert_same(got, want):
    got = dict(got)
    assert list(got) == list(want)
    for utt in want:
        assert [[p for p, _ in f] for f in got[utt]] == [[p for p, _ in f] for f in want[utt]]
        for fg, fw in zip(got[utt], want[utt]):
            np.testing.assert_allclose([w for _, w in fg], [w for _, w in fw], rtol=1e-6)


@pytest.mark.parametrize("text", [False, True])
def test_round_trip(tmp_path, text):
    opts = "ark,scp,t" if text else "ark,scp"
    write_posteriors(f"{opts}:{tmp_path}/p.ark,{tmp_path}/p.scp", POSTS.items())
    _assert_same(read_posteriors(f"ark:{tmp_path}/p.ark"), POSTS)
    _assert_same(read_posteriors(f"scp:{tmp_path}/p.scp"), POSTS)
    if text:
        assert (tmp_path / "p.ark").read_text().splitlines()[0] == \
            "utt1 [ 3 0.75 10 0.25 ] [ 0 1 ] [ ] [ 7 0.5 7 0.5 ] "


@pytest.mark.parametrize("text", [False, True])
def test_padded_posteriors(tmp_path, text):
    ids, w = padded_posteriors([[(3, 0.5), (1, 0.5)], [(2, 1.0)], []])
    np.testing.assert_array_equal(ids, [[3, 1], [2, 0], [0, 0]])
    np.testing.assert_array_equal(w, np.array([[0.5, 0.5], [1.0, 0.0], [0.0, 0.0]], np.float32))
    opts = "ark,scp,t" if text else "ark,scp"
    write_posteriors(f"{opts}:{tmp_path}/p.ark,{tmp_path}/p.scp", POSTS.items())
    for rspec in (f"ark:{tmp_path}/p.ark", f"scp:{tmp_path}/p.scp"):
        padded = dict(read_padded_posteriors(rspec))
        assert list(padded) == list(POSTS)
        for utt, post in read_posteriors(rspec):  # the same arrays as the pairs read one by one
            (ids, w), (want_ids, want_w) = padded[utt], padded_posteriors(post)
            assert ids.dtype == np.int64 and w.dtype == np.float32 and ids.shape == want_ids.shape
            np.testing.assert_array_equal(ids, want_ids)
            np.testing.assert_array_equal(w, want_w)
    ids, w = dict(read_padded_posteriors(f"ark:{tmp_path}/p.ark"))["utt1"]
    np.testing.assert_array_equal(ids, [[3, 10], [0, 0], [0, 0], [7, 7]])
    np.testing.assert_allclose(w, [[0.75, 0.25], [1, 0], [0, 0], [0.5, 0.5]])
    assert dict(read_padded_posteriors(f"ark:{tmp_path}/p.ark"))["utt2"][0].shape == (0, 1)


def test_bad_posteriors(tmp_path):
    write_int_vectors(f"ark:{tmp_path}/ali.ark", [("u1", [1, 2, 3])])
    with pytest.raises(HdnnError, match="ali.ark"):
        list(read_posteriors(f"ark:{tmp_path}/ali.ark"))
    (tmp_path / "t.ark").write_text("u1 [ 1 0.5 ] [ 2 ]\n")
    with pytest.raises(HdnnError, match="bad text posterior of u1 at frame 1"):
        list(read_posteriors(f"ark:{tmp_path}/t.ark"))
    write_posteriors(f"ark:{tmp_path}/p.ark", POSTS.items())
    (tmp_path / "cut.ark").write_bytes((tmp_path / "p.ark").read_bytes()[:30])
    for read in (read_posteriors, read_padded_posteriors):
        with pytest.raises(HdnnError, match="cut.ark.*truncated"):
            list(read(f"ark:{tmp_path}/cut.ark"))


def test_topk_and_dense():
    probs = np.array([[0.1, 0.6, 0.3, 0.0], [0.25, 0.25, 0.25, 0.25], [0.97, 0.01, 0.01, 0.01]])
    post = topk_posteriors(probs, k=2, min_weight=0.05)
    assert [[p for p, _ in f] for f in post] == [[1, 2], [0, 1], [0]]
    np.testing.assert_allclose([w for _, w in post[0]], [2 / 3, 1 / 3], rtol=1e-6)
    assert post[2] == [(0, 1.0)]
    dense = dense_from_posterior(post, 4)
    np.testing.assert_allclose(dense.sum(1), 1, rtol=1e-6)
    assert dense.argmax(1).tolist() == probs.argmax(1).tolist()
    np.testing.assert_array_equal(dense_from_posterior(topk_posteriors(probs, k=4), 4), probs.astype(np.float32))
    assert dense_from_posterior(POSTS["utt1"], 11)[3, 7] == 1.0
    with pytest.raises(HdnnError, match="pdf-id 10 out of range"):
        dense_from_posterior(POSTS["utt1"], 8)


@pytest.mark.kaldi
def test_kaldi_reads_and_writes_posteriors(kaldi_run, tmp_path):
    write_posteriors(f"ark:{tmp_path}/p.ark", POSTS.items())
    text = kaldi_run(f"copy-post ark:{tmp_path}/p.ark ark,t:-").decode()
    (tmp_path / "k.txt").write_text(text)
    _assert_same(read_posteriors(f"ark:{tmp_path}/k.txt"), POSTS)
    kaldi_run(f"copy-post ark,t:{tmp_path}/k.txt ark:{tmp_path}/k.ark")
    assert (tmp_path / "k.ark").read_bytes() == (tmp_path / "p.ark").read_bytes()
    ali = {"a": np.array([5, 5, 2, 9]), "b": np.array([1])}
    write_int_vectors(f"ark:{tmp_path}/ali.ark", ali.items())
    kaldi_run(f"ali-to-post ark:{tmp_path}/ali.ark ark:{tmp_path}/post.ark")
    _assert_same(read_posteriors(f"ark:{tmp_path}/post.ark"),
                 {u: posterior_from_alignment(a) for u, a in ali.items()})

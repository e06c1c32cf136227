"""Sequence criteria (hdnn.nnet.sequence) against path enumeration on small random lattices.

The comparison with real Kaldi (lattice-to-smbr-post, lattice-to-post on latgen-faster-mapped
lattices of our student) is in tests/recipe/test_recipe_kaldi.py.
"""
import io

import numpy as np
import pytest
import torch

from hdnn.errors import HdnnError
from hdnn.kaldi.lattices import Lattice, read_lattice, read_lattices, write_lattices
from hdnn.nnet.sequence import (FrameAccuracy, LatticeBatch, forward_backward, lattice_criterion, mmi_loss,
                                smbr_loss)

torch.set_num_threads(1)
NUM_TIDS, NUM_PDFS = 9, 5
TID2PDF = np.array([-1, 0, 0, 1, 1, 2, 3, 3, 4, 4])
TID2PHONE = np.array([0, 1, 1, 2, 2, 2, 3, 3, 3, 3])   # phone 1 is silence
SILENCE = (1,)


def random_lattice(rng, num_frames, dead_end=False):
    """A lattice of `num_frames` frames: 1-3 states per frame, transition-id arcs to the next
    frame, epsilon arcs inside a frame, several final states with final costs."""
    layers, n = [], 0
    for _ in range(num_frames + 1):
        k = int(rng.integers(1, 4))
        layers.append(list(range(n, n + k)))
        n += k
    src, dst, tid = [], [], []

    def arc(s, d, t):
        src.append(s), dst.append(d), tid.append(t)

    for i, d in enumerate(layers[0][1:], 1):
        arc(int(rng.choice(layers[0][:i])), d, 0)
    for t in range(num_frames):
        for d in layers[t + 1]:
            arc(int(rng.choice(layers[t])), d, int(rng.integers(1, NUM_TIDS + 1)))
        for s in layers[t]:
            arc(s, int(rng.choice(layers[t + 1])), int(rng.integers(1, NUM_TIDS + 1)))
    for layer in layers:
        for i, s in enumerate(layer[:-1]):
            if rng.random() < 0.5:
                arc(s, int(rng.choice(layer[i + 1:])), 0)
    if dead_end:  # a state with no way to a final state
        arc(layers[0][0], n, int(rng.integers(1, NUM_TIDS + 1)))
        n += 1
    finals = np.full(n, np.inf)
    last = layers[-1]
    chosen = rng.choice(last, size=int(rng.integers(1, len(last) + 1)), replace=False)
    finals[chosen] = rng.uniform(0, 2, len(chosen))
    m = len(src)
    return Lattice(n, 0, np.array(src), np.array(dst), np.array(tid, np.int32), np.zeros(m, np.int32),
                   rng.uniform(0, 3, m), rng.uniform(0, 50, m), finals, np.where(np.isfinite(finals), 0.0, np.inf))


def enumerate_paths(lat):
    """Every complete path: (list of arc indices, final state)."""
    out = {s: np.flatnonzero(lat.src == s) for s in range(lat.num_states)}
    paths = []

    def walk(s, arcs):
        if np.isfinite(lat.final_graph[s]):
            paths.append((arcs, s))
        for a in out[s]:
            walk(int(lat.dst[a]), arcs + [int(a)])

    walk(lat.start, [])
    return paths


def brute_force(lats, y, kappa, lm_scale, accuracy, refs):
    """logZ[U] and A[U] of each lattice by path enumeration, differentiable in y."""
    logz, acc, row = [], [], 0
    for lat, ref in zip(lats, refs):
        scores, accs = [], []
        for arcs, final in enumerate_paths(lat):
            score, correct, t = -lm_scale * torch.tensor(lat.final_graph[final], dtype=torch.float64), 0.0, 0
            for a in arcs:
                score = score - lm_scale * float(lat.graph[a])
                if lat.tid[a]:
                    score = score + kappa * y[row + t, TID2PDF[lat.tid[a]]]
                    correct += accuracy([lat.tid[a]], [ref[t]])[0]
                    t += 1
            scores.append(score)
            accs.append(correct)
        scores = torch.stack(scores)
        logz.append(torch.logsumexp(scores, 0))
        acc.append((torch.softmax(scores, 0) * torch.tensor(accs, dtype=torch.float64)).sum())
        row += len(ref)
    return torch.stack(logz), torch.stack(acc)


@pytest.mark.parametrize("criterion,one_silence_class", [("smbr", False), ("smbr", True), ("mpfe", False)])
def test_criterion_equals_path_enumeration(criterion, one_silence_class):
    rng = np.random.default_rng(7)
    accuracy = FrameAccuracy(TID2PDF, TID2PHONE, SILENCE, criterion, one_silence_class)
    for trial in range(12):
        frames = [int(rng.integers(1, 5)) for _ in range(int(rng.integers(1, 4)))]
        lats = [random_lattice(rng, t, dead_end=trial % 3 == 0) for t in frames]
        refs = [rng.integers(1, NUM_TIDS + 1, t) for t in frames]
        kappa, lm_scale = float(rng.choice([0.1, 0.5, 1.0])), float(rng.choice([0.5, 1.0]))
        y = torch.tensor(rng.normal(0, 3, (sum(frames), NUM_PDFS)), requires_grad=True)
        batch = LatticeBatch([(f"u{i}", lat) for i, lat in enumerate(lats)], frames, TID2PDF, lm_scale)
        c = batch.accuracy(accuracy, np.concatenate(refs))
        logz, acc = lattice_criterion(y, batch, kappa, c)
        ref_logz, ref_acc = brute_force(lats, y, kappa, lm_scale, accuracy, refs)
        np.testing.assert_allclose(logz.detach(), ref_logz.detach(), atol=1e-10)
        np.testing.assert_allclose(acc.detach(), ref_acc.detach(), atol=1e-10)
        weights = torch.tensor(rng.normal(size=(2, len(lats))))
        ours = torch.autograd.grad((weights[0] * logz + weights[1] * acc).sum(), y)[0]
        ref = torch.autograd.grad((weights[0] * ref_logz + weights[1] * ref_acc).sum(), y)[0]
        np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_smbr_gradient_is_minus_the_smbr_posteriors_and_sums_to_zero():
    """Kaldi's nnet_diff: minus the sMBR posteriors per (frame, pdf), without kappa; and MMI's
    kappa (gamma_den - gamma_num). Both sum to zero over each frame's pdfs."""
    rng = np.random.default_rng(3)
    frames = [4, 3]
    lats = [random_lattice(rng, t) for t in frames]
    ref = rng.integers(1, NUM_TIDS + 1, sum(frames))
    batch = LatticeBatch([("a", lats[0]), ("b", lats[1])], frames, TID2PDF)
    c = batch.accuracy(FrameAccuracy(TID2PDF, TID2PHONE, SILENCE), ref)
    y = torch.tensor(rng.normal(0, 3, (sum(frames), NUM_PDFS)), requires_grad=True)
    loss, acc = smbr_loss(y, batch, 0.1, c)
    grad = torch.autograd.grad(loss, y)[0]
    stats = forward_backward(batch, y, 0.1, c)
    post = torch.zeros(sum(frames), NUM_PDFS, dtype=torch.float64)
    emit = batch.emitting
    post.index_put_((batch.arc_rows()[emit], batch.arcs["pdf"][emit]), stats.post[emit], accumulate=True)
    np.testing.assert_allclose(grad, -post, atol=1e-12)
    np.testing.assert_allclose(grad.sum(1), 0, atol=1e-12)
    assert torch.all((acc >= 0) & (acc <= torch.tensor(frames)))
    mmi, _ = mmi_loss(y, batch, 0.1, TID2PDF[ref])
    grad = torch.autograd.grad(mmi, y)[0]
    gamma = torch.zeros_like(post).index_put_((batch.arc_rows()[emit], batch.arcs["pdf"][emit]),
                                              stats.gamma[emit], accumulate=True)
    num = torch.nn.functional.one_hot(torch.from_numpy(TID2PDF[ref]), NUM_PDFS)
    np.testing.assert_allclose(grad, 0.1 * (gamma - num), atol=1e-12)


def test_lattice_archive_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    lats = {f"utt{i}": random_lattice(rng, 5) for i in range(3)}
    assert write_lattices(f"ark:{tmp_path}/lat.ark", lats.items()) == 3
    back = dict(read_lattices(f"ark:gzip -c {tmp_path}/lat.ark | gunzip -c |"))
    assert list(back) == list(lats)
    for utt, lat in lats.items():
        got = back[utt]
        order, got_order = np.lexsort((lat.dst, lat.src)), np.lexsort((got.dst, got.src))
        for name in ("src", "dst", "tid", "word"):
            assert np.array_equal(getattr(lat, name)[order], getattr(got, name)[got_order])
        np.testing.assert_allclose(lat.graph[order], got.graph[got_order], rtol=1e-6)
        assert np.array_equal(np.isfinite(lat.final_graph), np.isfinite(got.final_graph))


def test_bad_lattices_are_one_clear_error(tmp_path):
    with pytest.raises(HdnnError, match="utt1.*not a binary OpenFst lattice"):
        read_lattice(io.BytesIO(b"0 1 3 4 1.5,2.0\n"), "utt1", "lat.txt")
    rng = np.random.default_rng(2)
    lat = random_lattice(rng, 4)
    write_lattices(f"ark:{tmp_path}/lat.ark", [("utt1", lat)])
    data = (tmp_path / "lat.ark").read_bytes()
    (tmp_path / "cut.ark").write_bytes(data[:-7])
    with pytest.raises(HdnnError, match="cut.ark"):
        list(read_lattices(f"ark:{tmp_path}/cut.ark"))
    with pytest.raises(HdnnError, match="lattice of utt1 has 4 frames, its outputs 5"):
        LatticeBatch([("utt1", lat)], [5], TID2PDF)
    with pytest.raises(HdnnError, match="transition-ids outside"):
        LatticeBatch([("utt1", lat)], [4], TID2PDF[:3])
    with pytest.raises(HdnnError, match="unknown sequence criterion 'mmie'"):
        FrameAccuracy(TID2PDF, TID2PHONE, SILENCE, "mmie")

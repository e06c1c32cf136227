"""The lattice-free denominator (hdnn.nnet.dengraph) against path enumeration on small graphs."""
import itertools

import numpy as np
import pytest
import torch

from hdnn.errors import HdnnError
from hdnn.nnet.dengraph import DenGraph, den_criterion, den_mmi_loss, den_smbr_loss, forward_backward
from hdnn.nnet.sequence import FrameAccuracy

torch.set_num_threads(1)
TID2PDF = np.array([-1, 0, 0, 1, 1, 2, 3, 3, 4, 4])
TID2PHONE = np.array([0, 1, 1, 2, 2, 2, 3, 3, 3, 3])   # phone 1 is silence
NUM_PDFS = 5


def random_graph(rng, num_states=5):
    """Transition-ids 1..num_states as states, a random subset of the arcs (self-loops kept),
    normalised with the final probabilities; every state may start and some may end."""
    tids = np.arange(1, num_states + 1)
    keep = rng.random((num_states, num_states)) < 0.6
    np.fill_diagonal(keep, True)
    src, dst = np.nonzero(keep)
    weight = rng.uniform(0.2, 1.0, len(src))
    ends = np.where(rng.random(num_states) < 0.5, rng.uniform(0.2, 1.0, num_states), 0.0)
    ends[rng.integers(num_states)] = 0.5
    total = np.bincount(src, weights=weight, minlength=num_states) + ends
    start = rng.uniform(0.1, 1.0, num_states)
    with np.errstate(divide="ignore"):
        return DenGraph(tids=tids, pdfs=TID2PDF[tids], src=src, dst=dst, logp=np.log(weight / total[src]),
                        initial=np.log(start / start.sum()), final=np.log(ends / total))


def brute_force(graph, y, kappa, acc):
    """logZ and A by enumerating every state sequence, differentiable in y."""
    arcs = {(int(s), int(d)): float(lp) for s, d, lp in zip(graph.src, graph.dst, graph.logp)}
    scores, accs = [], []
    for seq in itertools.product(range(graph.num_states), repeat=len(y)):
        steps = list(zip(seq[:-1], seq[1:]))
        if not np.isfinite(graph.initial[seq[0]] + graph.final[seq[-1]]) or any(s not in arcs for s in steps):
            continue
        graph_score = graph.initial[seq[0]] + graph.final[seq[-1]] + sum(arcs[s] for s in steps)
        scores.append(graph_score + kappa * sum(y[t, graph.pdfs[s]] for t, s in enumerate(seq)))
        accs.append(sum(acc[t, s] for t, s in enumerate(seq)))
    scores = torch.stack(scores)
    logz = torch.logsumexp(scores, 0)
    return logz, (torch.softmax(scores, 0) * torch.tensor(accs, dtype=torch.float64)).sum()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("one_silence_class", [False, True])
def test_criterion_and_gradients_equal_path_enumeration(seed, one_silence_class):
    rng = np.random.default_rng(seed)
    graph = random_graph(rng)
    frames, kappa = 5, 0.3
    y = torch.tensor(rng.normal(0, 3, (frames, NUM_PDFS)), dtype=torch.float64, requires_grad=True)
    ref = rng.integers(1, 10, frames)
    acc = graph.accuracy(FrameAccuracy(TID2PDF, TID2PHONE, (1,), "smbr", one_silence_class), ref)
    assert acc.shape == (frames, graph.num_states)
    want_z, want_a = brute_force(graph, y, kappa, acc)
    gz, ga = torch.autograd.grad(want_z + 2.0 * want_a, y)[0], None
    logz, a = den_criterion(y, graph, kappa, acc)
    assert logz.item() == pytest.approx(want_z.item(), abs=1e-10)
    assert a.item() == pytest.approx(want_a.item(), abs=1e-10)
    got = torch.autograd.grad(logz + 2.0 * a, y)[0]
    assert torch.allclose(got, gz, atol=1e-10)
    ga = torch.autograd.grad(brute_force(graph, y, kappa, acc)[1], y)[0]
    loss, _ = den_smbr_loss(y, graph, kappa, acc)
    g = torch.autograd.grad(loss, y)[0]
    assert torch.allclose(g, -ga / kappa, atol=1e-10)  # minus the sMBR posteriors, Kaldi's scaling
    assert torch.allclose(g.sum(dim=1), torch.zeros(frames, dtype=torch.float64), atol=1e-10)


def test_mmi_gradient_is_kappa_times_den_minus_num_posteriors():
    rng = np.random.default_rng(7)
    graph = random_graph(rng)
    y = torch.tensor(rng.normal(0, 2, (4, NUM_PDFS)), dtype=torch.float64, requires_grad=True)
    ref_pdfs = rng.integers(0, NUM_PDFS, 4)
    loss, logz = den_mmi_loss(y, graph, 0.1, ref_pdfs)
    g = torch.autograd.grad(loss, y)[0]
    gamma = forward_backward(graph, y, 0.1).gamma
    assert torch.allclose(gamma.sum(dim=1), torch.ones(4, dtype=torch.float64))
    assert torch.allclose(g, 0.1 * (gamma - torch.nn.functional.one_hot(torch.as_tensor(ref_pdfs), NUM_PDFS)))
    assert logz.item() == pytest.approx(brute_force(graph, y, 0.1, np.zeros((4, 5)))[0].item(), abs=1e-10)


def test_bigram_from_alignments_counts_the_pairs_and_ends():
    alis = [np.array([1, 1, 2, 5, 5]), np.array([1, 2, 2, 5]), np.array([3, 4])]
    g = DenGraph.from_alignments(enumerate(alis), TID2PDF)
    assert g.tids.tolist() == [1, 2, 3, 4, 5] and g.pdfs.tolist() == [0, 0, 1, 1, 2]
    prob = {(int(g.tids[s]), int(g.tids[d])): round(float(np.exp(lp)), 6) for s, d, lp in zip(g.src, g.dst, g.logp)}
    # tid 1 occurs 3 times: followed by 1 once and by 2 twice; tid 5 ends both its utterances
    assert prob == {(1, 1): round(1 / 3, 6), (1, 2): round(2 / 3, 6), (2, 2): round(1 / 3, 6), (2, 5): round(2 / 3, 6),
                    (5, 5): round(1 / 3, 6), (3, 4): 1.0}
    assert np.allclose(np.exp(g.initial), [2 / 3, 0, 1 / 3, 0, 0])
    assert np.allclose(np.exp(g.final), [0, 0, 0, 1, 2 / 3])
    out = np.bincount(g.src, weights=np.exp(g.logp), minlength=g.num_states) + np.exp(g.final)
    assert np.allclose(out, 1.0)  # each state's arcs and end sum to one
    with pytest.raises(HdnnError, match="ali.1.gz: alignment of u2 has transition-ids outside 1..9"):
        DenGraph.from_alignments([("u1", np.array([1])), ("u2", np.array([1, 10]))], TID2PDF, "ali.1.gz")


def test_round_trip_and_clear_errors(tmp_path):
    g = DenGraph.from_alignments(enumerate([np.array([1, 1, 2, 5, 5]), np.array([3, 4])]), TID2PDF)
    g.save(tmp_path / "den.npz")
    h = DenGraph.load(tmp_path / "den.npz")
    assert all(np.array_equal(getattr(g, k), getattr(h, k)) for k in ("tids", "pdfs", "src", "dst", "logp",
                                                                         "initial", "final"))
    (tmp_path / "bad.npz").write_bytes(b"not a graph")
    with pytest.raises(HdnnError, match="bad.npz: not a denominator graph"):
        DenGraph.load(tmp_path / "bad.npz")
    with pytest.raises(HdnnError, match="missing.npz: no such file"):
        DenGraph.load(tmp_path / "missing.npz")
    y = torch.zeros(1, NUM_PDFS)
    with pytest.raises(HdnnError, match="utt1: no path through the denominator graph ends"):
        den_criterion(y, g, 0.1, utt="utt1")  # no state both starts and ends an utterance
    with pytest.raises(HdnnError, match="the model 2 pdfs"):
        den_criterion(torch.zeros(3, 2), g, 0.1)

"""Sequence criteria over lattices: sMBR, MPFE and MMI, as Kaldi nnet1 trains them.

The lattice's acoustic costs are replaced by the network's scores (nnet-train-mpe-sequential
with --old-acoustic-scale 0): an arc carrying transition-id k at frame t has the log-weight
w = -lm_scale * graph_cost + kappa * y[t, pdf(k)], where y are log-likelihoods (log-posteriors
minus log-priors). Then, as LatticeForwardBackwardMpeVariants (kaldi/src/lat/lattice-functions.cc):

- alpha, beta: log-space forward and backward sums, Z = alpha(final), arc posterior
  gamma_a = exp(alpha(src) + w_a + beta(dst) - Z);
- alpha~, beta~: the expected frame accuracy of the paths into / out of each state
  (alpha~(dst) = sum over arcs of exp(alpha(src) + w - alpha(dst)) (alpha~(src) + c_a)),
  A = alpha~(final), the expected frame accuracy of the utterance;
- sMBR posterior of an arc: gamma_a (alpha~(src) + c_a + beta~(dst) - A).

dA/dy[t, p] = kappa * (sum of the sMBR posteriors of the arcs of pdf p at frame t); Kaldi drops
the factor kappa (its nnet_diff is minus the sMBR posteriors), so the loss -A / kappa gives
Kaldi's gradient. dlogZ/dy = kappa * gamma, so MMI's loss logZ - kappa * y[num] gives
kappa * (gamma_den - gamma_num). Both gradients sum to zero over the pdfs of a frame, so they
reach the logits unchanged through a log-softmax (Kaldi removes the softmax instead).

Several lattices are packed into one graph: their states are renumbered by longest-path level
(topological_levels), so the recursions run level by level over contiguous slices of states
and arcs, once for the whole batch, in float64 as Kaldi does.
"""
from dataclasses import dataclass

import numpy as np
import torch

from hdnn.errors import HdnnError
from hdnn.kaldi.lattices import Lattice, state_times, topological_levels

CRITERIA = ("smbr", "mpfe")


@dataclass
class FrameAccuracy:
    """The frame accuracy c_a of an arc against a reference alignment (Kaldi's sMBR / MPFE).

    smbr: the arc's pdf equals the reference's; mpfe: its phone equals the reference's. With
    one_silence_class, silence against silence also scores 1; without (Kaldi's old default), a
    silence arc scores 0.
    """

    tid2pdf: np.ndarray
    tid2phone: np.ndarray
    silence_phones: tuple
    criterion: str = "smbr"
    one_silence_class: bool = False

    def __post_init__(self):
        if self.criterion not in CRITERIA:
            raise HdnnError(f"unknown sequence criterion {self.criterion!r} (one of {', '.join(CRITERIA)})")
        self.tid2pdf, self.tid2phone = np.asarray(self.tid2pdf), np.asarray(self.tid2phone)
        self.is_sil = np.zeros(int(self.tid2phone.max()) + 1, bool)
        sil = np.asarray(self.silence_phones, dtype=np.int64)
        self.is_sil[sil[(sil >= 0) & (sil < len(self.is_sil))]] = True

    def __call__(self, tid, ref_tid):
        """c for arcs with transition-ids `tid` (0: epsilon, scores 0) at frames whose
        reference transition-ids are `ref_tid`."""
        tid, ref_tid = np.asarray(tid), np.asarray(ref_tid)
        key = self.tid2pdf if self.criterion == "smbr" else self.tid2phone
        sil = self.is_sil[self.tid2phone[tid]]
        same = key[tid] == key[ref_tid]
        if self.one_silence_class:
            acc = same | (sil & self.is_sil[self.tid2phone[ref_tid]])
        else:
            acc = same & ~sil
        return np.where(tid != 0, acc, False).astype(np.float64)


class LatticeBatch:
    """Lattices of several utterances as one graph over the rows of their stacked outputs.

    lattices: [(utt, Lattice)]; num_frames: frames of each (the rows of its output, in order).
    Acoustic costs are ignored; graph costs are scaled by lm_scale. A super-final state per
    lattice takes the final weights as arcs, so every utterance ends in one state.
    """

    def __init__(self, lattices, num_frames, tid2pdf, lm_scale=1.0):
        if len(lattices) != len(num_frames):
            raise HdnnError("one frame count per lattice is needed")
        self.utts = [utt for utt, _ in lattices]
        self.num_frames = [int(n) for n in num_frames]
        self.row_offsets = np.concatenate([[0], np.cumsum(self.num_frames)]).astype(np.int64)
        tid2pdf = np.asarray(tid2pdf)
        parts, state_offset = [], 0
        for u, ((utt, lat), frames) in enumerate(zip(lattices, self.num_frames)):
            part = _lattice_arrays(utt, lat, frames, tid2pdf, lm_scale)
            part["src"] += state_offset
            part["dst"] += state_offset
            part["row"] += self.row_offsets[u]
            part["utt"] = np.full(len(part["src"]), u)
            part["start"] += state_offset
            part["final"] += state_offset
            state_offset += part.pop("num_states")
            parts.append(part)
        cat = {k: np.concatenate([np.atleast_1d(p[k]) for p in parts]) for k in parts[0]}
        self._renumber(cat, state_offset)

    def _renumber(self, a, num_states):
        """States in level order (then arcs by dst and by src) for slice-wise recursions."""
        order = np.lexsort((np.arange(num_states), a["level"]))
        new_id = np.empty(num_states, np.int64)
        new_id[order] = np.arange(num_states)
        level = a["level"][order]
        num_levels = int(level.max()) + 1
        self.level_bounds = np.searchsorted(level, np.arange(num_levels + 1)).tolist()
        src, dst = new_id[a["src"]], new_id[a["dst"]]
        by_dst = np.lexsort((src, dst))
        self.num_states = num_states
        self.start = torch.from_numpy(new_id[a["start"]])
        self.final = torch.from_numpy(new_id[a["final"]])
        arcs = {"src": src, "dst": dst, "row": a["row"], "pdf": a["pdf"], "tid": a["tid"],
                "utt": a["utt"], "weight": a["weight"]}
        self.arcs = {k: torch.from_numpy(np.ascontiguousarray(v[by_dst])) for k, v in arcs.items()}
        self.emitting = self.arcs["tid"] != 0
        self.by_src = np.argsort(src[by_dst], kind="stable")
        self.forward_levels = _segments(self.arcs["dst"].numpy(), self.level_bounds)
        self.backward_levels = _segments(self.arcs["src"].numpy()[self.by_src], self.level_bounds)

    @property
    def num_utts(self):
        return len(self.utts)

    @property
    def num_rows(self):
        return int(self.row_offsets[-1])

    def arc_rows(self):
        """Output row of every emitting arc (others: 0), in the batch's arc order."""
        return torch.where(self.emitting, self.arcs["row"], torch.zeros_like(self.arcs["row"]))

    def accuracy(self, frame_accuracy, ref_tids):
        """Per-arc frame accuracy against reference transition-ids ([rows] stacked in the
        batch's utterance order)."""
        ref_tids = np.asarray(ref_tids)
        if len(ref_tids) != self.num_rows:
            raise HdnnError(f"reference alignments have {len(ref_tids)} frames, the lattices {self.num_rows}")
        rows = self.arc_rows().numpy()
        return torch.from_numpy(frame_accuracy(self.arcs["tid"].numpy(), ref_tids[rows]))


def _segments(keys, level_bounds):
    """Per level with arcs: (first arc, end arc, segment starts, segment of each arc, segment
    states) over `keys` (the dst or src state of each arc, sorted), relative to the level."""
    bounds = np.searchsorted(keys, level_bounds)
    levels = []
    for L in range(len(level_bounds) - 1):
        a0, a1 = int(bounds[L]), int(bounds[L + 1])
        if a1 == a0:
            continue
        k = keys[a0:a1]
        new = np.r_[True, k[1:] != k[:-1]]
        levels.append((a0, a1, np.flatnonzero(new), np.cumsum(new) - 1, k[new]))
    return levels


def _lattice_arrays(utt, lat, num_frames, tid2pdf, lm_scale):
    """Arc arrays of one lattice with a super-final state, and its states' levels."""
    if not isinstance(lat, Lattice):
        raise HdnnError(f"{utt}: not a Lattice")
    finals = lat.finals
    if not len(finals):
        raise HdnnError(f"lattice of {utt} has no final state")
    try:
        times, frames = state_times(lat)
    except HdnnError as e:
        raise HdnnError(f"lattice of {utt}: {e}") from None
    if frames != num_frames:
        raise HdnnError(f"lattice of {utt} has {frames} frames, its outputs {num_frames}")
    if lat.num_arcs and (lat.tid.min() < 0 or lat.tid.max() >= len(tid2pdf)):
        raise HdnnError(f"lattice of {utt} has transition-ids outside [1, {len(tid2pdf) - 1}] of the model")
    sf = lat.num_states
    src = np.concatenate([lat.src, finals])
    dst = np.concatenate([lat.dst, np.full(len(finals), sf)])
    tid = np.concatenate([lat.tid, np.zeros(len(finals), np.int32)])
    graph = np.concatenate([lat.graph, lat.final_graph[finals]])
    aug = Lattice(sf + 1, lat.start, src, dst, tid, tid, graph, graph, np.r_[np.full(sf, np.inf), 0.0],
                  np.r_[np.full(sf, np.inf), 0.0])
    try:
        level = topological_levels(aug)
    except HdnnError as e:
        raise HdnnError(f"lattice of {utt}: {e}") from None
    emitting = tid != 0
    row = np.where(emitting, np.r_[times, 0][src], 0)
    pdf = np.where(emitting, tid2pdf[tid], 0)
    if np.any(pdf < 0):
        raise HdnnError(f"lattice of {utt} has a transition-id without a pdf")
    return {"src": src, "dst": dst, "tid": tid, "row": row, "pdf": pdf, "weight": -lm_scale * graph,
            "level": level, "start": lat.start, "final": sf, "num_states": sf + 1}


@dataclass
class LatticeStats:
    """What one forward-backward computes, per utterance and per arc (batch arc order)."""

    logz: torch.Tensor       # [U] log total score
    accuracy: torch.Tensor   # [U] expected frame accuracy A (0 if no accuracy given)
    gamma: torch.Tensor      # [arcs] arc posteriors
    post: torch.Tensor       # [arcs] sMBR/MPFE posteriors (0 if no accuracy given)


def _level_step(v, seg, which):
    """Per segment: log-sum-exp of v, and each element's share exp(v - lse) (0 if undefined)."""
    m = np.maximum.reduceat(v, seg)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(v - m[which])
    tot = np.add.reduceat(e, seg)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = e / tot[which]
        return np.log(tot) + m, np.where(np.isfinite(share), share, 0.0)


def forward_backward(batch, loglikes, kappa, accuracy=None):
    """Lattice forward-backward with the network's scores (float64). loglikes: [rows, pdfs];
    accuracy: per-arc frame accuracy (batch.accuracy) for sMBR/MPFE, or None for MMI only."""
    a = {k: v.numpy() for k, v in batch.arcs.items()}
    emitting = batch.emitting.numpy()
    y = loglikes.detach().to(torch.float64).numpy()
    w = a["weight"] + np.where(emitting, kappa * y[batch.arc_rows().numpy(), a["pdf"]], 0.0)
    src, dst, S = a["src"], a["dst"], batch.num_states
    with_acc = accuracy is not None
    c = accuracy.numpy() if with_acc else np.zeros_like(w)
    alpha, alpha_acc = np.full(S, -np.inf), np.zeros(S)
    alpha[batch.start.numpy()] = 0.0
    for a0, a1, seg, which, states in batch.forward_levels:
        sa = src[a0:a1]
        alpha[states], share = _level_step(alpha[sa] + w[a0:a1], seg, which)
        if with_acc:
            alpha_acc[states] = np.add.reduceat(share * (alpha_acc[sa] + c[a0:a1]), seg)
    beta, beta_acc = np.full(S, -np.inf), np.zeros(S)
    beta[batch.final.numpy()] = 0.0
    for a0, a1, seg, which, states in reversed(batch.backward_levels):
        idx = batch.by_src[a0:a1]
        da = dst[idx]
        beta[states], share = _level_step(beta[da] + w[idx], seg, which)
        if with_acc:
            beta_acc[states] = np.add.reduceat(share * (beta_acc[da] + c[idx]), seg)
    final, utt = batch.final.numpy(), a["utt"]
    logz = alpha[final]
    with np.errstate(invalid="ignore"):
        gamma = np.exp(alpha[src] + w + beta[dst] - logz[utt])
    gamma = np.where(np.isfinite(gamma), gamma, 0.0)
    if with_acc:
        acc = alpha_acc[final]
        post = gamma * (alpha_acc[src] + c + beta_acc[dst] - acc[utt])
    else:
        acc, post = np.zeros_like(logz), np.zeros_like(gamma)
    return LatticeStats(*(torch.from_numpy(v) for v in (logz, acc, gamma, post)))


class _LatticeCriterion(torch.autograd.Function):
    """(logZ[U], A[U]) of a batch, with the analytic gradient to the log-likelihoods."""

    @staticmethod
    def forward(ctx, loglikes, batch, kappa, accuracy):
        stats = forward_backward(batch, loglikes, kappa, accuracy)
        if not torch.all(torch.isfinite(stats.logz)):
            bad = [batch.utts[i] for i in torch.nonzero(~torch.isfinite(stats.logz)).flatten().tolist()]
            raise HdnnError(f"lattice of {bad[0]} has no complete path")
        ctx.batch, ctx.kappa, ctx.shape, ctx.dtype = batch, kappa, loglikes.shape, loglikes.dtype
        ctx.save_for_backward(stats.gamma, stats.post)
        return stats.logz, stats.accuracy

    @staticmethod
    def backward(ctx, grad_logz, grad_acc):
        gamma, post = ctx.saved_tensors
        batch = ctx.batch
        utt = batch.arcs["utt"]
        coef = ctx.kappa * (grad_logz.to(torch.float64)[utt] * gamma + grad_acc.to(torch.float64)[utt] * post)
        coef = torch.where(batch.emitting, coef, 0.0)
        rows, pdfs = ctx.shape
        flat = batch.arc_rows() * pdfs + batch.arcs["pdf"]
        grad = torch.zeros(rows * pdfs, dtype=torch.float64).index_add_(0, flat, coef)
        return grad.view(rows, pdfs).to(ctx.dtype), None, None, None


def lattice_criterion(loglikes, batch, kappa, accuracy=None):
    """(logZ[U], A[U]) of a LatticeBatch under the network's log-likelihoods [rows, pdfs];
    differentiable with respect to them."""
    if loglikes.dim() != 2 or loglikes.shape[0] != batch.num_rows:
        raise HdnnError(f"outputs of shape {tuple(loglikes.shape)} for lattices of {batch.num_rows} frames")
    return _LatticeCriterion.apply(loglikes, batch, float(kappa), accuracy)


def smbr_loss(loglikes, batch, kappa, accuracy):
    """-sum(A) / kappa (Kaldi's scaling: its gradient is minus the sMBR posteriors), and A[U]."""
    _, acc = lattice_criterion(loglikes, batch, kappa, accuracy)
    return -acc.sum() / kappa, acc.detach()


def mmi_loss(loglikes, batch, kappa, ref_pdfs):
    """sum(logZ_den - kappa * y[num]) over the batch (gradient kappa * (gamma_den - gamma_num));
    ref_pdfs: the numerator's pdf per row (stacked alignments)."""
    logz, _ = lattice_criterion(loglikes, batch, kappa)
    ref = torch.as_tensor(np.asarray(ref_pdfs), dtype=torch.int64)
    num = loglikes.gather(1, ref[:, None]).squeeze(1).to(torch.float64)
    return logz.sum() - kappa * num.sum(), logz.detach()

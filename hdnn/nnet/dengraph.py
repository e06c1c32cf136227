"""A lattice-free denominator for sequence training where no lattices can be made (the
Kaldi-free backend): a bigram over transition-ids, estimated from the training alignments.

Its states are the transition-ids seen in the alignments; an arc a -> b exists where b followed a
in some alignment, with probability count(a, b) / count(a); initial and final probabilities come
from the first and last frame of each utterance. A transition-id carries its pdf, its phone and
its HMM state and transition, so the graph keeps the HMM topology and the tree's context
decisions as the alignments used them, and allows every sequence of pdfs whose neighbouring
pairs occurred in training: the denominator of lattice-free MMI and sMBR (Povey et al. 2016,
Kanda et al. 2018) with a transition-id bigram in place of their phone n-gram.

The criterion is the one of hdnn.nnet.sequence over this graph: state s at frame t scores
kappa * y[t, pdf(s)] (y: log-likelihoods), arcs their log-probabilities (lm scale 1);
forward-backward in probability space with a scale per frame, in float64, one frame at a time
and vectorised over the arcs. With a frame accuracy a_t(s) against the reference alignment,
alpha~ / beta~ carry the expected accuracy of the paths into / out of each state (Kaldi's
LatticeForwardBackwardMpeVariants on the graph unrolled in time), A is the expected frame
accuracy of the utterance and gamma_t(s) (alpha~_t(s) + beta~_t(s) - A) the sMBR posteriors, so
that dA/dy[t, p] = kappa * (their sum over the states of pdf p) and dlogZ/dy = kappa * gamma.
"""
from dataclasses import dataclass

import numpy as np
import torch

from hdnn.errors import HdnnError, atomic_open

FORMAT = "hdnn-dengraph-1"


@dataclass
class DenGraph:
    """States (their transition-ids and pdfs), arcs (src, dst, log-probability) and the log
    initial and final probability of each state (-inf: none)."""

    tids: np.ndarray
    pdfs: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    logp: np.ndarray
    initial: np.ndarray
    final: np.ndarray

    @property
    def num_states(self):
        return len(self.tids)

    @property
    def num_arcs(self):
        return len(self.src)

    @classmethod
    def from_alignments(cls, alignments, tid2pdf, source="alignments"):
        """Estimate the bigram from (utt, transition-ids) items; tid2pdf maps a transition-id to
        its pdf; source names the alignments in errors."""
        tid2pdf = np.asarray(tid2pdf)
        firsts, lasts, pairs, counts = [], [], [], []
        for utt, ali in alignments:
            ali = np.asarray(ali, dtype=np.int64)
            if len(ali) == 0:
                continue
            if ali.min() < 1 or ali.max() >= len(tid2pdf):
                raise HdnnError(f"{source}: alignment of {utt} has transition-ids outside 1..{len(tid2pdf) - 1}")
            firsts.append(ali[0])
            lasts.append(ali[-1])
            pairs.append(ali[:-1] * len(tid2pdf) + ali[1:])
            counts.append(ali)
        if not firsts:
            raise HdnnError(f"{source}: no alignment to estimate a denominator graph from")
        tids = np.unique(np.concatenate(counts))
        state = np.full(len(tid2pdf), -1, dtype=np.int64)
        state[tids] = np.arange(len(tids))
        keys, pair_count = np.unique(np.concatenate(pairs), return_counts=True)
        src, dst = state[keys // len(tid2pdf)], state[keys % len(tid2pdf)]
        out = np.bincount(src, weights=pair_count, minlength=len(tids))
        ends = np.bincount(state[np.array(lasts)], minlength=len(tids)).astype(np.float64)
        starts = np.bincount(state[np.array(firsts)], minlength=len(tids)).astype(np.float64)
        total = out + ends  # every occurrence of a state is followed by an arc or the end
        with np.errstate(divide="ignore"):
            return cls(tids=tids, pdfs=tid2pdf[tids].astype(np.int64), src=src, dst=dst,
                       logp=np.log(pair_count / total[src]), initial=np.log(starts / starts.sum()),
                       final=np.log(ends / total))

    def save(self, path):
        with atomic_open(path, "wb") as f:
            np.savez(f, format=np.array(FORMAT), **{k: getattr(self, k) for k in FIELDS})

    @classmethod
    def load(cls, path):
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["format"]) != FORMAT:
                    raise HdnnError(f"{path}: not a denominator graph ({FORMAT})")
                return cls(**{k: z[k] for k in FIELDS})
        except FileNotFoundError:
            raise HdnnError(f"{path}: no such file (make it with steps_py/make_den_graph.py)") from None
        except (OSError, KeyError, ValueError) as e:
            raise HdnnError(f"{path}: not a denominator graph ({e})") from None

    def accuracy(self, frame_accuracy, ref_tids):
        """a_t(s) [frames, states]: hdnn.nnet.sequence.FrameAccuracy of each state against the
        reference transition-id of each frame."""
        return frame_accuracy(self.tids[None, :], np.asarray(ref_tids)[:, None])


FIELDS = ("tids", "pdfs", "src", "dst", "logp", "initial", "final")


@dataclass
class DenStats:
    logz: float
    accuracy: float        # A (0 without a frame accuracy)
    gamma: torch.Tensor    # [frames, pdfs]: state posteriors summed per pdf
    post: torch.Tensor     # [frames, pdfs]: sMBR posteriors summed per pdf (zeros without accuracy)


def forward_backward(graph, loglikes, kappa, accuracy=None, utt="utterance"):
    """DenStats of one utterance's log-likelihoods [frames, pdfs] over the graph; accuracy:
    a_t(s) [frames, states] or None."""
    y = torch.as_tensor(loglikes).detach().to(torch.float64)
    num_frames, num_pdfs = y.shape
    if num_frames == 0:
        raise HdnnError(f"{utt}: no frames")
    if int(graph.pdfs.max()) >= num_pdfs:
        raise HdnnError(f"the denominator graph has pdf {int(graph.pdfs.max())}, the model {num_pdfs} pdfs")
    pdfs = torch.from_numpy(graph.pdfs)
    src, dst = torch.from_numpy(graph.src), torch.from_numpy(graph.dst)
    p = torch.from_numpy(np.exp(graph.logp))
    init, fin = torch.from_numpy(np.exp(graph.initial)), torch.from_numpy(np.exp(graph.final))
    score = kappa * y[:, pdfs]
    top = score.max(dim=1, keepdim=True).values
    e = torch.exp(score - top)
    acc = None if accuracy is None else torch.as_tensor(accuracy, dtype=torch.float64)
    S = graph.num_states

    def push(v):  # sum over the arcs into each state
        return torch.zeros(S, dtype=torch.float64).index_add_(0, dst, v[src] * p)

    def pull(v):  # sum over the arcs out of each state
        return torch.zeros(S, dtype=torch.float64).index_add_(0, src, v[dst] * p)

    alpha = torch.empty(num_frames, S, dtype=torch.float64)
    alpha_acc = torch.zeros(num_frames, S, dtype=torch.float64)
    a, logz = init * e[0], 0.0
    for t in range(num_frames):
        if t > 0:
            into = push(alpha[t - 1])
            if acc is not None:
                alpha_acc[t] = torch.where(into > 0, push(alpha[t - 1] * alpha_acc[t - 1]) / into, 0.0)
            a = into * e[t]
        if acc is not None:
            alpha_acc[t] += acc[t]
        c = a.sum()
        if not c > 0:
            raise HdnnError(f"{utt}: no path through the denominator graph reaches frame {t}")
        alpha[t] = a / c
        logz += float(torch.log(c)) + float(top[t])
    end = alpha[-1] * fin
    if not end.sum() > 0:
        raise HdnnError(f"{utt}: no path through the denominator graph ends at its last frame")
    logz += float(torch.log(end.sum()))
    expected = float((end * alpha_acc[-1]).sum() / end.sum()) if acc is not None else 0.0

    beta = torch.empty(num_frames, S, dtype=torch.float64)
    beta_acc = torch.zeros(num_frames, S, dtype=torch.float64)
    beta[-1] = fin / fin.sum()
    for t in range(num_frames - 2, -1, -1):
        w = e[t + 1] * beta[t + 1]
        b = pull(w)
        if acc is not None:
            beta_acc[t] = torch.where(b > 0, pull(w * (acc[t + 1] + beta_acc[t + 1])) / b, 0.0)
        beta[t] = b / b.sum()
    occ = alpha * beta
    gamma = occ / occ.sum(dim=1, keepdim=True)
    index = pdfs.expand(num_frames, S)
    gamma_pdf = torch.zeros(num_frames, num_pdfs, dtype=torch.float64).scatter_add_(1, index, gamma)
    post_pdf = torch.zeros(num_frames, num_pdfs, dtype=torch.float64)
    if acc is not None:
        post_pdf.scatter_add_(1, index, gamma * (alpha_acc + beta_acc - expected))
    return DenStats(logz, expected, gamma_pdf, post_pdf)


class _DenCriterion(torch.autograd.Function):
    """(logZ, A) of one utterance, with the analytic gradient to the log-likelihoods."""

    @staticmethod
    def forward(ctx, loglikes, graph, kappa, accuracy, utt):
        stats = forward_backward(graph, loglikes, kappa, accuracy, utt)
        ctx.kappa, ctx.dtype = kappa, loglikes.dtype
        ctx.save_for_backward(stats.gamma, stats.post)
        return (torch.tensor(stats.logz, dtype=torch.float64), torch.tensor(stats.accuracy, dtype=torch.float64))

    @staticmethod
    def backward(ctx, grad_logz, grad_acc):
        gamma, post = ctx.saved_tensors
        grad = ctx.kappa * (grad_logz.to(torch.float64) * gamma + grad_acc.to(torch.float64) * post)
        return grad.to(ctx.dtype), None, None, None, None


def den_criterion(loglikes, graph, kappa, accuracy=None, utt="utterance"):
    """(logZ, A) of one utterance's log-likelihoods [frames, pdfs] over the denominator graph;
    differentiable with respect to them."""
    if loglikes.dim() != 2:
        raise HdnnError(f"{utt}: outputs of shape {tuple(loglikes.shape)}, expected [frames, pdfs]")
    if accuracy is not None and tuple(np.shape(accuracy)) != (loglikes.shape[0], graph.num_states):
        raise HdnnError(f"{utt}: frame accuracy of shape {np.shape(accuracy)} for {loglikes.shape[0]} frames "
                        f"and {graph.num_states} states")
    return _DenCriterion.apply(loglikes, graph, float(kappa), accuracy, utt)


def den_smbr_loss(loglikes, graph, kappa, accuracy, utt="utterance"):
    """-A / kappa (its gradient: minus the sMBR posteriors, as Kaldi's), and A."""
    _, acc = den_criterion(loglikes, graph, kappa, accuracy, utt)
    return -acc / kappa, acc.detach()


def den_mmi_loss(loglikes, graph, kappa, ref_pdfs, utt="utterance"):
    """logZ_den - kappa * y[num] (gradient kappa * (gamma_den - gamma_num)), and logZ_den."""
    logz, _ = den_criterion(loglikes, graph, kappa, None, utt)
    ref = torch.as_tensor(np.asarray(ref_pdfs), dtype=torch.int64)
    num = loglikes.gather(1, ref[:, None]).squeeze(1).to(torch.float64)
    return logz - kappa * num.sum(), logz.detach()

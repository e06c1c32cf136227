"""LDA+MLLT triphone training, as Kaldi's steps/train_lda_mllt.sh: spliced CMVN features
projected by LDA (acc-lda, est-lda), a tree on them, then EM in which a global MLLT
(semi-tied covariance) transform is re-estimated at some iterations (gmm-acc-mllt,
est-mllt, gmm-transform-means, compose-transforms)."""
import dataclasses
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdnn.errors import HdnnError
from hdnn.gmm.deltas import DeltasConfig, init_triphones
from hdnn.gmm.features import iter_cmvn_deltas
from hdnn.gmm.model import GmmSystem
from hdnn.gmm.train import TrainingData, Trainer, claim_gmm_dir, resume_point, run_em, set_jobs, transform_features
from hdnn.kaldi.alignments import num_jobs, read_ali_dir
from hdnn.kaldi.binary import read_kaldi_matrix, write_kaldi_matrix
from hdnn.kaldi.features import splice
from hdnn.kaldi.gmm_model import AmDiagGmm, DiagGmm

log = logging.getLogger(__name__)


@dataclass
class LdaMlltConfig(DeltasConfig):
    """The configuration section of steps/train_lda_mllt.sh (the rest as train_deltas)."""

    dim: int = 40
    left_context: int = 3
    right_context: int = 3
    mllt_iters: tuple = (2, 4, 6, 12)


def frame_weights(tm, ali, silence_phones):
    """weight-silence-post 0.0: weight 0 for frames of silence phones, 1 otherwise."""
    return (~np.isin(tm.tid2phone[np.asarray(ali)], list(silence_phones))).astype(np.float64)


def estimate_lda(feats, pdfs, weights, num_pdfs, dim):
    """acc-lda + est-lda: the dim x D LDA matrix (classes = pdfs), W^{-1/2}-whitened as Kaldi's
    LdaEstimate::Estimate (rows: eigenvectors of L^-1 B L^-T times L^-1, W = L L^T)."""
    x = np.concatenate(feats).astype(np.float64)
    pdf = np.concatenate(pdfs)
    w = np.concatenate(weights)
    count = np.bincount(pdf, w, minlength=num_pdfs)
    sums = np.zeros((num_pdfs, x.shape[1]))
    np.add.at(sums, pdf, x * w[:, None])
    total = count.sum()
    mean = sums.sum(0) / total
    total_cov = (x * w[:, None]).T @ x / total - np.outer(mean, mean)
    used = count > 0
    class_means = sums[used] / count[used, None]
    between = (class_means * (count[used, None] / total)).T @ class_means - np.outer(mean, mean)
    within = total_cov - between
    try:
        chol = np.linalg.cholesky(within)
    except np.linalg.LinAlgError:
        within += np.eye(len(within)) * 1e-3 * np.trace(within) / len(within)
        chol = np.linalg.cholesky(within)
    chol_inv = np.linalg.inv(chol)
    u, s, _ = np.linalg.svd(chol_inv @ between @ chol_inv.T)
    order = np.argsort(-s)
    log.info("est-lda: %.0f frames, sum of selected singular values %.2f of %.2f", total,
             s[order[:dim]].sum(), s.sum())
    return (u[:, order].T @ chol_inv)[:dim]


def acc_mllt(am, tm, feats, alignments, silence_phones):
    """gmm-acc-mllt: (beta, G[i] = sum of posterior / var_i * offset offset^T) over the frames
    of non-silence phones, per pdf in a batch."""
    dim = am.dim
    G = np.zeros((dim, dim, dim))
    beta = 0.0
    if not feats:
        return beta, G
    x = np.concatenate(feats).astype(np.float64)
    tids = np.concatenate(alignments)
    w = frame_weights(tm, tids, silence_phones)
    pdf = tm.tid2pdf[tids]
    keep = w > 0
    x, pdf = x[keep], pdf[keep]
    order = np.argsort(pdf, kind="stable")
    pdfs, first = np.unique(pdf[order], return_index=True)
    for p, rows in zip(pdfs, np.split(order, first[1:])):
        g = am.pdfs[p]
        xp = x[rows]
        ll = g.component_loglikes(xp)
        post = np.exp(ll - ll.max(1, keepdims=True))
        post /= post.sum(1, keepdims=True)
        means = g.means.astype(np.float64)
        for k in range(g.num_gauss):
            off = xp - means[k]
            scatter = (off * post[:, k, None]).T @ off
            G += g.inv_vars[k].astype(np.float64)[:, None, None] * scatter[None]
        beta += post.sum()
    return beta, G


def estimate_mllt(beta, G, num_iters=200):
    """est-mllt: the MLLT matrix M maximising beta log|det M| - 0.5 sum_i m_i G_i m_i^T, by
    Gales' row-by-row update from the identity (MlltAccs::Update)."""
    dim = len(G)
    if beta < 10 * dim:
        log.warning("est-mllt: very small count %.1f", beta)
    M = np.eye(dim)
    G_inv = np.linalg.inv(G)
    impr = 0.0
    for _ in range(num_iters):
        for i in range(dim):
            cof = np.linalg.inv(M).T[i]
            before = beta * np.log(abs(M[i] @ cof)) - 0.5 * M[i] @ G[i] @ M[i]
            M[i] = np.sqrt(beta / (cof @ G_inv[i] @ cof)) * (G_inv[i] @ cof)
            impr += beta * np.log(abs(M[i] @ cof)) - 0.5 * M[i] @ G[i] @ M[i] - before
    log.info("est-mllt: objective improvement %.4f per frame over %.0f frames", impr / max(beta, 1), beta)
    return M


def transform_means(am, M):
    """gmm-transform-means: every Gaussian mean mu -> M mu (variances unchanged)."""
    return AmDiagGmm([DiagGmm.from_means_vars(g.weights, g.means @ M.T, g.variances) for g in am.pdfs])


def train_lda_mllt(num_leaves, tot_gauss, data_dir, lang_dir, ali_dir, out_dir, nj=None, config=None,
                   cmd="run.pl", progress=True):
    """steps/train_lda_mllt.sh <num-leaves> <tot-gauss> <data> <lang> <ali-dir> <dir>: also writes
    <dir>/final.mat (the LDA+MLLT transform of the spliced features) and <dir>/splice_opts."""
    cfg = config or LdaMlltConfig()
    out, ali_dir = Path(out_dir), Path(ali_dir)
    claim_gmm_dir(out, data_dir, lang_dir, ali_dir,
                  {"num_leaves": num_leaves, "tot_gauss": tot_gauss, "config": dataclasses.asdict(cfg)})
    start = resume_point(out)
    if start is None and (out / "final.mdl").exists() and (out / "final.mat").exists():
        log.info("%s: already trained (final.mdl exists)", out)
        return GmmSystem.load(out)
    out.mkdir(parents=True, exist_ok=True)
    context = (cfg.left_context, cfg.right_context)
    (out / "splice_opts").write_text(f"--left-context={cfg.left_context} --right-context={cfg.right_context}\n")
    spliced = {u: splice(x, *context) for u, x in iter_cmvn_deltas(data_dir, delta_order=0)}
    data = TrainingData.load(data_dir, lang_dir, nj or num_jobs(ali_dir), feats=spliced)
    set_jobs(out, data)
    incgauss = (tot_gauss - num_leaves) // cfg.max_iter_inc

    if start is None:
        ali_system = GmmSystem.load(ali_dir)
        alis = read_ali_dir(ali_dir)
        utts = [u for u in alis if u in spliced]
        if not utts:
            raise HdnnError(f"{ali_dir}: no alignments of utterances of {data_dir}")
        lda = estimate_lda([spliced[u] for u in utts], [ali_system.tm.tid2pdf[alis[u]] for u in utts],
                           [frame_weights(ali_system.tm, alis[u], data.lang.silence) for u in utts],
                           ali_system.tm.num_pdfs, cfg.dim)
        write_kaldi_matrix(out / "0.mat", lda)
        lda = read_kaldi_matrix(out / "0.mat")  # as the jobs will read it
        data.feats = {u: transform_features(x, lda) for u, x in spliced.items()}
        system, _ = init_triphones(data, ali_dir, out, num_leaves, cfg)
        start = 1
    else:
        for x in cfg.mllt_iters:  # an MLLT update of the iteration we resume at is redone
            if x >= start:
                (out / f"{x}.mat").unlink(missing_ok=True)
        system = GmmSystem.load(out, f"{start}.mdl")
        log.info("resuming from %s", out / f"{start}.mdl")
    trainer = Trainer(data, system, out, cmd, boost_silence=cfg.boost_silence, beam=cfg.beam,
                      retry_beam=cfg.retry_beam, careful=cfg.careful, model=f"{start}.mdl", progress=False)
    trainer.transform = max((p for p in out.glob("*.mat") if p.stem.isdigit()), key=lambda p: int(p.stem))
    trainer.context = context

    def mllt(x):
        """gmm-acc-mllt, est-mllt, gmm-transform-means (<x>.mllt.mdl) and compose-transforms (<x>.mat)."""
        if x not in cfg.mllt_iters:
            return
        beta, G = trainer.accumulate(f"mllt.{x}", mllt=True)
        M = estimate_mllt(beta, G)
        write_kaldi_matrix(out / f"{x}.mat", M @ read_kaldi_matrix(trainer.transform))
        trainer.transform = out / f"{x}.mat"
        trainer.use(trainer.system.replaced(am=transform_means(trainer.system.am, M)), f"{x}.mllt.mdl")

    system = run_em(trainer, out, start, cfg.num_iters, cfg.realign_iters,
                    numgauss_at=lambda x: num_leaves + incgauss * min(x - 1, cfg.max_iter_inc),
                    beam_at=lambda x: cfg.beam, power=cfg.power, desc="train_lda_mllt", progress=progress,
                    before_acc=mllt)
    shutil.copyfile(trainer.transform, out / "final.mat")
    return system

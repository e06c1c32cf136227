"""Mixing-up (Kaldi's AmDiagGmm::SplitByCount) with a seeded generator.

kaldi-hmm-gmm's split draws its perturbations from std::random_device, so no two runs would
train the same system; this is the same algorithm with numpy's seeded generator.
"""
import heapq

import numpy as np

from hdnn.kaldi.gmm_model import AmDiagGmm, DiagGmm


def split_targets(occs, target, power=0.2, min_count=20.0):
    """GetSplitTargets: the number of Gaussians per pdf for `target` in all, handing each new
    Gaussian to the pdf with the most occs**power per Gaussian, none to a pdf with fewer than
    `min_count` frames per Gaussian."""
    occs = np.asarray(occs, dtype=np.float64)
    weight = occs ** power
    counts = np.ones(len(occs), dtype=np.int64)
    heap = [(-w, p) for p, w in enumerate(weight)]
    heapq.heapify(heap)
    total = len(occs)
    while total < target and heap:
        _, p = heapq.heappop(heap)
        if (counts[p] + 1) * min_count >= occs[p]:
            continue  # never split this pdf again
        counts[p] += 1
        total += 1
        heapq.heappush(heap, (-weight[p] / counts[p], p))
    return counts


def split_gmm(gmm, target, perturb_factor, rng):
    """DiagGmm::Split: halve the heaviest Gaussian until there are `target`, moving the two
    halves' means apart by perturb_factor standard deviations in a random direction."""
    n, dim = gmm.num_gauss, gmm.dim
    weights = np.zeros(target, dtype=np.float32)
    means_invvars = np.zeros((target, dim), dtype=np.float32)
    inv_vars = np.zeros((target, dim), dtype=np.float32)
    weights[:n], means_invvars[:n], inv_vars[:n] = gmm.weights, gmm.means_invvars, gmm.inv_vars
    for new in range(n, target):
        k = int(np.argmax(weights[:new]))
        weights[k] /= 2
        weights[new] = weights[k]
        step = perturb_factor * rng.standard_normal(dim) * np.sqrt(inv_vars[k])
        inv_vars[new] = inv_vars[k]
        means_invvars[new] = means_invvars[k] + step
        means_invvars[k] -= step
    return DiagGmm(weights, means_invvars, inv_vars)


def mix_up(am, occs, target, perturb_factor=0.01, power=0.2, min_count=20.0, seed=0):
    """gmm-est --mix-up / gmm-mixup: a copy of `am` grown towards `target` Gaussians; the
    perturbations come from `seed` and the current size, so a rerun gives the same model."""
    rng = np.random.default_rng([seed, am.num_gauss])
    targets = split_targets(occs, target, power, min_count)
    return AmDiagGmm([split_gmm(g, t, perturb_factor, rng) if t > g.num_gauss else g
                      for g, t in zip(am.pdfs, targets)])

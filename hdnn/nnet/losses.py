"""Training criteria: plain functions of logits, averaged over frames.

``cross_entropy`` trains on hard senone targets; ``kd_loss`` is knowledge distillation
(Hinton et al., 2015) from a teacher's logits or from its stored sparse posteriors.
"""
import torch
import torch.nn.functional as F


def cross_entropy(logits, targets):
    """Mean frame cross-entropy of logits (N, P) against pdf ids (N,)."""
    return F.cross_entropy(logits, targets)


def _reduce(per_frame, reduction):
    return per_frame.mean() if reduction == "mean" else per_frame


def soft_cross_entropy(logits, posteriors, temperature=1.0, reduction="mean"):
    """Mean over frames (reduction "none": per frame) of -sum_k p_k log softmax(logits / temperature)_k.

    ``posteriors`` is either dense (N, P), or sparse as a pair (ids (N, K) long, weights (N, K)),
    e.g. the top-k teacher posteriors of a Kaldi Posterior archive (pad with weight 0).
    """
    log_q = F.log_softmax(logits / temperature, dim=-1)
    if isinstance(posteriors, (tuple, list)):
        ids, weights = posteriors
        return _reduce(-(weights * log_q.gather(1, ids)).sum(1), reduction)
    return _reduce(-(posteriors * log_q).sum(1), reduction)


def entropy(posteriors, reduction="mean"):
    """Mean over frames (reduction "none": per frame) of -sum_k p_k log p_k, for dense or sparse posteriors."""
    weights = posteriors[1] if isinstance(posteriors, (tuple, list)) else posteriors
    return _reduce(-torch.special.xlogy(weights, weights).sum(1), reduction)


def kd_loss(student_logits, targets, teacher_logits=None, teacher_posteriors=None, lam=0.5, temperature=1.0):
    """Knowledge-distillation loss, interpolating hard and soft targets:

        (1 - lam) * CE(targets, softmax(z_s))
          + lam * tau^2 * KL(softmax(z_t / tau) || softmax(z_s / tau))

    The soft term's gradient with respect to z_s is (q_s - p_t) / tau, and near equilibrium
    it shrinks as 1 / tau^2; multiplying by tau^2 keeps the soft-target gradients on the scale
    of the hard-target ones whatever the temperature (Hinton et al., 2015), so ``lam`` means
    the same thing at every tau. KL is the soft cross-entropy less the teacher's entropy: the
    same gradients, but no constant floor in the value, so that newbob's relative CV
    improvements mean for a KD student what they mean for a CE one.

    Soft targets come either from ``teacher_logits`` (teacher run on the same frames) or from
    precomputed ``teacher_posteriors`` (dense (N, P) or sparse (ids, weights), see
    ``soft_cross_entropy``), which are used as given: store them at the training temperature.
    With lam = 1 the hard targets are not used and may be None.

    Frames whose hard target is negative (untranscribed audio: hdnn.nnet.data.UNLABELLED) have only the soft
    targets, and their loss is the soft term alone, at full weight (as if lam were 1 for them):
    the teacher's distribution is the whole of what is known of such a frame. The mean is over
    all frames, transcribed or not.
    """
    if (teacher_logits is None) == (teacher_posteriors is None):
        raise ValueError("kd_loss needs exactly one of teacher_logits and teacher_posteriors")
    if teacher_posteriors is None:
        with torch.no_grad():
            teacher_posteriors = F.softmax(teacher_logits.float() / temperature, dim=-1)
    if lam < 1.0 and bool((targets < 0).any()):
        return _kd_loss_some_unlabelled(student_logits, targets, teacher_posteriors, lam, temperature)
    soft = (soft_cross_entropy(student_logits, teacher_posteriors, temperature)
            - entropy(teacher_posteriors)) * temperature ** 2
    if lam >= 1.0:
        return soft
    return (1 - lam) * cross_entropy(student_logits, targets) + lam * soft


def _kd_loss_some_unlabelled(student_logits, targets, teacher_posteriors, lam, temperature):
    """kd_loss, frame by frame, when some frames have no hard target (see kd_loss)."""
    soft = (soft_cross_entropy(student_logits, teacher_posteriors, temperature, reduction="none")
            - entropy(teacher_posteriors, reduction="none")) * temperature ** 2
    labelled = targets >= 0
    hard = F.cross_entropy(student_logits, targets.clamp(min=0), reduction="none")
    frame = torch.where(labelled, (1 - lam) * hard + lam * soft, soft)
    return frame.mean()

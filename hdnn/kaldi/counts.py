"""Pdf frame counts (`analyze-counts`) and the log-priors nnet1 subtracts when decoding.

The counts file is a Kaldi text vector `[ c0 c1 ... ]`, as `analyze-counts --binary=false`
writes it and `nnet-forward --class-frame-counts` reads it.
"""
import math

import numpy as np

from hdnn.errors import HdnnError, atomic_open
from hdnn.kaldi.binary import KaldiBinaryReader

# nnet1's PdfPrior: the log-prior of a floored class, sqrt(FLT_MAX), which makes its
# log-likelihood hugely negative so that the decoder never chooses it.
FLOORED_LOG_PRIOR = math.sqrt(float(np.finfo(np.float32).max))


def write_counts(path, counts):
    """Write counts as a Kaldi text vector, atomically."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1:
        raise HdnnError(f"{path}: counts must be a vector, got shape {counts.shape}")
    with atomic_open(path, "w") as f:
        f.write(" [ " + "".join(f"{c:.10g} " for c in counts) + "]\n")


def read_counts(path):
    """Read a counts vector (Kaldi text `[ ... ]`, or binary FV/DV) as float64."""
    try:
        data = open(path, "rb").read()
    except OSError as e:
        raise HdnnError(f"{path}: cannot read counts: {e.strerror}") from None
    if data.startswith(b"\0B"):
        return KaldiBinaryReader(data, path, 2).vector().astype(np.float64)
    text = data.decode("utf-8", errors="replace").split()
    if len(text) < 2 or text[0] != "[" or text[-1] != "]":
        raise HdnnError(f"{path}: not a Kaldi counts vector (expected '[ c0 c1 ... ]')")
    try:
        counts = np.array(text[1:-1], dtype=np.float64)
    except ValueError:
        raise HdnnError(f"{path}: non-numeric value in counts vector") from None
    if np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise HdnnError(f"{path}: counts must be finite and non-negative")
    return counts


def counts_from_alignments(pdf_alis, num_pdfs, add=0.5):
    """Frame count of each pdf over (utt, pdf-alignment) pairs, plus `add` for every pdf,
    as `analyze-counts --counts-dim=num_pdfs` computes (it adds half a frame)."""
    counts = np.zeros(num_pdfs, dtype=np.float64)
    for utt, ali in pdf_alis:
        ali = np.asarray(ali)
        if ali.size and (ali.min() < 0 or ali.max() >= num_pdfs):
            raise HdnnError(f"alignment of {utt}: pdf-id {int(ali.max() if ali.max() >= num_pdfs else ali.min())} "
                            f"out of range [0, {num_pdfs})")
        counts += np.bincount(ali, minlength=num_pdfs)
    return counts + add


def log_priors(counts, floor=1e-10):
    """log(count / total) per pdf, as nnet1's PdfPrior; a class whose relative frequency is
    under `floor` gets FLOORED_LOG_PRIOR so that it never wins. Returns float32."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if counts.ndim != 1 or total <= 0:
        raise HdnnError("log_priors: need a non-empty vector of counts with a positive sum")
    rel_freq = counts / total
    priors = np.log(rel_freq + 1e-20)
    priors[rel_freq < floor] = FLOORED_LOG_PRIOR
    return priors.astype(np.float32)

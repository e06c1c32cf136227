"""Kaldi Posterior tables (as `ali-to-post`, `copy-post` and `feat-to-post` write them).

A posterior is a list over frames of lists of (pdf-id, weight) pairs. Binary layout per
utterance (kaldi/src/hmm/posterior.cc): `\\0B`, int32 #frames, then per frame int32 #pairs
and (int32 id, float weight) pairs, every basic value after its size byte. Text layout:
`[ 12 0.6 7 0.4 ] [ 3 1 ] ...` on one line.
"""
import struct

import numpy as np

from hdnn.errors import HdnnError
from hdnn.kaldi.io import BINARY_HEADER, read_binary_header, read_table, write_table

_COUNT = struct.Struct("<bi")
_PAIR = np.dtype([("id_size", "i1"), ("id", "<i4"), ("weight_size", "i1"), ("weight", "<f4")])


def read_posterior(f, key, source):
    """One Posterior from a binary stream positioned after its key (binary or text)."""
    post = _read_posterior_pairs(f, key, source)
    if not isinstance(post, tuple):
        return post
    counts, pairs = post
    ids, weights = pairs["id"].tolist(), pairs["weight"].tolist()
    ends = np.cumsum(counts).tolist()
    return [list(zip(ids[e - n:e], weights[e - n:e])) for n, e in zip(counts.tolist(), ends)]


def read_padded_posterior(f, key, source):
    """One Posterior as (ids (T, K) int64, weights (T, K) float32), K the largest number of pairs in
    a frame (at least 1), padding with id 0 and weight 0: soft targets without per-pair objects."""
    post = _read_posterior_pairs(f, key, source)
    if not isinstance(post, tuple):
        return padded_posteriors(post)
    counts, pairs = post
    return _padded(counts, pairs["id"], pairs["weight"])


def padded_posteriors(post):
    """(ids (T, K) int64, weights (T, K) float32) of a posterior given as a list over frames of
    (pdf, weight) pairs, as read_padded_posterior returns them."""
    counts = np.array([len(frame) for frame in post], dtype=np.int64)
    pairs = [pair for frame in post for pair in frame]
    return _padded(counts, [i for i, _ in pairs], [w for _, w in pairs])


def _padded(counts, ids, weights):
    """The (T, K) arrays of the pairs `ids`, `weights` (in frame order), `counts[t]` of them in frame t."""
    k = max(int(counts.max(initial=0)), 1)
    padded_ids = np.zeros((len(counts), k), dtype=np.int64)
    padded_weights = np.zeros((len(counts), k), dtype=np.float32)
    rows = np.repeat(np.arange(len(counts)), counts)
    cols = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    padded_ids[rows, cols], padded_weights[rows, cols] = ids, weights
    return padded_ids, padded_weights


def _read_posterior_pairs(f, key, source):
    """A binary posterior as (pairs per frame (T,) int64, all (id, weight) pairs in frame order);
    a text one as the list read_posterior returns."""
    head = read_binary_header(f)
    if head != BINARY_HEADER:
        line = head if head.endswith(b"\n") else head + f.readline()
        return _parse_text_posterior(line.decode("utf-8"), key, source)
    num_frames = _read_count(f, key, source)
    counts = np.empty(num_frames, dtype=np.int64)
    chunks = []
    for t in range(num_frames):
        counts[t] = n = _read_count(f, key, source)
        data = f.read(n * _PAIR.itemsize)
        if len(data) != n * _PAIR.itemsize:
            raise HdnnError(f"{source}: posterior of {key} is truncated")
        chunks.append(data)
    pairs = np.frombuffer(b"".join(chunks), dtype=_PAIR)
    if np.any(pairs["id_size"] != 4) or np.any(pairs["weight_size"] != 4):
        raise HdnnError(f"{source}: posterior of {key} is not (int32, float) pairs")
    return counts, pairs


def _read_count(f, key, source):
    data = f.read(_COUNT.size)
    if len(data) != _COUNT.size:
        raise HdnnError(f"{source}: posterior of {key} is truncated")
    size, n = _COUNT.unpack(data)
    if size != 4 or n < 0:
        raise HdnnError(f"{source}: {key} is not a posterior (bad count)")
    return n


def _parse_text_posterior(line, key, source):
    post = []
    for num, frame in enumerate(line.split("]")[:-1]):
        fields = frame.split()
        if not fields or fields[0] != "[" or len(fields) % 2 != 1:
            raise HdnnError(f"{source}: bad text posterior of {key} at frame {num}")
        try:
            post.append([(int(i), float(w)) for i, w in zip(fields[1::2], fields[2::2])])
        except ValueError:
            raise HdnnError(f"{source}: bad text posterior of {key} at frame {num}") from None
    if line.split("]")[-1].strip():
        raise HdnnError(f"{source}: bad text posterior of {key} (expected '[ id weight ... ]')")
    return post


def read_posteriors(rspecifier):
    """Iterate (utt, posterior) over a table of Kaldi posteriors (binary or text)."""
    return read_table(rspecifier, read_posterior)


def read_padded_posteriors(rspecifier):
    """Iterate (utt, (ids, weights)) over a table of Kaldi posteriors, as read_padded_posterior."""
    return read_table(rspecifier, read_padded_posterior)


def write_posteriors(wspecifier, items):
    """Write (utt, posterior) pairs as a Kaldi Posterior table; returns the count."""

    def write_value(f, post):
        parts = [BINARY_HEADER, _COUNT.pack(4, len(post))]
        for frame in post:
            pairs = np.empty(len(frame), dtype=_PAIR)
            pairs["id_size"], pairs["weight_size"] = 4, 4
            if len(frame):
                pairs["id"], pairs["weight"] = zip(*frame)
            parts += [_COUNT.pack(4, len(frame)), pairs.tobytes()]
        f.write(b"".join(parts))

    def write_text(f, post):
        frames = ("[ " + "".join(f"{int(i)} {float(w):.7g} " for i, w in frame) + "]" for frame in post)
        f.write((" ".join(frames) + " \n").encode())

    return write_table(wspecifier, items, write_value, write_text)


def posterior_from_alignment(ali):
    """One (pdf, 1.0) pair per frame, as `ali-to-post` makes from an alignment."""
    return [[(int(p), 1.0)] for p in ali]


def topk_posteriors(post_matrix, k, min_weight=0.0):
    """Sparse posterior of a dense (T, N) matrix: per frame the k largest entries with
    weight >= min_weight (at least the largest one), renormalised to sum to one."""
    post_matrix = np.asarray(post_matrix, dtype=np.float32)
    if post_matrix.ndim != 2 or k < 1:
        raise HdnnError(f"topk_posteriors: need a (T, N) matrix and k >= 1, got {post_matrix.shape}, k={k}")
    k = min(k, post_matrix.shape[1])
    top = np.argpartition(-post_matrix, k - 1, axis=1)[:, :k]
    weights = np.take_along_axis(post_matrix, top, axis=1)
    order = np.argsort(-weights, axis=1, kind="stable")
    top, weights = np.take_along_axis(top, order, axis=1), np.take_along_axis(weights, order, axis=1)
    keep = weights >= min_weight
    keep[:, 0] = True
    weights = np.where(keep, weights, 0.0)
    totals = weights.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        raise HdnnError(f"topk_posteriors: frame {int(np.argmin(totals))} has no positive weight")
    weights = weights / totals
    return [[(int(i), float(w)) for i, w, kept in zip(ids, ws, ks) if kept]
            for ids, ws, ks in zip(top, weights, keep)]


def dense_from_posterior(post, num_pdfs):
    """(T, num_pdfs) float32 matrix of a posterior; repeated ids add up (like `post-to-feats`)."""
    dense = np.zeros((len(post), num_pdfs), dtype=np.float32)
    for t, frame in enumerate(post):
        for pdf, weight in frame:
            if not 0 <= pdf < num_pdfs:
                raise HdnnError(f"posterior frame {t}: pdf-id {pdf} out of range [0, {num_pdfs})")
            dense[t, pdf] += weight
    return dense

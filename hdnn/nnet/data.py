"""Frame-level training data: utterances paired with their targets, shuffled with bounded memory.

An utterance yields a tuple of arrays with one row per frame: (features, pdf ids) and, with
stored teacher posteriors, (ids (T, K), weights (T, K)) as well. ``frame_minibatches`` mixes the
frames of many utterances like nnet1's ``nnet-train-frmshuff --randomizer-size``: it fills a
buffer of about ``randomizer_size`` frames from utterances in shuffled order, shuffles the frames
of the buffer and emits minibatches; memory stays bounded by the buffer whatever the corpus size.
In training, as nnet1's randomizer, every minibatch is full: the fewer than ``minibatch_size``
frames left at the end of an epoch are not trained on. The learning rate is per frame (the step
is scaled by the minibatch size, the loss is a mean over the minibatch), so a last minibatch of n
frames would weigh each of its frames minibatch_size / n times as much as any other frame, in the
step right before cross-validation.
"""
import logging

import numpy as np

from hdnn.errors import HdnnError
from hdnn.kaldi.data_dir import read_kaldi_map


class FrameTargets:
    """Utterances of a feature pipeline paired with their frame targets.

    ``pipeline(utt)`` gives the (T, D) network input; ``targets`` maps utt -> pdf ids (T,);
    ``soft_targets``, when given, maps utt -> (ids (T, K), weights (T, K)).
    As nnet1 does, utterances without targets are skipped and counted, a length mismatch of up
    to ``length_tolerance`` frames is trimmed, and longer mismatches are skipped and counted;
    when more than ``max_skip_fraction`` of the utterances are skipped it is an error.

    ``targets=None``: untranscribed utterances; every frame's hard target is UNLABELLED (-1), so
    only soft targets (stored, or a teacher's run on the fly) can train on them.
    """

    def __init__(self, pipeline, utts, targets, targets_source, soft_targets=None, soft_source=None,
                 length_tolerance=5, max_skip_fraction=0.1, feats_source="features"):
        self.pipeline = pipeline
        self.unlabelled = targets is None
        if self.unlabelled:  # no targets to count frames by: utt2num_frames, where there is one
            counts = pipeline.data.path / "utt2num_frames"
            self.frame_counts = read_kaldi_map(counts) if counts.exists() else {}
            targets = dict.fromkeys(utts)
        self.targets, self.targets_source = targets, targets_source
        self.soft_targets, self.soft_source = soft_targets, soft_source
        self.length_tolerance, self.max_skip_fraction = length_tolerance, max_skip_fraction
        self.feats_source = feats_source
        self.num_total = len(utts)
        if not utts:
            raise HdnnError(f"{feats_source}: no utterances")
        missing = [u for u in utts if u not in targets or (soft_targets is not None and u not in soft_targets)]
        missing_set = set(missing)
        self.utts = [u for u in utts if u not in missing_set]
        logging.info("%s: %d utterances, %d with targets%s", feats_source, len(utts), len(self.utts),
                     " (untranscribed: soft targets only)" if self.unlabelled else "")
        self.skipped = {"no targets": len(missing)}
        if missing:
            source = targets_source if missing[0] not in targets else soft_source
            logging.warning("%s: %d of %d utterances have no targets in %s (e.g. %s); skipped",
                            feats_source, len(missing), len(utts), source, missing[0])
            self._check_skips(f"utterance {missing[0]} has no targets in {source}")
        self.skipped["length mismatch"] = 0
        self._bad_length = set()

    def _check_skips(self, example):
        skipped = sum(self.skipped.values())
        if skipped > self.max_skip_fraction * self.num_total:
            raise HdnnError(f"{self.feats_source}: {skipped} of {self.num_total} utterances skipped, more than "
                            f"{self.max_skip_fraction:.0%} (e.g. {example})")

    def num_frames(self, utt):
        """The number of frames of ``utt`` as its targets say (for progress bars; 0 when unknown)."""
        return int(self.frame_counts.get(utt, 0)) if self.unlabelled else len(self.targets[utt])

    def load(self, utt):
        """The tuple of per-frame arrays of ``utt``, or None when it is skipped."""
        feats = self.pipeline(utt)
        items = [np.full(len(feats), UNLABELLED, np.int32) if self.unlabelled else self.targets[utt]]
        if self.soft_targets is not None:
            items.extend(self.soft_targets[utt])
        num_frames = min(len(feats), *(len(a) for a in items))
        worst = max(len(feats), *(len(a) for a in items)) - num_frames
        if worst > self.length_tolerance:
            if utt not in self._bad_length:
                self._bad_length.add(utt)
                self.skipped["length mismatch"] += 1
                example = (f"utterance {utt} has {len(feats)} frames in {self.feats_source} but "
                           f"{len(items[0])} in {self.targets_source}, beyond --length-tolerance "
                           f"{self.length_tolerance}")
                logging.warning("%s; skipped", example)
                self._check_skips(example)
            return None
        return tuple(a[:num_frames] for a in (feats, *items))


UNLABELLED = -1  # the hard target of a frame without a transcript (untranscribed audio)


class ConcatFrames:
    """Several FrameTargets trained on as one set (e.g. transcribed and untranscribed data)."""

    def __init__(self, parts):
        self.parts = parts
        self.owner = {}
        for part in parts:
            for u in part.utts:
                if u in self.owner:
                    raise HdnnError(f"utterance {u} is in both {self.owner[u].feats_source} and {part.feats_source}")
                self.owner[u] = part
        self.utts = [u for part in parts for u in part.utts]
        self.feats_source = " + ".join(part.feats_source for part in parts)
        self.soft_targets = parts[0].soft_targets
        self.pipeline = parts[0].pipeline

    def num_frames(self, utt):
        return self.owner[utt].num_frames(utt)

    def load(self, utt):
        return self.owner[utt].load(utt)


def frame_minibatches(load, utts, minibatch_size, randomizer_size=32768, rng=None):
    """Yield minibatches: tuples of arrays of ``minibatch_size`` rows (the last may be smaller).

    ``load(utt)`` returns a tuple of per-frame arrays or None. With ``rng`` (a numpy Generator)
    utterances are visited in random order and frames shuffled within a buffer of about
    ``randomizer_size`` frames, and the last frames that do not fill a minibatch are dropped
    (training); without it, every frame comes, in order (cross-validation).
    """
    order = rng.permutation(len(utts)) if rng is not None else range(len(utts))
    buffer, buffered = [], 0
    for i in order:
        item = load(utts[i])
        if item is None:
            continue
        buffer.append(item)
        buffered += len(item[0])
        if buffered >= max(randomizer_size, minibatch_size):
            rest = yield from _emit(buffer, minibatch_size, rng, keep_partial=True)
            buffer, buffered = ([rest], len(rest[0])) if rest else ([], 0)
    if buffer:
        yield from _emit(buffer, minibatch_size, rng, keep_partial=rng is not None)


def _emit(buffer, minibatch_size, rng, keep_partial):
    """Shuffle the buffered frames and yield full minibatches; return the leftover frames
    (fewer than a minibatch) when ``keep_partial``, else yield them too."""
    columns = [np.concatenate(col) for col in zip(*buffer)]
    n = len(columns[0])
    perm = rng.permutation(n) if rng is not None else np.arange(n)
    num_full = n // minibatch_size * minibatch_size
    for start in range(0, num_full, minibatch_size):
        idx = perm[start:start + minibatch_size]
        yield tuple(c[idx] for c in columns)
    rest = perm[num_full:]
    if len(rest) == 0:
        return None
    if keep_partial:
        return tuple(c[rest] for c in columns)
    yield tuple(c[rest] for c in columns)
    return None

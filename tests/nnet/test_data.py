"""Frame randomisation, target pairing and the newbob schedule."""
import numpy as np
import pytest

from hdnn.errors import HdnnError
from hdnn.kaldi.alignments import read_pdf_alignments
from hdnn.kaldi.features import FeaturePipeline
from hdnn.nnet.data import FrameTargets, frame_minibatches
from hdnn.nnet.schedule import Newbob


def _utterances(lengths):
    """utt -> (frames, ids) where the frame value encodes (utterance, frame index)."""
    data = {f"u{i}": (np.arange(n) + 1000 * i, np.full(n, i)) for i, n in enumerate(lengths)}
    return data, list(data)


def test_randomizer_emits_full_minibatches_of_distinct_frames_reproducibly():
    data, utts = _utterances([37, 5, 60, 12, 90, 3, 41])
    every = np.concatenate([v[0] for v in data.values()])
    assert len(every) % 16 == 8

    def batches(seed, buffer=50):
        return list(frame_minibatches(data.get, utts, 16, buffer, np.random.default_rng(seed)))

    first = batches(1)
    frames = np.concatenate([b[0] for b in first])
    # as nnet1's randomizer: only full minibatches (the per-frame step would weigh a short last
    # one's frames 16 / n times), so the 8 frames left at the end are not trained on
    assert all(len(b[0]) == 16 for b in first)
    assert len(frames) == len(every) - 8 and len(set(frames)) == len(frames) and set(frames) <= set(every)
    for x, ids in first:  # columns stay paired
        np.testing.assert_array_equal(x // 1000, ids)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, batches(1)))
    assert not np.array_equal(frames, np.concatenate([b[0] for b in batches(2)]))
    # frames are mixed across utterances within a minibatch
    assert max(len(set(ids)) for _, ids in first) > 1


def test_randomizer_memory_is_bounded_by_its_buffer():
    data, utts = _utterances([30] * 40)
    loaded = []

    def load(utt):
        loaded.append(utt)
        return data[utt]

    gen = frame_minibatches(load, utts, 10, 100, np.random.default_rng(0))
    next(gen)
    # the first minibatch comes after ~100 frames (4 utterances), not after the whole corpus
    assert len(loaded) == 4


def test_randomizer_without_rng_keeps_order_and_every_frame():
    data, utts = _utterances([7, 9, 3])
    batches = list(frame_minibatches(data.get, utts, 4, 5))
    assert [len(b[0]) for b in batches][-1] == 3  # cross-validation sees the short last minibatch too
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]),
                                  np.concatenate([data[u][0] for u in utts]))


def test_frame_targets_skip_and_tolerance(toy_data):
    data, ali_spec = toy_data
    pipeline = FeaturePipeline(data, splice=2)
    ali = dict(read_pdf_alignments(ali_spec))
    utts = pipeline.utts

    # 3 frames short: within --length-tolerance 5, trimmed
    short = {**ali, utts[0]: ali[utts[0]][:-3]}
    ft = FrameTargets(pipeline, utts, short, "ali.scp", length_tolerance=5)
    x, y = ft.load(utts[0])
    assert len(x) == len(y) == len(ali[utts[0]]) - 3 and x.shape[1] == pipeline.dim

    # beyond the tolerance: skipped and counted, until more than max_skip_fraction are skipped
    bad = {**ali, **{u: ali[u][:-10] for u in utts[:4]}}
    ft = FrameTargets(pipeline, utts, bad, "ali.scp", max_skip_fraction=0.1, feats_source="feats.scp")
    assert ft.load(utts[0]) is None and ft.load(utts[1]) is None and ft.load(utts[2]) is None
    assert ft.skipped["length mismatch"] == 3
    with pytest.raises(HdnnError, match=rf"feats\.scp: 4 of 32 utterances skipped.*{utts[3]}.*ali\.scp"):
        ft.load(utts[3])

    # utterances without targets: a few are skipped, too many are an error naming one
    few = {u: a for u, a in ali.items() if u != utts[5]}
    ft = FrameTargets(pipeline, utts, few, "ali.scp")
    assert ft.skipped["no targets"] == 1 and utts[5] not in ft.utts and len(ft.utts) == 31
    many = {u: a for u, a in ali.items() if u not in utts[:10]}
    with pytest.raises(HdnnError, match=rf"10 of 32 utterances skipped.*{utts[0]} has no targets in ali\.scp"):
        FrameTargets(pipeline, utts, many, "ali.scp")
    with pytest.raises(HdnnError, match="no utterances"):
        FrameTargets(pipeline, [], ali, "ali.scp")


def _decisions(losses, **kwargs):
    s = Newbob(learn_rate=1.0, **kwargs)
    s.start(losses[0])
    out = []
    for loss in losses[1:]:
        if s.finished:
            break
        out.append((s.step(loss), s.learn_rate, s.halving, s.finished))
    return out, s


def test_newbob_halves_then_stops_like_train_scheduler():
    # improvements: 20% (keep lr), 0.5% (< 1%: start halving), 5% (halve), 0.05% (< 0.1%: stop)
    out, s = _decisions([10.0, 8.0, 7.96, 7.562, 7.5582, 7.0])
    assert out == [(True, 1.0, False, False), (True, 0.5, True, False), (True, 0.25, True, False),
                   (True, 0.25, True, True)]
    assert s.best_epoch == 4


def test_newbob_rejects_worse_epochs():
    out, s = _decisions([10.0, 8.0, 9.0, 7.0])
    # a worse CV loss is rejected; zero improvement starts halving
    assert out[1] == (False, 0.5, True, False)
    assert s.best_loss == 7.0 and s.best_epoch == 3
    out, _ = _decisions([10.0] + [9.0 - i for i in range(5)], max_iters=3)
    assert len(out) == 3 and out[-1][3]
    # min_iters accepts even a worse model and does not stop early
    out, _ = _decisions([10.0, 11.0, 10.5], min_iters=2)
    assert [o[0] for o in out] == [True, True]

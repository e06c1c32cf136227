"""Phonetic decision trees in numpy: acc-tree-stats, cluster-phones, compile-questions,
build-tree, gmm-init-model and convert-ali (kaldi/src/tree, kaldi/src/bin).

Tree statistics are one Gaussian (count, sum, sum of squares) per distinct event
(left phone, central phone, right phone, pdf-class). Trees grow greedily by the best
question under Kaldi's Gaussian objective, then leaves under the same root are merged
bottom-up (cluster_thresh) and rounded down to a multiple of 8, as build-tree does.
"""
import heapq
import logging
import math
from dataclasses import dataclass
from itertools import count

import numpy as np

from hdnn.errors import HdnnError
from hdnn.gmm.align import split_to_phones
from hdnn.gmm.model import GmmSystem
from hdnn.kaldi.gmm_model import AmDiagGmm, DiagGmm, TransitionModel
from hdnn.kaldi.tree import (PDF_CLASS, ConstantEventMap, ContextDependency, SplitEventMap,
                             TableEventMap)

log = logging.getLogger(__name__)

ABSENT = -1  # a context key not in the event (the context of a context-independent phone)
VAR_FLOOR = 0.01


# ---------------------------------------------------------------- statistics

@dataclass
class TreeStats:
    """Per-event Gaussian statistics: events [E, N+1] (context phones 0..N-1, then the
    pdf-class; ABSENT where the key is not in the event), count [E], x [E, D], x2 [E, D]."""

    events: np.ndarray
    count: np.ndarray
    x: np.ndarray
    x2: np.ndarray

    @classmethod
    def from_frames(cls, events, feats):
        """Sum per-frame events [T, N+1] and features [T, D] into one row per distinct event."""
        uniq, inv = np.unique(events, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        order = np.argsort(inv, kind="stable")
        starts = np.flatnonzero(np.diff(inv[order], prepend=-1))
        f = feats[order].astype(np.float64)
        return cls(uniq, np.diff(np.append(starts, len(inv))).astype(np.float64),
                   np.add.reduceat(f, starts), np.add.reduceat(f * f, starts))

    @classmethod
    def concat(cls, parts):
        parts = [p for p in parts if len(p.count)]
        events = np.concatenate([p.events for p in parts])
        uniq, inv = np.unique(events, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        out = cls(uniq, np.zeros(len(uniq)), np.zeros((len(uniq), parts[0].x.shape[1])),
                  np.zeros((len(uniq), parts[0].x.shape[1])))
        np.add.at(out.count, inv, np.concatenate([p.count for p in parts]))
        np.add.at(out.x, inv, np.concatenate([p.x for p in parts]))
        np.add.at(out.x2, inv, np.concatenate([p.x2 for p in parts]))
        return out

    @property
    def context_width(self):
        return self.events.shape[1] - 1

    def event_dict(self, i):
        """Event i as the {key: value} dict of kaldi's EventType."""
        e = {k: int(v) for k, v in enumerate(self.events[i, :-1]) if v != ABSENT}
        e[PDF_CLASS] = int(self.events[i, -1])
        return e


def gauss_objf(count, x, x2, var_floor=VAR_FLOOR):
    """GaussClusterable::Objf for rows of stats: the log-likelihood of the data under its
    own ML Gaussian, with variances floored at var_floor (0 where count is 0)."""
    count = np.asarray(count, dtype=np.float64)
    safe = np.where(count > 0, count, 1.0)[..., None]
    mean = x / safe
    var = x2 / safe - mean * mean
    floored = np.maximum(var, var_floor)
    dim = x.shape[-1]
    per_frame = -0.5 * (var / floored).sum(-1) - 0.5 * (np.log(floored).sum(-1) + math.log(2 * math.pi) * dim)
    return np.where(count > 0, per_frame * count, 0.0)


def acc_tree_stats(tm, feats, alignments, ci_phones, context_width=3, central_position=1):
    """acc-tree-stats: TreeStats of (features, alignment) pairs; context keys are omitted
    (ABSENT) around the context-independent phones `ci_phones`."""
    ci = np.zeros(int(tm.tid2phone.max()) + 1, dtype=bool)
    ci[[p for p in ci_phones if p < len(ci)]] = True
    pdf_class = tm.tid2pdf_class
    events, frames = [], []
    for x, ali in zip(feats, alignments):
        segs = split_to_phones(tm, ali)
        if not segs:
            continue
        phones = np.array([p for p, _, _ in segs])
        lengths = np.array([n for _, _, n in segs])
        n = len(phones)
        ev = np.empty((n, context_width + 1), dtype=np.int32)
        for j in range(context_width):
            pos = np.arange(n) + j - central_position
            ev[:, j] = np.where((pos >= 0) & (pos < n), phones[np.clip(pos, 0, n - 1)], 0)
            if j != central_position:
                ev[ci[phones], j] = ABSENT
        per_frame = np.repeat(ev, lengths, axis=0)
        per_frame[:, -1] = pdf_class[np.asarray(ali)]
        events.append(per_frame)
        frames.append(x)
    if not events:
        raise HdnnError("acc-tree-stats: no usable alignments")
    return TreeStats.from_frames(np.concatenate(events), np.concatenate(frames))


# ---------------------------------------------------------------- questions

def _split_two_means(stats, rng, num_tries=10, num_iters=20):
    """Split points (rows of count/x/x2) into two clusters (ClusterKMeans with 2 clusters)."""
    n = len(stats[0])
    best, best_objf = None, -np.inf
    for _ in range(num_tries):
        assign = rng.permutation(np.arange(n) % 2)
        for _ in range(num_iters):
            sums = [tuple(s[assign == c].sum(0) for s in stats) for c in (0, 1)]
            # objf gain of adding each point to each cluster (the point removed from its own)
            gains = []
            for c in (0, 1):
                mine = (assign == c)[:, None]
                base = [s_c - np.where(mine if s.ndim > 1 else mine[:, 0], s, 0) for s_c, s in zip(sums[c], stats)]
                with_p = [b + s for b, s in zip(base, stats)]
                gains.append(gauss_objf(*with_p) - gauss_objf(*base))
            new = np.argmax(np.stack(gains, 1), 1)
            if (np.bincount(new, minlength=2) == 0).any() or np.array_equal(new, assign):
                break
            assign = new
        objf = sum(gauss_objf(*(s[assign == c].sum(0) for s in stats)) for c in (0, 1))
        if objf > best_objf and 0 < assign.sum() < n:
            best, best_objf = assign.copy(), objf
    return best if best is not None else np.arange(n) % 2


def cluster_phones(stats, phone_sets, pdf_classes=(1,), central_position=1, seed=0):
    """cluster-phones: questions (sets of phones) from a top-down binary clustering of the
    phone sets by their statistics at `pdf_classes` (AutomaticallyObtainQuestions)."""
    keep = np.isin(stats.events[:, -1], pdf_classes)
    centre = stats.events[keep, central_position]
    d = stats.x.shape[1]
    per_set = [np.zeros(len(phone_sets)), np.zeros((len(phone_sets), d)), np.zeros((len(phone_sets), d))]
    for i, phones in enumerate(phone_sets):
        rows = np.isin(centre, phones)
        for acc, s in zip(per_set, (stats.count, stats.x, stats.x2)):
            acc[i] = s[keep][rows].sum(0)
    rng = np.random.default_rng(seed)
    questions = []

    def split(members):
        questions.append(sorted(p for i in members for p in phone_sets[i]))
        if len(members) < 2:
            return
        assign = _split_two_means([s[members] for s in per_set], rng)
        split(members[assign == 0])
        split(members[assign == 1])

    split(np.arange(len(phone_sets)))
    return questions


def pdf_class_questions(topo):
    """compile-questions' questions about the pdf-class: [0], [0, 1], ... [0 .. max-2]."""
    max_classes = max(topo.num_pdf_classes(p) for p in topo.phones)
    return [list(range(i + 1)) for i in range(max_classes - 1)]


# ---------------------------------------------------------------- build-tree

@dataclass
class _Leaf:
    rows: np.ndarray     # event indices
    group: int           # stub (root) it belongs to
    split: tuple = None  # (improvement, key column, yes set) of its best question


class TreeBuilder:
    """build-tree: greedy splitting from a stub of roots, then bottom-up clustering."""

    def __init__(self, stats, roots, questions, topo, central_position=1, var_floor=VAR_FLOOR):
        self.stats = stats
        self.roots = roots
        self.topo = topo
        self.P = central_position
        self.N = stats.context_width
        self.var_floor = var_floor
        phone_questions = [sorted(set(q)) for q in questions]
        max_value = max(int(stats.events.max()), max(max(q) for q in phone_questions), 1) + 1
        self.questions = {}
        for col in range(self.N + 1):
            qs = pdf_class_questions(topo) if col == self.N else phone_questions
            member = np.zeros((len(qs), max_value), dtype=bool)
            for i, q in enumerate(qs):
                member[i, q] = True
            self.questions[col] = (qs, member)
        self.moments = np.concatenate([stats.count[:, None], stats.x, stats.x2], 1)

    def _objf(self, m):
        d = self.stats.x.shape[1]
        return gauss_objf(m[..., 0], m[..., 1:1 + d], m[..., 1 + d:], self.var_floor)

    def best_split(self, rows):
        """(improvement, key column, yes-set) of the best question for a leaf, or None."""
        total = self.moments[rows].sum(0)
        base = self._objf(total)
        best = None
        for col, (qs, member) in self.questions.items():
            vals = self.stats.events[rows, col]
            if (vals == ABSENT).any():
                continue
            uniq, inv = np.unique(vals, return_inverse=True)
            if len(uniq) < 2:
                continue
            per_value = np.zeros((len(uniq), self.moments.shape[1]))
            np.add.at(per_value, inv, self.moments[rows])
            m = member[:, uniq]
            n_yes = m.sum(1)
            valid = (n_yes > 0) & (n_yes < len(uniq))
            if not valid.any():
                continue
            yes = m[valid].astype(np.float64) @ per_value
            impr = self._objf(yes) + self._objf(total - yes) - base
            i = int(np.argmax(impr))
            if best is None or impr[i] > best[0]:
                best = (float(impr[i]), col, qs[np.flatnonzero(valid)[i]])
        return best

    def stub(self):
        """Initial leaves: one per root, or per (root, pdf-class) for unshared roots."""
        centre, pdf_class = self.stats.events[:, self.P], self.stats.events[:, -1]
        leaves, stub_maps = [], {}
        for g, (phones, shared, _) in enumerate(self.roots):
            in_root = np.isin(centre, phones)
            if shared:
                leaves.append(_Leaf(np.flatnonzero(in_root), g))
                stub_maps[g] = [len(leaves) - 1]
            else:
                n = max(self.topo.num_pdf_classes(p) for p in phones)
                stub_maps[g] = []
                for c in range(n):
                    leaves.append(_Leaf(np.flatnonzero(in_root & (pdf_class == c)), g))
                    stub_maps[g].append(len(leaves) - 1)
        return leaves, stub_maps

    def build(self, max_leaves, thresh=300.0, cluster_thresh=-1.0, round_num_leaves=True):
        """The ContextDependency of SplitDecisionTree + ClusterEventMapRestrictedByMap."""
        leaves, stub_maps = self.stub()
        children = {}  # split leaf -> (col, yes set, yes leaf, no leaf)
        heap, tie = [], count()
        for i, leaf in enumerate(leaves):
            if self.roots[leaf.group][2] and len(leaf.rows):
                leaf.split = self.best_split(leaf.rows)
                if leaf.split:
                    heapq.heappush(heap, (-leaf.split[0], next(tie), i))
        num_leaves, smallest, total_impr = len(leaves), math.inf, 0.0
        while heap and num_leaves < max_leaves:
            neg, _, i = heapq.heappop(heap)
            if -neg < thresh:
                break
            impr, col, yes_set = leaves[i].split
            rows = leaves[i].rows
            yes_rows = rows[np.isin(self.stats.events[rows, col], yes_set)]
            no_rows = np.setdiff1d(rows, yes_rows, assume_unique=True)
            for child_rows in (yes_rows, no_rows):
                leaves.append(_Leaf(child_rows, leaves[i].group))
                child = leaves[-1]
                child.split = self.best_split(child_rows)
                if child.split:
                    heapq.heappush(heap, (-child.split[0], next(tie), len(leaves) - 1))
            children[i] = (col, yes_set, len(leaves) - 2, len(leaves) - 1)
            num_leaves += 1
            smallest, total_impr = min(smallest, impr), total_impr + impr
        frames = self.stats.count.sum()
        log.info("build-tree: %d leaves after splitting, like-impr %.3f per frame over %.0f frames",
                 num_leaves, total_impr / max(frames, 1), frames)
        final = [i for i in range(len(leaves)) if i not in children]
        if cluster_thresh < 0:
            cluster_thresh = smallest if smallest < math.inf else 0.0
        cluster = self._merge_leaves(leaves, final, cluster_thresh, round_num_leaves)
        tree = self._event_map(leaves, stub_maps, children, cluster)
        log.info("build-tree: %d leaves after clustering (threshold %.1f)", tree.num_pdfs, cluster_thresh)
        return tree

    def _merge_leaves(self, leaves, final, thresh, round_to_8):
        """Bottom-up merging of leaves of the same root while the objf loss is below
        `thresh`, then (round_to_8) down to a multiple of 8 leaves; returns {leaf: cluster}."""
        target = None
        moments = {i: self.moments[leaves[i].rows].sum(0) for i in final}
        rep = {i: i for i in final}
        alive = set(final)
        heap = []

        def loss(a, b):
            return float(self._objf(moments[a]) + self._objf(moments[b]) - self._objf(moments[a] + moments[b]))

        by_group = {}
        for i in final:
            by_group.setdefault(leaves[i].group, []).append(i)
        for members in by_group.values():
            for a_i, a in enumerate(members):
                for b in members[a_i + 1:]:
                    heap.append((loss(a, b), a, b))
        heapq.heapify(heap)
        while heap:
            cost, a, b = heapq.heappop(heap)
            if a not in alive or b not in alive:
                continue
            if cost >= thresh:
                if target is None:  # threshold merging done: now round down to a multiple of 8
                    target = (len(alive) // 8) * 8 if round_to_8 else len(alive)
                if len(alive) <= max(target, 1):
                    break
            moments[a] = moments[a] + moments[b]
            alive.discard(b)
            for leaf, r in rep.items():
                if r == b:
                    rep[leaf] = a
            for c in alive:
                if c != a and leaves[c].group == leaves[a].group:
                    heapq.heappush(heap, (loss(a, c), min(a, c), max(a, c)))
        return rep

    def _event_map(self, leaves, stub_maps, children, cluster):
        pdf_of = {}

        def node(i):
            if i in children:
                col, yes_set, yes, no = children[i]
                key = PDF_CLASS if col == self.N else col
                return SplitEventMap(key, frozenset(yes_set), node(yes), node(no))
            r = cluster[i]
            if r not in pdf_of:
                pdf_of[r] = len(pdf_of)
            return ConstantEventMap(pdf_of[r])

        table = [None] * (max(p for ph, _, _ in self.roots for p in ph) + 1)
        for g, (phones, shared, _) in enumerate(self.roots):
            stub = node(stub_maps[g][0]) if shared else TableEventMap(PDF_CLASS, [node(i) for i in stub_maps[g]])
            for p in phones:
                table[p] = stub
        return ContextDependency(self.N, self.P, TableEventMap(self.P, table))


def read_roots(path):
    """phones/roots.int: [(phones, shared, split)], e.g. `shared split 1 2 3 4`."""
    roots = []
    for n, line in enumerate(open(path), 1):
        f = line.split()
        if not f:
            continue
        if len(f) < 3 or f[0] not in ("shared", "not-shared") or f[1] not in ("split", "not-split"):
            raise HdnnError(f"{path}:{n}: expected `shared|not-shared split|not-split <phones>`")
        roots.append(([int(p) for p in f[2:]], f[0] == "shared", f[1] == "split"))
    return roots


# ---------------------------------------------------------------- gmm-init-model, convert-ali

def init_model(tree, topo, stats, var_floor=VAR_FLOOR):
    """gmm-init-model: one Gaussian per leaf from the tree statistics of the events it maps;
    leaves without statistics get the global Gaussian. Returns (GmmSystem, pdf occupancies)."""
    tm = TransitionModel.from_tree(tree, topo)
    num_pdfs = tree.num_pdfs
    pdf = np.array([tree.to_pdf.map(stats.event_dict(i)) for i in range(len(stats.count))])
    if (pdf == None).any():  # noqa: E711
        raise HdnnError("gmm-init-model: the tree has no answer for some training events")
    pdf = pdf.astype(np.int64)
    count = np.bincount(pdf, stats.count, minlength=num_pdfs)
    x = np.zeros((num_pdfs, stats.x.shape[1]))
    x2 = np.zeros_like(x)
    np.add.at(x, pdf, stats.x)
    np.add.at(x2, pdf, stats.x2)
    empty = count == 0
    if empty.any():
        log.warning("gmm-init-model: %d pdfs with no stats (phones unseen in training)", int(empty.sum()))
        count[empty], x[empty], x2[empty] = stats.count.sum(), stats.x.sum(0), stats.x2.sum(0)
    mean = x / count[:, None]
    var = np.maximum(x2 / count[:, None] - mean * mean, var_floor)
    am = AmDiagGmm([DiagGmm.from_means_vars([1.0], m[None], v[None]) for m, v in zip(mean, var)])
    occs = np.where(empty, 0.0, count)
    return GmmSystem(tree, tm, am), occs


def convert_alignment(old_tm, new_tm, new_tree, ali, cache=None):
    """convert-ali: the same phone and HMM-state sequence as transition-ids of the new model."""
    cache = {} if cache is None else cache
    ali = np.asarray(ali)
    segs = split_to_phones(old_tm, ali)
    if not segs:
        return ali.copy()
    phones = np.array([p for p, _, _ in segs])
    n, N, P = len(phones), new_tree.N, new_tree.P
    windows = np.stack([np.where((np.arange(n) + j - P >= 0) & (np.arange(n) + j - P < n),
                                 phones[np.clip(np.arange(n) + j - P, 0, n - 1)], 0) for j in range(N)], 1)
    keys = np.concatenate([np.repeat(windows, [l for _, _, l in segs], axis=0),
                           old_tm.tid2hmm_state[ali][:, None], old_tm.tid2index[ali][:, None]], 1)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    if not hasattr(new_tm, "_tuple_index"):
        new_tm._tuple_index = {tuple(t): s + 1 for s, t in enumerate(new_tm.tuples.tolist())}
    new_ids = []
    for row in uniq.tolist():
        key = tuple(row)
        if key not in cache:
            cache[key] = _convert_tid(new_tm, new_tree, tuple(row[:N]), row[N], row[N + 1])
        new_ids.append(cache[key])
    return np.asarray(new_ids, dtype=np.int32)[inv.reshape(-1)]


def _convert_tid(tm, tree, window, hmm_state, index):
    phone = window[tree.P]
    state = tm.topo.topology_for_phone(phone)[hmm_state]
    pdfs = []
    for c in (state.forward_pdf_class, state.self_loop_pdf_class):
        pdf = tree.compute(window, c)
        if pdf is None:
            raise HdnnError(f"convert-ali: the tree has no pdf for phones {window} pdf-class {c}")
        pdfs.append(pdf)
    tstate = tm._tuple_index.get((phone, hmm_state, pdfs[0], pdfs[1]))
    if tstate is None:
        raise HdnnError(f"convert-ali: no transition-state for phone {phone} state {hmm_state}")
    return int(tm.state2id[tstate] + index)

"""Kaldi lattice archives (`lat.*.gz` of latgen-faster-mapped, make_denlats.sh), binary form.

A lattice in an archive is `key ` followed directly by an OpenFst binary VectorFst (no `\\0B`):
the FstHeader (magic, fst type "vector", arc type "lattice4" or "compactlattice44", version,
flags, properties, start, #states, #arcs), then per state its final weight, an int64 #arcs and
the arcs {int32 ilabel, int32 olabel, weight, int32 nextstate}. A LatticeWeight is two float32
costs (graph, acoustic); a CompactLatticeWeight adds an int32 count and that many transition-ids.

Both read into one `Lattice` of numpy arcs, a CompactLattice expanded as Kaldi's ConvertLattice
does (one arc per transition-id, the weight and word on the first). Text lattices are refused:
they keep about six significant digits, too few for sequence training.
"""
import struct
from dataclasses import dataclass

import numpy as np

from hdnn.errors import HdnnError
from hdnn.kaldi.io import read_table, write_table

FST_MAGIC = 2125659606
_HEAD = struct.Struct("<iiqqqq")  # version, flags, properties, start, #states, #arcs
_LAT_ARC = np.dtype([("ilabel", "<i4"), ("olabel", "<i4"), ("graph", "<f4"), ("acoustic", "<f4"),
                     ("nextstate", "<i4")])
_FINAL_NARCS = struct.Struct("<ffq")
_CLAT_ARC_HEAD = struct.Struct("<iiffi")


@dataclass
class Lattice:
    """A state-level lattice: arcs (src, dst, tid, word, graph cost, acoustic cost), with
    tid 0 for epsilon, and the final costs of each state (inf where not final)."""

    num_states: int
    start: int
    src: np.ndarray
    dst: np.ndarray
    tid: np.ndarray
    word: np.ndarray
    graph: np.ndarray
    acoustic: np.ndarray
    final_graph: np.ndarray
    final_acoustic: np.ndarray

    @property
    def num_arcs(self):
        return len(self.src)

    @property
    def finals(self):
        """States with a final weight."""
        return np.flatnonzero(np.isfinite(self.final_graph) & np.isfinite(self.final_acoustic))


def _string(f, what):
    n = f.read(4)
    if len(n) != 4:
        raise EOFError(f"truncated {what}")
    n = struct.unpack("<i", n)[0]
    if not 0 <= n < 256:
        raise ValueError(f"bad {what} length {n}")
    return f.read(n).decode("ascii", errors="replace")


def _exact(f, n):
    data = f.read(n)
    if len(data) != n:
        raise EOFError("truncated lattice")
    return data


def read_lattice(f, key, source):
    """One lattice from a binary stream positioned after its key."""
    magic = f.read(4)
    if len(magic) != 4 or struct.unpack("<i", magic)[0] != FST_MAGIC:
        raise HdnnError(f"{source}: lattice of {key} is not a binary OpenFst lattice (text "
                        f"lattices lose precision: write them with lattice-copy ark:- ark:OUT)")
    fst_type, arc_type = _string(f, "fst type"), _string(f, "arc type")
    _, flags, _, start, num_states, num_arcs = _HEAD.unpack(_exact(f, _HEAD.size))
    if fst_type != "vector" or arc_type not in ("lattice4", "compactlattice44"):
        raise HdnnError(f"{source}: lattice of {key} is a {fst_type}/{arc_type} FST, not a Kaldi "
                        f"Lattice or CompactLattice (vector/lattice4, vector/compactlattice44)")
    if flags & 3 or num_states < 0:
        raise HdnnError(f"{source}: lattice of {key} has symbol tables or no state count")
    read_state = _read_lattice_state if arc_type == "lattice4" else _read_compact_state
    arcs = Arcs()
    finals = np.full((num_states, 2), np.inf)
    for s in range(num_states):
        finals[s] = read_state(f, s, arcs)
    return arcs.lattice(num_states, start, finals, key, source)


def _read_lattice_state(f, s, arcs):
    g, a, narcs = _FINAL_NARCS.unpack(_exact(f, _FINAL_NARCS.size))
    rec = np.frombuffer(_exact(f, narcs * _LAT_ARC.itemsize), dtype=_LAT_ARC)
    arcs.extend(s, rec["nextstate"], rec["ilabel"], rec["olabel"], rec["graph"], rec["acoustic"])
    return g, a


def _read_compact_state(f, s, arcs):
    g, a = struct.unpack("<ff", _exact(f, 8))
    final_tids = _tid_string(f)
    if final_tids.size and np.isfinite(g):
        # a final weight with transition-ids: a chain to a new final state (ConvertLattice)
        arcs.chain(s, None, final_tids, 0, g, a)
        g, a = np.inf, np.inf
    narcs = struct.unpack("<q", _exact(f, 8))[0]
    for _ in range(narcs):
        ilabel, olabel, ag, aa, n = _CLAT_ARC_HEAD.unpack(_exact(f, _CLAT_ARC_HEAD.size))
        tids = np.frombuffer(_exact(f, 4 * n), dtype="<i4") if n else np.empty(0, np.int32)
        nextstate = struct.unpack("<i", _exact(f, 4))[0]
        arcs.chain(s, nextstate, tids, olabel, ag, aa)
    return g, a


def _tid_string(f):
    n = struct.unpack("<i", _exact(f, 4))[0]
    if n < 0:
        raise ValueError(f"bad transition-id string length {n}")
    return np.frombuffer(_exact(f, 4 * n), dtype="<i4") if n else np.empty(0, np.int32)


class Arcs:
    """Arc lists under construction. The states that expanding CompactLattice arcs adds are
    numbered -1, -2, ... while reading, then after the lattice's own states."""

    def __init__(self):
        self.cols = [[] for _ in range(6)]  # src, dst, tid, word, graph, acoustic
        self.extra = 0
        self.extra_finals = []

    def extend(self, src, dst, tid, word, graph, acoustic):
        src = np.broadcast_to(src, np.shape(dst))
        for col, v in zip(self.cols, (src, dst, tid, word, graph, acoustic)):
            col.append(np.asarray(v))

    def chain(self, s, dst, tids, word, graph, acoustic):
        """An arc s -> dst carrying `tids` (dst None: ending in a new final state): one arc
        per transition-id, or one epsilon arc, the word and weight on the first."""
        n = max(len(tids), 1)
        inner = list(range(-self.extra - 1, -self.extra - (n if dst is None else n - 1) - 1, -1))
        self.extra += len(inner)
        states = np.array([s] + inner + ([] if dst is None else [dst]))
        rest = np.zeros(n - 1)
        self.extend(states[:-1], states[1:], tids if len(tids) else np.zeros(1, np.int32),
                    np.r_[word, rest], np.r_[graph, rest], np.r_[acoustic, rest])
        if dst is None:
            self.extra_finals.append(int(states[-1]))

    def lattice(self, num_states, start, finals, key, source):
        if self.cols[0]:
            src, dst, tid, word, graph, acoustic = (np.concatenate(c) for c in self.cols)
        else:
            src = dst = tid = word = np.empty(0, np.int64)
            graph = acoustic = np.empty(0)
        # extra states -k become num_states + k - 1
        src, dst = (np.where(x < 0, num_states - x - 1, x).astype(np.int64) for x in (src, dst))
        total = num_states + self.extra
        if len(finals) < total:
            finals = np.vstack([finals, np.full((total - len(finals), 2), np.inf)])
        for state in self.extra_finals:
            finals[num_states - state - 1] = 0.0
        if len(dst) and (dst.max() >= total or dst.min() < 0) or not 0 <= start < max(total, 1):
            raise HdnnError(f"{source}: lattice of {key} has an arc or start state out of range")
        return Lattice(total, int(start), src, dst, tid.astype(np.int32), word.astype(np.int32),
                       graph.astype(np.float64), acoustic.astype(np.float64),
                       finals[:, 0].copy(), finals[:, 1].copy())


def read_lattices(rspecifier):
    """Iterate (utt, Lattice) over a Kaldi table of binary Lattices or CompactLattices
    (`ark:gunzip -c lat.1.gz |`, `scp:lat.scp`, ...)."""
    return read_table(rspecifier, read_lattice)


def write_lattice(f, lat):
    """One Lattice (vector/lattice4) to a binary stream, after its key."""
    order = np.argsort(lat.src, kind="stable")
    f.write(struct.pack("<i", FST_MAGIC))
    for s in ("vector", "lattice4"):
        f.write(struct.pack("<i", len(s)) + s.encode())
    f.write(_HEAD.pack(2, 0, 0, lat.start, lat.num_states, lat.num_arcs))
    rec = np.empty(lat.num_arcs, dtype=_LAT_ARC)
    rec["ilabel"], rec["olabel"], rec["nextstate"] = lat.tid[order], lat.word[order], lat.dst[order]
    rec["graph"], rec["acoustic"] = lat.graph[order], lat.acoustic[order]
    bounds = np.searchsorted(lat.src[order], np.arange(lat.num_states + 1))
    for s in range(lat.num_states):
        lo, hi = bounds[s], bounds[s + 1]
        f.write(_FINAL_NARCS.pack(lat.final_graph[s], lat.final_acoustic[s], hi - lo))
        f.write(rec[lo:hi].tobytes())


def write_lattices(wspecifier, items):
    """Write (utt, Lattice) pairs as a binary Kaldi Lattice table; returns the count."""
    return write_table(wspecifier, items, write_lattice)


def _out_arcs(by_src, bounds, states):
    """Indices (into by_src order) of the arcs leaving `states`, concatenated."""
    starts, counts = bounds[states], bounds[states + 1] - bounds[states]
    offsets = np.repeat(starts - np.cumsum(np.r_[0, counts[:-1]]), counts)
    return by_src[offsets + np.arange(int(counts.sum()))]


def _layers(lat):
    """The states in layers of Kahn's algorithm (each layer's states have all their
    predecessors in earlier layers); raises on a cycle or an unreachable state."""
    indegree = np.bincount(lat.dst, minlength=lat.num_states)
    if indegree[lat.start]:
        raise HdnnError("lattice has an arc into its start state")
    by_src = np.argsort(lat.src, kind="stable")
    bounds = np.searchsorted(lat.src[by_src], np.arange(lat.num_states + 1))
    frontier, seen, layers = np.array([lat.start]), 0, []
    while frontier.size:
        out = _out_arcs(by_src, bounds, frontier)
        layers.append((frontier, out))
        seen += frontier.size
        dst, counts = np.unique(lat.dst[out], return_counts=True)
        indegree[dst] -= counts
        frontier = dst[indegree[dst] == 0]
    if seen != lat.num_states:
        raise HdnnError("lattice has a cycle or a state not reachable from the start")
    return layers


def topological_levels(lat):
    """The longest-path level of every state from the start: every arc goes from a lower to a
    higher level."""
    level = np.empty(lat.num_states, np.int64)
    for depth, (states, _) in enumerate(_layers(lat)):
        level[states] = depth
    return level


def state_times(lat):
    """Kaldi's LatticeStateTimes: the frame of each state (transition-id arcs advance one
    frame, epsilons none), and the number of frames. Raises if two paths disagree."""
    times = np.full(lat.num_states, -1, np.int64)
    times[lat.start] = 0
    step = (lat.tid != 0).astype(np.int64)
    for _, out in _layers(lat):
        t, d = times[lat.src[out]] + step[out], lat.dst[out]
        known = times[d] >= 0
        order = np.argsort(d, kind="stable")
        ds, ts = d[order], t[order]
        if np.any((ds[1:] == ds[:-1]) & (ts[1:] != ts[:-1])) or np.any(times[d[known]] != t[known]):
            raise HdnnError("lattice is inconsistent: a state is reached at two different frames")
        times[d] = t
    finals = lat.finals
    num_frames = int(times[finals].max()) if len(finals) else 0
    if len(finals) and np.any(times[finals] != num_frames):
        raise HdnnError("lattice is inconsistent: final states at different frames")
    return times, num_frames

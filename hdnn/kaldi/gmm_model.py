"""Kaldi GMM acoustic models (`final.mdl`): HmmTopology, TransitionModel and AmDiagGmm.

A model file is ``\\0B`` + TransitionModel + AmDiagGmm, each in Kaldi's binary layout
(kaldi/src/hmm/transition-model.cc, hmm-topology.cc, gmm/diag-gmm.cc, am-diag-gmm.cc).
Transition-ids are 1-based; index 0 of every per-transition-id array is unused.
"""
import math
import re
from dataclasses import dataclass, field

import numpy as np

from hdnn.errors import HdnnError
from hdnn.kaldi.binary import KaldiBinaryReader, KaldiBinaryWriter

NO_PDF = -1


@dataclass
class HmmState:
    forward_pdf_class: int
    self_loop_pdf_class: int
    transitions: list  # [(destination state, probability)]


@dataclass
class HmmTopology:
    """Kaldi's HmmTopology: one list of HmmStates per entry; `phone2idx[phone]` picks the entry."""

    phones: list
    phone2idx: list
    entries: list

    @property
    def is_hmm(self):
        return all(s.forward_pdf_class == s.self_loop_pdf_class for e in self.entries for s in e)

    def topology_for_phone(self, phone):
        if not 0 < phone < len(self.phone2idx) or self.phone2idx[phone] < 0:
            raise HdnnError(f"phone {phone} is not in the topology")
        return self.entries[self.phone2idx[phone]]

    def num_pdf_classes(self, phone):
        classes = [c for s in self.topology_for_phone(phone)
                   for c in (s.forward_pdf_class, s.self_loop_pdf_class) if c != NO_PDF]
        return 1 + max(classes)

    @classmethod
    def from_text(cls, text, source="topo"):
        """Parse the text topology of lang/topo."""
        toks = text.split()
        if not toks or toks[0] != "<Topology>":
            raise HdnnError(f"{source}: expected <Topology>")
        phone2idx, entries, i = {}, [], 1
        try:
            while toks[i] != "</Topology>":
                assert toks[i] == "<TopologyEntry>" and toks[i + 1] == "<ForPhones>"
                j = toks.index("</ForPhones>", i)
                for p in toks[i + 2:j]:
                    if int(p) in phone2idx:
                        raise HdnnError(f"{source}: phone {p} appears in two topology entries")
                    phone2idx[int(p)] = len(entries)
                i, states = j + 1, []
                while toks[i] == "<State>":
                    assert int(toks[i + 1]) == len(states), "states must be numbered from 0 in order"
                    i += 2
                    fwd = loop = NO_PDF
                    if toks[i] == "<PdfClass>":
                        fwd = loop = int(toks[i + 1])
                        i += 2
                    elif toks[i] == "<ForwardPdfClass>":
                        assert toks[i + 2] == "<SelfLoopPdfClass>"
                        fwd, loop = int(toks[i + 1]), int(toks[i + 3])
                        i += 4
                    trans = []
                    while toks[i] == "<Transition>":
                        trans.append((int(toks[i + 1]), float(toks[i + 2])))
                        i += 3
                    assert toks[i] == "</State>", f"expected </State>, got {toks[i]}"
                    states.append(HmmState(fwd, loop, trans))
                    i += 1
                assert toks[i] == "</TopologyEntry>", f"expected </TopologyEntry>, got {toks[i]}"
                entries.append(states)
                i += 1
        except (AssertionError, IndexError, ValueError) as e:
            raise HdnnError(f"{source}: bad topology near token {i}: {e}") from None
        table = [-1] * (1 + max(phone2idx))
        for p, e in phone2idx.items():
            table[p] = e
        return cls(sorted(phone2idx), table, entries)

    def to_text(self):
        """The text form of lang/topo (what HmmTopology::Write writes in text mode)."""
        lines = ["<Topology>"]
        for e, states in enumerate(self.entries):
            phones = " ".join(str(p) for p, i in enumerate(self.phone2idx) if i == e)
            lines += ["<TopologyEntry>", "<ForPhones>", phones, "</ForPhones>"]
            for k, s in enumerate(states):
                pdf = ""
                if s.forward_pdf_class != NO_PDF:
                    pdf = (f" <PdfClass> {s.forward_pdf_class}" if self.is_hmm else
                           f" <ForwardPdfClass> {s.forward_pdf_class} <SelfLoopPdfClass> {s.self_loop_pdf_class}")
                trans = "".join(f" <Transition> {d} {p:g}" for d, p in s.transitions)
                lines.append(f"<State> {k}{pdf}{trans} </State>")
            lines.append("</TopologyEntry>")
        lines.append("</Topology>")
        return "\n".join(lines) + "\n"

    def write(self, w):
        is_hmm = self.is_hmm
        w.token("<Topology>")
        w.int_vector(self.phones)
        w.int_vector(self.phone2idx)
        if not is_hmm:
            w.int32(-1)
        w.int32(len(self.entries))
        for states in self.entries:
            w.int32(len(states))
            for s in states:
                w.int32(s.forward_pdf_class)
                if not is_hmm:
                    w.int32(s.self_loop_pdf_class)
                w.int32(len(s.transitions))
                for dst, prob in s.transitions:
                    w.int32(dst)
                    w.float(prob)
        w.token("</Topology>")

    @classmethod
    def read(cls, r):
        r.expect("<Topology>")
        phones = [int(p) for p in r.int_vector()]
        phone2idx = [int(i) for i in r.int_vector()]
        n, is_hmm = r.int32(), True
        if n == -1:
            n, is_hmm = r.int32(), False
        entries = []
        for _ in range(n):
            states = []
            for _ in range(r.int32()):
                fwd = r.int32()
                loop = fwd if is_hmm else r.int32()
                trans = [(r.int32(), r.float()) for _ in range(r.int32())]
                states.append(HmmState(fwd, loop, trans))
            entries.append(states)
        r.expect("</Topology>")
        return cls(phones, phone2idx, entries)


class TransitionModel:
    """Kaldi's TransitionModel: tuples (phone, hmm-state, forward-pdf, self-loop-pdf), one per
    transition-state, and the log-probabilities of the transition-ids leaving them.

    Derived arrays (all indexed by transition-id, index 0 unused): `tid2pdf`, `tid2phone`,
    `tid2state` (transition-state), `tid2hmm_state`, `is_self_loop`; `state2id[s]` is the first
    transition-id of transition-state s (1-based; one extra entry past the end).
    """

    def __init__(self, topo, tuples, log_probs=None):
        self.topo = topo
        self.tuples = np.asarray(tuples, dtype=np.int32).reshape(-1, 4)
        self._compute_derived()
        if log_probs is None:
            log_probs = self._initial_log_probs()
        self.log_probs = np.asarray(log_probs, dtype=np.float32)
        if len(self.log_probs) != self.num_transition_ids + 1:
            raise HdnnError(f"transition model has {self.num_transition_ids} transition-ids "
                            f"but {len(self.log_probs) - 1} log-probs")

    @classmethod
    def from_tree(cls, tree, topo):
        """The TransitionModel(ctx_dep, topo) constructor: all (phone, state, pdf) tuples, sorted."""
        if not topo.is_hmm:
            raise HdnnError("only HMM topologies (one pdf-class per state) are supported")
        tuples = set()
        for phone in topo.phones:
            states = topo.topology_for_phone(phone)
            for k, s in enumerate(states):
                if s.forward_pdf_class == NO_PDF:
                    continue
                pdfs = tree.pdfs_of(phone, s.forward_pdf_class)
                if not pdfs:
                    raise HdnnError(f"the tree has no pdf for phone {phone} pdf-class {s.forward_pdf_class}")
                tuples.update((phone, k, pdf, pdf) for pdf in pdfs)
        return cls(topo, sorted(tuples))

    def _compute_derived(self):
        ntrans = [len(self.topo.topology_for_phone(p)[h].transitions) for p, h, _, _ in self.tuples]
        self.state2id = np.concatenate([[0, 1], 1 + np.cumsum(ntrans)]).astype(np.int32)
        n_ids = int(self.state2id[-1]) - 1
        self.num_transition_ids = n_ids
        tstate = np.repeat(np.arange(1, len(self.tuples) + 1), ntrans)
        index = np.arange(1, n_ids + 1) - self.state2id[tstate]
        tup = self.tuples[tstate - 1]
        dest = np.array([self.topo.topology_for_phone(p)[h].transitions[i][0]
                         for (p, h, _, _), i in zip(tup, index)], dtype=np.int32)
        self.is_self_loop = np.concatenate([[False], dest == tup[:, 1]])
        self.tid2state = np.concatenate([[0], tstate]).astype(np.int32)
        self.tid2phone = np.concatenate([[0], tup[:, 0]]).astype(np.int32)
        self.tid2hmm_state = np.concatenate([[-1], tup[:, 1]]).astype(np.int32)
        self.tid2pdf = np.concatenate([[-1], np.where(dest == tup[:, 1], tup[:, 3], tup[:, 2])]).astype(np.int32)
        self.tid2index = np.concatenate([[-1], index]).astype(np.int32)
        self.num_pdfs = int(self.tuples[:, 2:].max()) + 1 if len(self.tuples) else 0

    def _initial_log_probs(self):
        probs = [self.topo.topology_for_phone(self.tid2phone[t])[self.tid2hmm_state[t]]
                 .transitions[self.tid2index[t]][1] for t in range(1, self.num_transition_ids + 1)]
        return np.log(np.array([1.0] + probs, dtype=np.float32))

    @property
    def num_transition_states(self):
        return len(self.tuples)

    @property
    def phones(self):
        return list(self.topo.phones)

    @property
    def tid2pdf_class(self):
        """The pdf-class of each transition-id (forward or self-loop, as it emits)."""
        if getattr(self, "_tid2pdf_class", None) is None:
            states = [self.topo.topology_for_phone(p)[h] for p, h, _, _ in self.tuples]
            fwd = np.array([-1] + [s.forward_pdf_class for s in states], dtype=np.int32)
            loop = np.array([-1] + [s.self_loop_pdf_class for s in states], dtype=np.int32)
            self._tid2pdf_class = np.where(self.is_self_loop, loop[self.tid2state], fwd[self.tid2state])
        return self._tid2pdf_class

    def phone_starts(self, tids):
        """Boolean mask of the frames that start a phone, for a reordered alignment:
        the frame's tid leaves hmm-state 0 and is not a self-loop (Kaldi's SplitToPhonesReordered
        logic for the usual left-to-right topologies)."""
        tids = np.asarray(tids)
        starts = (self.tid2hmm_state[tids] == 0) & ~self.is_self_loop[tids]
        if len(tids):
            starts[0] = True
        return starts

    def write(self, w):
        is_hmm = self.topo.is_hmm
        w.token("<TransitionModel>")
        self.topo.write(w)
        w.token("<Triples>" if is_hmm else "<Tuples>")
        w.int32(len(self.tuples))
        for phone, hmm_state, fwd, loop in self.tuples:
            w.int32(phone)
            w.int32(hmm_state)
            w.int32(fwd)
            if not is_hmm:
                w.int32(loop)
        w.token("</Triples>" if is_hmm else "</Tuples>")
        w.token("<LogProbs>")
        w.vector(self.log_probs)
        w.token("</LogProbs>")
        w.token("</TransitionModel>")

    @classmethod
    def read(cls, r):
        r.expect("<TransitionModel>")
        topo = HmmTopology.read(r)
        tok = r.token()
        if tok not in ("<Triples>", "<Tuples>"):
            raise r.error(f"expected <Triples> or <Tuples>, got {tok!r}")
        tuples = []
        for _ in range(r.int32()):
            phone, hmm_state, fwd = r.int32(), r.int32(), r.int32()
            tuples.append((phone, hmm_state, fwd, r.int32() if tok == "<Tuples>" else fwd))
        r.expect("</" + tok[1:])
        r.expect("<LogProbs>")
        log_probs = r.vector()
        r.expect("</LogProbs>")
        r.expect("</TransitionModel>")
        return cls(topo, tuples, log_probs)


@dataclass
class DiagGmm:
    """One diagonal-covariance GMM in Kaldi's parameterisation (means times inverse variances)."""

    weights: np.ndarray        # [M]
    means_invvars: np.ndarray  # [M, D]
    inv_vars: np.ndarray       # [M, D]
    gconsts: np.ndarray = field(default=None, repr=False)

    def __post_init__(self):
        self.weights = np.asarray(self.weights, dtype=np.float32)
        self.means_invvars = np.asarray(self.means_invvars, dtype=np.float32).reshape(len(self.weights), -1)
        self.inv_vars = np.asarray(self.inv_vars, dtype=np.float32).reshape(self.means_invvars.shape)
        self.gconsts = self.compute_gconsts()

    @classmethod
    def from_means_vars(cls, weights, means, variances):
        inv_vars = 1.0 / np.asarray(variances, dtype=np.float64)
        return cls(weights, np.asarray(means, dtype=np.float64) * inv_vars, inv_vars)

    @property
    def num_gauss(self):
        return len(self.weights)

    @property
    def dim(self):
        return self.means_invvars.shape[1]

    @property
    def means(self):
        return self.means_invvars / self.inv_vars

    @property
    def variances(self):
        return 1.0 / self.inv_vars

    def compute_gconsts(self):
        """Log-likelihood of each component at x = 0, as DiagGmm::ComputeGconsts."""
        iv = self.inv_vars.astype(np.float64)
        mi = self.means_invvars.astype(np.float64)
        with np.errstate(divide="ignore"):
            gc = (np.log(self.weights.astype(np.float64)) - 0.5 * math.log(2 * math.pi) * self.dim
                  + 0.5 * np.log(iv).sum(1) - 0.5 * (mi * mi / iv).sum(1))
        if np.isnan(gc).any():
            raise HdnnError("not a number in a GMM's gconsts (bad variances or weights)")
        return np.where(np.isinf(gc), -np.inf, gc).astype(np.float32)

    def component_loglikes(self, feats):
        """[T, M] per-component log-likelihoods (weights included) of the rows of `feats`."""
        x = np.asarray(feats, dtype=np.float64)
        return (self.gconsts + x @ self.means_invvars.T.astype(np.float64)
                - 0.5 * (x * x) @ self.inv_vars.T.astype(np.float64))

    def write(self, w):
        w.token("<DiagGMM>")
        w.token("<GCONSTS>")
        w.vector(self.gconsts)
        w.token("<WEIGHTS>")
        w.vector(self.weights)
        w.token("<MEANS_INVVARS>")
        w.matrix(self.means_invvars)
        w.token("<INV_VARS>")
        w.matrix(self.inv_vars)
        w.token("</DiagGMM>")

    @classmethod
    def read(cls, r):
        tok = r.token()
        if tok not in ("<DiagGMM>", "<DiagGMMBegin>"):
            raise r.error(f"expected <DiagGMM>, got {tok!r}")
        tok = r.token()
        if tok == "<GCONSTS>":
            r.vector()  # recomputed, as Kaldi does
            tok = r.token()
        if tok != "<WEIGHTS>":
            raise r.error(f"expected <WEIGHTS>, got {tok!r}")
        weights = r.vector()
        r.expect("<MEANS_INVVARS>")
        means_invvars = r.matrix()
        r.expect("<INV_VARS>")
        inv_vars = r.matrix()
        tok = r.token()
        if tok not in ("</DiagGMM>", "<DiagGMMEnd>"):
            raise r.error(f"expected </DiagGMM>, got {tok!r}")
        return cls(weights, means_invvars, inv_vars)


@dataclass
class AmDiagGmm:
    """Kaldi's AmDiagGmm: one DiagGmm per pdf."""

    pdfs: list

    @property
    def num_pdfs(self):
        return len(self.pdfs)

    @property
    def dim(self):
        return self.pdfs[0].dim if self.pdfs else 0

    @property
    def num_gauss(self):
        return sum(g.num_gauss for g in self.pdfs)

    def write(self, w):
        w.token("<DIMENSION>")
        w.int32(self.dim)
        w.token("<NUMPDFS>")
        w.int32(self.num_pdfs)
        for g in self.pdfs:
            g.write(w)

    @classmethod
    def read(cls, r):
        r.expect("<DIMENSION>")
        dim = r.int32()
        r.expect("<NUMPDFS>")
        n = r.int32()
        pdfs = [DiagGmm.read(r) for _ in range(n)]
        bad = [i for i, g in enumerate(pdfs) if g.dim != dim]
        if bad:
            raise r.error(f"pdf {bad[0]} has dimension {pdfs[bad[0]].dim}, expected {dim}")
        return cls(pdfs)


def read_transition_model(path):
    """The TransitionModel at the start of a Kaldi model file (final.mdl, or any nnet model)."""
    return TransitionModel.read(KaldiBinaryReader.open(path))


def read_gmm_model(path):
    """(TransitionModel, AmDiagGmm) from a Kaldi GMM model file such as final.mdl."""
    r = KaldiBinaryReader.open(path)
    tm = TransitionModel.read(r)
    am = AmDiagGmm.read(r)
    if not r.at_end():
        raise r.error("trailing data after the acoustic model")
    if am.num_pdfs < tm.num_pdfs:
        raise HdnnError(f"{path}: transition model has {tm.num_pdfs} pdfs, acoustic model {am.num_pdfs}")
    return tm, am


def gmm_model_bytes(tm, am):
    w = KaldiBinaryWriter()
    tm.write(w)
    am.write(w)
    return w.getvalue()


def write_gmm_model(path, tm, am):
    """Write a Kaldi binary GMM model file (TransitionModel + AmDiagGmm), atomically."""
    w = KaldiBinaryWriter()
    tm.write(w)
    am.write(w)
    w.save(path)


def write_kaldi_vector(path, v, dtype=np.float32):
    """A Kaldi binary Vector file, e.g. the state occupancies `final.occs`."""
    w = KaldiBinaryWriter()
    w.vector(v, dtype=dtype)
    w.save(path)


def read_kaldi_vector(path):
    return KaldiBinaryReader.open(path).vector()


_PHONE_LINE = re.compile(r"^(\S+)\s+(\d+)$")


def read_phone_table(path):
    """phones.txt as {id: symbol}."""
    table = {}
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        m = _PHONE_LINE.match(line.strip())
        if not m:
            raise HdnnError(f"{path}:{n}: expected '<symbol> <id>', got {line.strip()!r}")
        table[int(m.group(2))] = m.group(1)
    return table

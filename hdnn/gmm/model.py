"""GMM systems (tree + final.mdl) as kaldi-hmm-gmm objects, and back.

The wheel has no readers or writers for Kaldi's `tree` and model files: the formats live in
hdnn.kaldi.tree / hdnn.kaldi.gmm_model, and this module converts between those objects and
the wheel's C++ ContextDependency, HmmTopology, TransitionModel and AmDiagGmm.
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdnn.errors import HdnnError
from hdnn.gmm.wheels import khg
from hdnn.kaldi.gmm_model import (AmDiagGmm, DiagGmm, TransitionModel, read_gmm_model,
                                  write_gmm_model)
from hdnn.kaldi.tree import read_tree, write_tree


def khg_tree(tree):
    """A khg.ContextDependency equal to `tree` (loaded from its Kaldi binary form)."""
    ctx = khg.ContextDependency.__new__(khg.ContextDependency)
    data = np.frombuffer(tree.to_bytes(header=False), dtype=np.int8)
    ctx.__setstate__((data.tolist(),))
    return ctx


def khg_topology(topo):
    t = khg.HmmTopology()
    t.read(topo.to_text())
    return t


def khg_transition_model(ctx, tm):
    """A khg.TransitionModel with the tuples and transition probabilities of `tm`."""
    ktm = khg.TransitionModel(ctx_dep=ctx, hmm_topo=khg_topology(tm.topo))
    state = list(ktm.__getstate__())
    kpdf = np.asarray(ktm.transition_id_to_pdf_array(), dtype=np.int64)
    if len(kpdf) != len(tm.tid2pdf) or not np.array_equal(kpdf[1:], tm.tid2pdf[1:]):
        raise HdnnError("the transition model does not match its tree (rebuild it with this tree)")
    log_probs = tm.log_probs.astype(np.float64)
    non_self_loop = np.zeros(tm.num_transition_states + 1)
    loops = np.flatnonzero(tm.is_self_loop)
    with np.errstate(divide="ignore"):
        non_self_loop[tm.tid2state[loops]] = np.log(np.maximum(1.0 - np.exp(log_probs[loops]), 1e-10))
    state[6], state[7] = log_probs.tolist(), non_self_loop.tolist()
    out = khg.TransitionModel.__new__(khg.TransitionModel)
    out.__setstate__(tuple(state))
    return out


def khg_log_probs(ktm):
    """The transition log-probabilities (index 0 unused) of a khg.TransitionModel."""
    return np.asarray(ktm.__getstate__()[6], dtype=np.float32)


def khg_am(am):
    kam = khg.AmDiagGmm()
    for g in am.pdfs:
        kg = khg.DiagGmm.__new__(khg.DiagGmm)
        kg.__setstate__((g.weights, g.inv_vars, g.means_invvars))  # the pickled member order
        kg.compute_gconsts()
        kam.add_pdf(kg)
    return kam


def am_from_khg(kam):
    pdfs = []
    for i in range(kam.num_pdfs):
        g = kam.get_pdf(i)
        pdfs.append(DiagGmm(np.array(g.weights), np.array(g.means_invvars), np.array(g.inv_vars)))
    return AmDiagGmm(pdfs)


@dataclass
class GmmSystem:
    """A GMM-HMM system: tree, transition model and acoustic model (our objects), with the
    equivalent khg objects built on demand by `khg()` for alignment and decoding."""

    tree: object
    tm: TransitionModel
    am: AmDiagGmm
    _khg: tuple = field(default=None, repr=False)

    def khg(self):
        """(khg.ContextDependency, khg.TransitionModel, khg.AmDiagGmm), built once."""
        if self._khg is None:
            ctx = khg_tree(self.tree)
            self._khg = (ctx, khg_transition_model(ctx, self.tm), khg_am(self.am))
        return self._khg

    def replaced(self, tm=None, am=None):
        """A copy with a new transition and/or acoustic model (same tree)."""
        return GmmSystem(self.tree, tm or self.tm, am or self.am)

    @classmethod
    def load(cls, model_dir, model="final.mdl"):
        model_dir = Path(model_dir)
        for name in ("tree", model):
            if not (model_dir / name).exists():
                raise HdnnError(f"{model_dir / name}: no such file")
        tree = read_tree(model_dir / "tree")
        tm, am = read_gmm_model(model_dir / model)
        if tm.num_pdfs > tree.num_pdfs:
            raise HdnnError(f"{model_dir / model}: {tm.num_pdfs} pdfs but the tree has {tree.num_pdfs}")
        return cls(tree, tm, am)

    def save(self, model_dir, model="final.mdl", tree=True):
        model_dir = Path(model_dir)
        if tree:
            write_tree(model_dir / "tree", self.tree)
        write_gmm_model(model_dir / model, self.tm, self.am)


def load_gmm_system(model_dir, model="final.mdl"):
    """(khg.ContextDependency, khg.TransitionModel, khg.AmDiagGmm) from <model_dir>/tree and
    <model_dir>/<model>, for graph building (mkgraph) and decoding. The HMM topology is the
    one stored in the model (the lang dir's topo when the model was trained)."""
    return GmmSystem.load(model_dir, model).khg()

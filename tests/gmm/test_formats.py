"""Kaldi binary formats: basic types, trees and GMM models, against kaldi-hmm-gmm and real Kaldi."""
import re
import struct

import numpy as np
import pytest

from hdnn.errors import HdnnError
from hdnn.kaldi.binary import KaldiBinaryReader, KaldiBinaryWriter
from hdnn.kaldi.gmm_model import (AmDiagGmm, DiagGmm, HmmTopology, TransitionModel, gmm_model_bytes,
                                  read_gmm_model, read_transition_model, write_gmm_model)
from hdnn.kaldi.tree import (ConstantEventMap, ContextDependency, SplitEventMap, TableEventMap,
                             monophone_tree, read_tree, write_tree)

TOPO = """<Topology>
<TopologyEntry>
<ForPhones>
2 3 4 5 6
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.75 <Transition> 2 0.25 </State>
<State> 2 <PdfClass> 2 <Transition> 2 0.75 <Transition> 3 0.25 </State>
<State> 3 </State>
</TopologyEntry>
<TopologyEntry>
<ForPhones>
1
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.25 <Transition> 1 0.25 <Transition> 2 0.25 <Transition> 3 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.25 <Transition> 2 0.25 <Transition> 3 0.25 <Transition> 4 0.25 </State>
<State> 2 <PdfClass> 2 <Transition> 1 0.25 <Transition> 2 0.25 <Transition> 3 0.25 <Transition> 4 0.25 </State>
<State> 3 <PdfClass> 3 <Transition> 1 0.25 <Transition> 2 0.25 <Transition> 3 0.25 <Transition> 4 0.25 </State>
<State> 4 <PdfClass> 4 <Transition> 4 0.75 <Transition> 5 0.25 </State>
<State> 5 </State>
</TopologyEntry>
</Topology>
"""
SETS = [[1], [2, 3], [4], [5], [6]]


def topo():
    return HmmTopology.from_text(TOPO)


def mono_tree():
    t = topo()
    return monophone_tree(SETS, {p: t.num_pdf_classes(p) for p in t.phones})


def triphone_tree():
    """A small hand-made triphone tree: splits on the left phone and the pdf-class."""
    sil = TableEventMap(-1, [ConstantEventMap(i) for i in range(5)])
    speech = SplitEventMap(-1, frozenset([0]), SplitEventMap(0, frozenset([1, 2]), ConstantEventMap(5),
                                                             ConstantEventMap(6)),
                           SplitEventMap(-1, frozenset([0, 1]), ConstantEventMap(7), ConstantEventMap(8)))
    return ContextDependency(3, 1, TableEventMap(1, [None, sil] + [speech] * 5))


def random_model(tree, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    tm = TransitionModel.from_tree(tree, topo())
    tm.log_probs[1:] = np.log(rng.uniform(0.05, 0.95, tm.num_transition_ids))
    pdfs = []
    for _ in range(tree.num_pdfs):
        m = int(rng.integers(1, 4))
        pdfs.append(DiagGmm.from_means_vars(rng.dirichlet(np.ones(m)), rng.normal(size=(m, dim)),
                                            rng.uniform(0.2, 3.0, size=(m, dim))))
    return tm, AmDiagGmm(pdfs)


# ---------------------------------------------------------------- basic types

def test_basic_types_round_trip_and_layout():
    w = KaldiBinaryWriter()
    w.token("<Tok>")
    w.int32(-7)
    w.uint32(7)
    w.float(0.5)
    w.double(-0.25)
    w.bool(True)
    w.int_vector([3, 1, 2])
    w.vector(np.arange(3, dtype=np.float32))
    w.vector(np.arange(2, dtype=np.float64), dtype=np.float64)
    w.matrix(np.arange(6).reshape(2, 3))
    data = w.getvalue()
    assert data[:2] == b"\0B"
    assert data[2:8] == b"<Tok> "
    assert data[8:13] == b"\x04" + struct.pack("<i", -7)
    assert data[13:18] == b"\xfc" + struct.pack("<I", 7)
    r = KaldiBinaryReader(data, "x", 2)
    assert r.token() == "<Tok>"
    assert (r.int32(), r.uint32(), r.float(), r.float(), r.bool()) == (-7, 7, 0.5, -0.25, True)
    assert r.int_vector().tolist() == [3, 1, 2]
    v = r.vector()
    assert v.dtype == np.float32 and v.tolist() == [0, 1, 2]
    assert r.vector().dtype == np.float64
    assert r.matrix().tolist() == [[0, 1, 2], [3, 4, 5]]
    assert r.at_end()


def test_reader_errors_name_file_and_offset(tmp_path):
    r = KaldiBinaryReader(b"\0B<A> \x04\x01\x00", "model.mdl", 2)
    with pytest.raises(HdnnError, match=r"model\.mdl: expected token '<B>', got '<A>' at byte 2"):
        r.expect("<B>")
    r.token()
    with pytest.raises(HdnnError, match=r"model\.mdl: unexpected end of file"):
        r.int32()
    (tmp_path / "text.mdl").write_text("<TransitionModel> <Topology>")
    with pytest.raises(HdnnError, match="text.mdl: not a Kaldi binary file"):
        read_transition_model(tmp_path / "text.mdl")
    with pytest.raises(HdnnError, match="nothere.mdl: cannot read"):
        read_gmm_model(tmp_path / "nothere.mdl")


# ---------------------------------------------------------------- trees

@pytest.mark.parametrize("make", [mono_tree, triphone_tree])
def test_tree_round_trip(tmp_path, make):
    tree = make()
    write_tree(tmp_path / "tree", tree)
    back = read_tree(tmp_path / "tree")
    assert back.to_bytes() == tree.to_bytes() == (tmp_path / "tree").read_bytes()
    assert back.num_pdfs == tree.num_pdfs


def test_tree_lookup():
    tree = triphone_tree()
    assert tree.compute([1, 3, 4], 0) == 5 and tree.compute([4, 3, 4], 0) == 6
    assert tree.compute([0, 2, 0], 1) == 7 and tree.compute([0, 2, 0], 2) == 8
    assert tree.compute([0, 1, 0], 4) == 4
    assert tree.pdfs_of(3, 0) == {5, 6}
    assert tree.num_pdfs == 9


def test_truncated_tree_is_a_clear_error(tmp_path):
    data = mono_tree().to_bytes()
    (tmp_path / "tree").write_bytes(data[:-30])
    with pytest.raises(HdnnError, match=r"tree: .* at byte \d+"):
        read_tree(tmp_path / "tree")


# ---------------------------------------------------------------- transition model and GMMs

def _khg_tuples(ktm):
    return [tuple(int(v) for v in re.findall(r"=(-?\d+)", str(t))) for t in ktm.__getstate__()[0]]


@pytest.mark.parametrize("make", [mono_tree, triphone_tree])
def test_transition_model_matches_kaldi_hmm_gmm(make):
    from hdnn.gmm.model import khg_topology, khg_tree
    from hdnn.gmm.wheels import khg

    tree = make()
    tm = TransitionModel.from_tree(tree, topo())
    ktm = khg.TransitionModel(ctx_dep=khg_tree(tree), hmm_topo=khg_topology(tm.topo))
    assert _khg_tuples(ktm) == [tuple(t) for t in tm.tuples.tolist()]
    assert list(ktm.transition_id_to_pdf_array())[1:] == tm.tid2pdf[1:].tolist()
    assert ktm.num_transition_ids == tm.num_transition_ids and ktm.num_pdfs == tm.num_pdfs
    for tid in range(1, tm.num_transition_ids + 1):
        assert ktm.is_self_loop(tid) == tm.is_self_loop[tid]
        assert ktm.transition_id_to_phone(tid) == tm.tid2phone[tid]
    np.testing.assert_allclose(np.asarray(ktm.__getstate__()[6]), tm.log_probs, rtol=1e-6)


def test_monophone_tree_equals_kaldi_hmm_gmm():
    from hdnn.gmm.model import khg_topology
    from hdnn.gmm.wheels import khg

    t = topo()
    ref = khg.monophone_context_dependency_shared(phone_classes=SETS,
                                                  phone2num_pdf_classes=khg_topology(t).get_phone_to_num_pdf_classes())
    ktm = khg.TransitionModel(ctx_dep=ref, hmm_topo=khg_topology(t))
    assert _khg_tuples(ktm) == [tuple(x) for x in TransitionModel.from_tree(mono_tree(), t).tuples.tolist()]


@pytest.mark.parametrize("make", [mono_tree, triphone_tree])
def test_model_round_trip_and_khg_conversion(tmp_path, make):
    from hdnn.gmm.model import GmmSystem, am_from_khg, khg_log_probs, load_gmm_system

    tree = make()
    tm, am = random_model(tree)
    GmmSystem(tree, tm, am).save(tmp_path)
    assert (tmp_path / "final.mdl").read_bytes() == gmm_model_bytes(tm, am)
    tm2, am2 = read_gmm_model(tmp_path / "final.mdl")
    assert gmm_model_bytes(tm2, am2) == gmm_model_bytes(tm, am)
    assert read_transition_model(tmp_path / "final.mdl").tid2pdf.tolist() == tm.tid2pdf.tolist()

    ctx, ktm, kam = load_gmm_system(tmp_path)
    assert ctx.num_pdfs == tree.num_pdfs and kam.num_pdfs == am.num_pdfs
    np.testing.assert_allclose(khg_log_probs(ktm), tm.log_probs, rtol=1e-6)
    back = am_from_khg(kam)
    for ours, theirs, i in zip(am.pdfs, back.pdfs, range(am.num_pdfs)):
        np.testing.assert_array_equal(ours.means_invvars, theirs.means_invvars)
        np.testing.assert_array_equal(ours.inv_vars, theirs.inv_vars)
        np.testing.assert_allclose(ours.gconsts, kam.get_pdf(i).gconsts, rtol=1e-5)
        x = np.random.default_rng(i).normal(size=(4, am.dim)).astype(np.float32)
        ll = np.logaddexp.reduce(ours.component_loglikes(x), axis=1)
        np.testing.assert_allclose(ll, [kam.log_likelihood(i, row) for row in x], rtol=1e-4)


def test_model_with_too_few_pdfs_is_rejected(tmp_path):
    tree = triphone_tree()
    tm, am = random_model(tree)
    write_gmm_model(tmp_path / "final.mdl", tm, AmDiagGmm(am.pdfs[:3]))
    with pytest.raises(HdnnError, match="final.mdl: transition model has 9 pdfs, acoustic model 3"):
        read_gmm_model(tmp_path / "final.mdl")


def test_topology_text_round_trip():
    t = topo()
    assert HmmTopology.from_text(t.to_text()) == t
    assert t.num_pdf_classes(1) == 5 and t.num_pdf_classes(4) == 3
    with pytest.raises(HdnnError, match="topo: bad topology"):
        HmmTopology.from_text(TOPO.replace("</State>\n<State> 1", "\n<State> 1", 1))


# ---------------------------------------------------------------- real Kaldi

@pytest.mark.kaldi
@pytest.mark.parametrize("make", [mono_tree, triphone_tree])
def test_real_kaldi_reads_our_tree_and_model(kaldi, tmp_path, make):
    from hdnn.gmm.model import GmmSystem
    from hdnn.kaldi.binaries import run_kaldi

    tree = make()
    tm, am = random_model(tree)
    GmmSystem(tree, tm, am).save(tmp_path)
    info = run_kaldi(["gmm-info", str(tmp_path / "final.mdl")]).stdout.decode()
    assert f"number of pdfs {tree.num_pdfs}" in info
    assert f"number of transition-ids {tm.num_transition_ids}" in info
    assert f"number of gaussians {am.num_gauss}" in info
    info = run_kaldi(["tree-info", str(tmp_path / "tree")]).stdout.decode()
    assert f"num-pdfs {tree.num_pdfs}" in info and f"context-width {tree.N}" in info
    # Kaldi writes back exactly the bytes it read
    run_kaldi(["copy-tree", str(tmp_path / "tree"), str(tmp_path / "tree2")])
    assert (tmp_path / "tree2").read_bytes() == (tmp_path / "tree").read_bytes()
    run_kaldi(["gmm-copy", str(tmp_path / "final.mdl"), str(tmp_path / "copy.mdl")])
    tm2, am2 = read_gmm_model(tmp_path / "copy.mdl")
    assert tm2.tuples.tolist() == tm.tuples.tolist()
    np.testing.assert_array_equal(tm2.log_probs, tm.log_probs)
    for a, b in zip(am.pdfs, am2.pdfs):
        np.testing.assert_array_equal(a.means_invvars, b.means_invvars)
        np.testing.assert_allclose(a.gconsts, b.gconsts, rtol=1e-5)

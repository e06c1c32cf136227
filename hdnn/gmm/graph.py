"""HCLG decoding graphs, as utils/mkgraph.sh builds them, with Kaldi's own FST algorithms.

  LG    = minimize_encoded(determinize_star_log(L_disambig o G))
  CLG   = compose_context(LG)                       (fstcomposecontext)
  Ha    = get_h_transducer(ilabels, tree, model)    (make-h-transducer)
  HCLGa = minimize_encoded(rmsymbols(determinize_star_log(Ha o CLG), disambig tids))
  HCLG  = add_self_loops(HCLGa, scale 0.1, reorder) (add-self-loops)

Kaldi's fstpushspecial (on LG) and fstrmepslocal (on HCLGa) are not in the wheels; without
them the graph is equivalent, slightly less compact.
"""
import logging
import shutil
import time
from pathlib import Path

from hdnn.errors import HdnnError, atomic_open, atomic_path
from hdnn.gmm.lang import Lang
from hdnn.gmm.wheels import kaldifst, khg
from hdnn.stamps import claim, make_stamp, write_stamp

log = logging.getLogger(__name__)

# What mkgraph.sh copies from the lang dir into the graph dir.
_LANG_FILES = ("words.txt", "phones.txt", "phones/word_boundary.txt", "phones/word_boundary.int",
               "phones/align_lexicon.txt", "phones/align_lexicon.int", "phones/disambig.txt",
               "phones/disambig.int", "phones/silence.csl", "phones/optional_silence.txt",
               "phones/optional_silence.int", "phones/optional_silence.csl")


def make_lg(L_disambig, G):
    """LG = fsttablecompose | fstdeterminizestar --use-log=true | fstminimizeencoded."""
    LG = kaldifst.compose(L_disambig, G)
    if LG.num_states == 0:
        raise HdnnError("L o G is empty: no word of G.fst has a pronunciation in L_disambig.fst")
    kaldifst.determinize_star(LG, use_log=True)
    kaldifst.minimize_encoded(LG)
    return LG


def remove_input_symbols(fst, symbols, num_labels):
    """fstrmsymbols: `fst` (input labels 1..num_labels and `symbols`) with `symbols` on the
    input side replaced by epsilon.

    Done in C++ as a composition R o fst, where the one-state R maps every label to itself
    and epsilon to each removed symbol.
    """
    symbols = set(symbols)
    keep = [i for i in range(1, num_labels + 1) if i not in symbols]
    lines = [f"0\t0\t{i}\t{i}" for i in keep] + [f"0\t0\t0\t{d}" for d in sorted(symbols)]
    R = kaldifst.compile("\n".join(lines + ["0"]) + "\n", acceptor=False)
    kaldifst.arcsort(R, sort_type="olabel")
    return kaldifst.compose(R, fst)


def add_word_penalty(fst, penalty, num_words):
    """`fst` with `penalty` added to the cost of every arc that outputs a word (word ids
    1..num_words), as lattice-add-penalty --word-ins-penalty does to a lattice.

    Done in C++ as fst o P, with P a one-state acceptor of every word at cost `penalty`.
    """
    if penalty == 0.0:
        return fst
    lines = [f"0\t0\t{w}\t{w}\t{penalty!r}" for w in range(1, num_words + 1)]
    P = kaldifst.compile("\n".join(lines + ["0"]) + "\n", acceptor=False)
    kaldifst.arcsort(P, sort_type="ilabel")
    return kaldifst.compose(fst, P)


def make_hclg(lang, ctx_dep, trans_model, G=None, transition_scale=1.0, self_loop_scale=0.1):
    """HCLG (with self-loops) for a lang dir (with G.fst, or `G`) and a tree/model.

    Returns (HCLG, disambiguation transition-ids, sizes {name: states}).
    """
    lang = lang if isinstance(lang, Lang) else Lang(lang)
    G = G if G is not None else lang.fst("G.fst")
    t0, sizes = time.time(), {}
    LG = make_lg(lang.fst("L_disambig.fst"), G)
    sizes["LG"] = LG.num_states
    CLG, ilabels = kaldifst.compose_context(disambig_syms=lang.disambig,
                                            context_width=ctx_dep.context_width,
                                            central_position=ctx_dep.central_position, ifst=LG)
    kaldifst.arcsort(CLG, sort_type="ilabel")
    sizes["CLG"] = CLG.num_states
    config = khg.HTransducerConfig()
    config.transition_scale = transition_scale
    try:
        Ha, disambig_tids = khg.get_h_transducer(ilabel_info=ilabels, ctx_dep=ctx_dep,
                                                 trans_model=trans_model, config=config)
    except RuntimeError as e:
        raise HdnnError(f"make-h-transducer failed (does the tree match {lang.dir}?): "
                        f"{str(e).strip().splitlines()[-1]}") from None
    HCLGa = kaldifst.compose(Ha, CLG)
    kaldifst.determinize_star(HCLGa, use_log=True)
    HCLGa = remove_input_symbols(HCLGa, disambig_tids, trans_model.num_transition_ids)
    kaldifst.minimize_encoded(HCLGa)
    HCLG = khg.add_self_loops(self_loop_scale=self_loop_scale, disambig_syms=[], reorder=True,
                              trans_model=trans_model, ifst=HCLGa)
    sizes["HCLG"] = HCLG.num_states
    log.info("HCLG: %d states (LG %d, CLG %d) in %.1f s", sizes["HCLG"], sizes["LG"], sizes["CLG"],
             time.time() - t0)
    return HCLG, list(disambig_tids), sizes


def mkgraph(lang_dir, model_dir, graph_dir, transition_scale=1.0, self_loop_scale=0.1,
            system=None):
    """utils/mkgraph.sh: <graph_dir>/{HCLG.fst, words.txt, phones.txt, phones/,
    disambig_tid.int, num_pdfs} from <lang_dir> (with G.fst) and <model_dir>/{tree,final.mdl}.

    `system` = (ctx_dep, trans_model) overrides reading the model dir. Skips the work when
    HCLG.fst was made from the same inputs and options (<graph_dir>/.stamp; mkgraph.sh compares
    times, which a copied or touched file fools).
    """
    lang_dir, model_dir, graph_dir = Path(lang_dir), Path(model_dir), Path(graph_dir)
    lang = Lang(lang_dir)
    inputs = [lang_dir / "L_disambig.fst", lang_dir / "G.fst", model_dir / "final.mdl", model_dir / "tree"]
    for f in inputs[:2]:
        if not f.exists():
            raise HdnnError(f"{f}: no such file (run prepare_lang and format_lm first)")
    hclg_path = graph_dir / "HCLG.fst"
    stamp = make_stamp({f.name: f for f in [*inputs, lang_dir / "words.txt"]},
                       {"transition_scale": transition_scale, "self_loop_scale": self_loop_scale})
    if system is None:
        if hclg_path.exists() and claim(graph_dir / ".stamp", stamp, str(graph_dir), earlier=True):
            log.info("%s is up to date", hclg_path)
            return hclg_path
        from hdnn.gmm.model import load_gmm_system

        ctx_dep, trans_model, _ = load_gmm_system(model_dir)
    else:
        ctx_dep, trans_model = system
    HCLG, disambig_tids, _ = make_hclg(lang, ctx_dep, trans_model,
                                       transition_scale=transition_scale,
                                       self_loop_scale=self_loop_scale)
    graph_dir.mkdir(parents=True, exist_ok=True)
    for name in _LANG_FILES:
        if (lang_dir / name).exists():
            (graph_dir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lang_dir / name, graph_dir / name)
    with atomic_open(graph_dir / "disambig_tid.int") as f:
        f.write("".join(f"{t}\n" for t in disambig_tids))
    with atomic_open(graph_dir / "num_pdfs") as f:
        f.write(f"{trans_model.num_pdfs}\n")
    with atomic_path(hclg_path) as tmp:
        if not HCLG.write(str(tmp)):
            raise HdnnError(f"{hclg_path}: cannot write")
    if system is None:
        write_stamp(graph_dir / ".stamp", stamp)
    return hclg_path


def read_graph(graph_dir):
    """HCLG.fst of a graph dir (ours or Kaldi's) as a kaldifst.StdVectorFst."""
    path = Path(graph_dir) / "HCLG.fst"
    if not path.exists():
        raise HdnnError(f"{path}: no such file (run mkgraph first)")
    if _fst_type(path) == "const":  # Kaldi's mkgraph.sh writes a ConstFst
        return _read_const_fst(path)
    fst = kaldifst.StdVectorFst.read(str(path))
    if fst is None:
        raise HdnnError(f"{path}: not an OpenFst vector FST")
    return fst


def _fst_type(path):
    """The type name in an OpenFst binary header ('vector', 'const', ...)."""
    with open(path, "rb") as f:
        head = f.read(64)
    if len(head) < 12 or int.from_bytes(head[:4], "little") != 2125659606:
        raise HdnnError(f"{path}: not an OpenFst binary file")
    n = int.from_bytes(head[4:8], "little")  # the type: int32 length, then the characters
    return head[8:8 + n].decode(errors="replace")


def _read_const_fst(path):
    """A ConstFst as a VectorFst, converted by OpenFst's fstconvert (Debian libfst-tools)."""
    import subprocess
    import tempfile

    if shutil.which("fstconvert") is None:
        raise HdnnError(f"{path}: a ConstFst; install fstconvert (Debian libfst-tools) to read it")
    with tempfile.NamedTemporaryFile(suffix=".fst") as tmp:
        subprocess.run(["fstconvert", "--fst_type=vector", str(path), tmp.name], check=True)
        fst = kaldifst.StdVectorFst.read(tmp.name)
    if fst is None:
        raise HdnnError(f"{path}: cannot read the converted FST")
    return fst

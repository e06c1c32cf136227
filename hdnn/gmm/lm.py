"""The n-gram LM: a Kneser-Ney ARPA model from training text (kaldingram), and G.fst from it
(kaldilm's arpa2fst), like utils/format_lm.sh.
"""
import gzip
import logging
import shutil
import tempfile
from pathlib import Path

from hdnn.gmm.wheels import kaldifst, kaldilm
from kaldingram.train import NgramCounts

from hdnn.errors import HdnnError, atomic_dir, atomic_open, atomic_path
from hdnn.gmm.lang import Lang

_NOT_LM_WORDS = ("<eps>", "#0", "<s>", "</s>")


def map_lm_text(text_file, lang, unk=None):
    """Lines of `text_file` with words missing from the lexicon replaced by the OOV word.

    Returns (lines, {oov word: count}). Empty lines are skipped.
    """
    text_file = Path(text_file)
    if not text_file.exists():
        raise HdnnError(f"{text_file}: no such file")
    unk = unk or lang.oov
    if unk is None or unk not in lang.words:
        raise HdnnError(f"{lang.dir}: no OOV word (oov.txt) in words.txt to map unknown words to")
    vocab = set(lang.words) - set(_NOT_LM_WORDS) - {w for w in lang.words if w.startswith("#")}
    lines, oovs = [], {}
    for num, line in enumerate(text_file.read_text(encoding="utf-8").splitlines(), 1):
        words = line.split()
        for i, w in enumerate(words):
            if w in ("<s>", "</s>"):
                raise HdnnError(f"{text_file}:{num}: sentence markers must not appear in LM text")
            if w not in vocab:
                oovs[w] = oovs.get(w, 0) + 1
                words[i] = unk
        if words:
            lines.append(" ".join(words))
    if not lines:
        raise HdnnError(f"{text_file}: no LM training text")
    return lines, oovs


def train_arpa(lines, order=3):
    """An interpolated Kneser-Ney ARPA model (as SRILM's ngram-count -kndiscount) as text."""
    counts = NgramCounts(order)
    for line in lines:
        counts.add_raw_counts_from_line(line)
    try:
        counts.cal_discounting_constants()
        counts.cal_f()
        counts.cal_bow()
    except (ZeroDivisionError, ValueError) as e:
        raise HdnnError(f"too little LM text for a {order}-gram Kneser-Ney model: {e}") from None
    with tempfile.TemporaryFile("w+", encoding="latin-1") as f:
        counts.print_as_arpa(fout=f)
        f.seek(0)
        return f.read()


def prune_arpa(arpa_text, threshold):
    """Entropy-pruned ARPA text (Stolcke pruning, as SRILM's ngram -prune)."""
    from kaldingram.prune import ArpaParser, prune

    parser = ArpaParser()
    lm = parser.loads(arpa_text)[0]
    prune(lm, threshold, 1)
    return parser.dumps(lm)


def train_lm(text_file, lang_dir, lm_dir, order=3, prune_thresh=0.0):
    """Write <lm_dir>/lm_<order>gram.arpa.gz from LM text; returns its path.

    Words outside the lang dir's vocabulary become its OOV word (counted in the log).
    prune_thresh > 0 entropy-prunes the model.
    """
    lang = Lang(lang_dir)
    lines, oovs = map_lm_text(text_file, lang)
    if oovs:
        top = sorted(oovs.items(), key=lambda kv: -kv[1])[:10]
        logging.warning("%s: %d OOV tokens (%d types) mapped to %s; most frequent: %s", text_file,
                        sum(oovs.values()), len(oovs), lang.oov, " ".join(f"{w}:{c}" for w, c in top))
    arpa = train_arpa(lines, order)
    if prune_thresh > 0:
        logging.info("before pruning: %s", arpa_counts(arpa))
        arpa = prune_arpa(arpa, prune_thresh)
    out = Path(lm_dir) / f"lm_{order}gram.arpa.gz"
    with atomic_path(out) as tmp, open(tmp, "wb") as raw:
        # no file name or time stamp in the gzip header: the same LM, the same bytes
        with gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as f:
            f.write(arpa.encode("utf-8"))
    with atomic_open(Path(lm_dir) / "oov_counts.txt") as f:
        for w, c in sorted(oovs.items(), key=lambda kv: (-kv[1], kv[0])):
            f.write(f"{w} {c}\n")
    logging.info("%s: %d sentences, %s", out, len(lines), arpa_counts(arpa))
    return out


def arpa_counts(arpa_text):
    """'ngram 1=.. 2=..' summary of an ARPA model's header."""
    return " ".join(line.split()[1] for line in arpa_text.splitlines()[:10] if line.startswith("ngram "))


def _read_arpa(path):
    path = Path(path)
    if not path.exists():
        raise HdnnError(f"{path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    if "\\data\\" not in text[:1000]:
        raise HdnnError(f"{path}: not an ARPA language model (no \\data\\ section)")
    return text


def arpa_to_g(arpa_path, words_txt):
    """G.fst (kaldifst) of an ARPA LM with #0 on backoff arcs, ilabel-sorted (arpa2fst)."""
    text = _read_arpa(arpa_path)
    with tempfile.NamedTemporaryFile("w", suffix=".arpa", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        try:
            fst_text = kaldilm.arpa2fst(input_arpa=f.name, disambig_symbol="#0",
                                        read_symbol_table=str(words_txt), max_arpa_warnings=30)
        except Exception as e:
            raise HdnnError(f"{arpa_path}: arpa2fst failed: {e}") from None
    G = kaldifst.compile(fst_text, acceptor=False)
    kaldifst.arcsort(G, sort_type="ilabel")
    return G


def format_lm(lang_dir, arpa_path, out_dir):
    """Copy a lang dir to `out_dir` and add G.fst from an ARPA LM, like utils/format_lm.sh.

    The new dir is built beside `out_dir` and moved into place when complete.
    """
    lang_dir, out_dir = Path(lang_dir), Path(out_dir)
    Lang(lang_dir)
    with atomic_dir(out_dir) as build:
        shutil.copytree(lang_dir, build, dirs_exist_ok=True)
        G = arpa_to_g(arpa_path, lang_dir / "words.txt")
        _check_g(G, Lang(lang_dir), arpa_path)
        G.write(str(build / "G.fst"))
    return out_dir / "G.fst"


def _check_g(G, lang, source):
    """format_lm.sh's checks: G has states, and no <s>/</s> survive as labels."""
    if G.num_states == 0:
        raise HdnnError(f"{source}: G.fst is empty (no n-grams over words.txt)")
    bad = {lang.words[w] for w in ("<s>", "</s>") if w in lang.words}
    for state in range(G.num_states):
        for arc in kaldifst.ArcIterator(G, state):
            if arc.ilabel in bad or arc.olabel in bad:
                raise HdnnError(f"{source}: G.fst has <s> or </s> on an arc")


"""Lang dirs (prepare_lang), the n-gram LM (train_lm) and G.fst (format_lm), checked against
Kaldi's own utils/prepare_lang.sh and validate_lang.pl where a Kaldi build is present."""
import gzip
import os
import subprocess
import sys

import pytest

from tests.gmm.fixtures import ROOT, STEPS
from hdnn.errors import HdnnError
from hdnn.gmm.lang import Lang, add_lex_disambig, prepare_lang, read_dict_dir
from hdnn.gmm.lm import format_lm, train_lm
from hdnn.gmm.wheels import kaldifst
from hdnn.kaldi.binaries import kaldi_env


def write_dict(d, lexicon, extra=""):
    d.mkdir(parents=True, exist_ok=True)
    phones = sorted({p for line in lexicon.splitlines() for p in line.split()[1:]} - {"SIL", "SPN"})
    (d / "lexicon.txt").write_text(lexicon)
    (d / "nonsilence_phones.txt").write_text("".join(p + "\n" for p in phones))
    (d / "silence_phones.txt").write_text("SIL\nSPN\n")
    (d / "optional_silence.txt").write_text("SIL\n")
    (d / "extra_questions.txt").write_text(extra)
    return d


TOY = "!SIL SIL\n<UNK> SPN\nA ax\nAN ax n\nRED r eh d\nREAD r eh d\nREADS r eh d z\nCAT k ae t\n"


def test_lang_dir_of_the_ci_dict(ci_lang):
    lang = Lang(ci_lang)
    phones = set(lang.phones)
    assert {"SIL", "SIL_B", "SIL_E", "SIL_I", "SIL_S"} <= phones
    nonsil = [lang.id2phone[i] for i in lang.nonsilence]
    assert nonsil and all(p[-2:] in ("_B", "_E", "_I", "_S") for p in nonsil)
    assert lang.id2phone[lang.disambig[0]] == "#0"
    words = [w for w, _ in sorted(lang.words.items(), key=lambda kv: kv[1])]
    assert words[0] == "<eps>" and words[-3:] == ["#0", "<s>", "</s>"]
    assert words[1:-3] == sorted(words[1:-3], key=str.encode)
    assert lang.oov == "<UNK>"
    topo = lang.topo()
    assert sorted(topo.phones) == sorted(lang.silence + lang.nonsilence)
    L = lang.fst("L.fst")
    assert L.is_olabel_sorted
    boundary = (ci_lang / "phones" / "word_boundary.txt").read_text().splitlines()
    assert len(boundary) == len(lang.silence) + len(lang.nonsilence)


def test_disambiguation_symbols_for_homophones_and_prefixes(tmp_path):
    lex = read_dict_dir(write_dict(tmp_path / "dict", TOY)).lexicon
    out, top = add_lex_disambig(lex)
    prons = {w: p for w, _, p in out}
    assert prons["RED"][-1] == "#1" and prons["READ"][-1] == "#2"  # homophones
    assert prons["A"][-1] == "#1"  # a prefix of AN
    assert "#" not in prons["READS"][-1] and "#" not in prons["CAT"][-1]
    assert top == 2
    lang = prepare_lang(tmp_path / "dict", "<UNK>", tmp_path / "tmp", tmp_path / "lang")
    assert [lang.id2phone[i] for i in lang.disambig] == ["#0", "#1", "#2", "#3"]


def test_lexicon_fst_spells_each_word(tmp_path):
    lang = prepare_lang(write_dict(tmp_path / "dict", TOY), "<UNK>", tmp_path / "tmp", tmp_path / "lang")
    L = lang.fst("L.fst")
    word = lang.words["READS"]
    # walk the arcs from the loop state (1) that output READS: r_B eh_I d_I z_E
    first = [a for a in kaldifst.ArcIterator(L, 1) if a.olabel == word]
    assert len(first) == 1
    seq, state = [first[0].ilabel], first[0].nextstate
    while state != 1 and state != 2:
        arcs = list(kaldifst.ArcIterator(L, state))
        seq.append(arcs[0].ilabel)
        state = arcs[0].nextstate
    assert [lang.id2phone[p] for p in seq] == ["r_B", "eh_I", "d_I", "z_E"]


def test_position_independent_phones(tmp_path):
    lang = prepare_lang(write_dict(tmp_path / "dict", TOY), "<UNK>", tmp_path / "tmp", tmp_path / "lang",
                        position_dependent_phones=False)
    assert "r" in lang.phones and "r_B" not in lang.phones
    assert not (tmp_path / "lang" / "phones" / "word_boundary.txt").exists()


@pytest.mark.parametrize("lexicon,message", [
    ("A ax\nB zz\n", r"lexicon.txt:2: phone zz of B is not in"),
    ("A ax\nB\n", r"lexicon.txt:2: word B has an empty pronunciation"),
    ("A ax\n<s> ax\n", r"lexicon.txt:2: reserved word <s>"),
])
def test_bad_dicts(tmp_path, lexicon, message):
    d = write_dict(tmp_path / "dict", TOY)
    (d / "lexicon.txt").write_text(lexicon)
    with pytest.raises(HdnnError, match=message):
        prepare_lang(d, "<UNK>", tmp_path / "tmp", tmp_path / "lang")
    assert not (tmp_path / "lang").exists()


def test_missing_oov_word_is_an_error_and_leaves_the_old_lang_dir(tmp_path):
    d = write_dict(tmp_path / "dict", TOY)
    prepare_lang(d, "<UNK>", tmp_path / "tmp", tmp_path / "lang")
    before = (tmp_path / "lang" / "words.txt").read_text()
    p = subprocess.run([sys.executable, str(STEPS / "prepare_lang.py"), str(d), "<OOV>", str(tmp_path / "tmp"),
                        str(tmp_path / "lang")], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1].endswith("the OOV word <OOV> has no pronunciation")
    assert (tmp_path / "lang" / "words.txt").read_text() == before


# ---------------------------------------------------------------- LM and G

def test_train_lm_maps_oovs_and_format_lm_builds_g(tmp_path):
    lang = prepare_lang(write_dict(tmp_path / "dict", TOY), "<UNK>", tmp_path / "tmp", tmp_path / "lang")
    text = tmp_path / "lm_train.txt"
    text.write_text("A RED CAT\nA CAT READS\nAN ELEPHANT READS\n\nA RED CAT READS A RED CAT\n" * 3)
    arpa = train_lm(text, tmp_path / "lang", tmp_path / "lm", order=3)
    body = gzip.open(arpa, "rt").read()
    assert "ELEPHANT" not in body and "<UNK>" in body
    assert (tmp_path / "lm" / "oov_counts.txt").read_text() == "ELEPHANT 3\n"
    unigrams = body.split("\\1-grams:")[1].split("\\2-grams:")[0]
    assert {line.split()[1] for line in unigrams.strip().splitlines()} == \
        {"<s>", "</s>", "A", "AN", "RED", "CAT", "READS", "<UNK>"}
    g_path = format_lm(tmp_path / "lang", arpa, tmp_path / "lang_test")
    G = kaldifst.StdVectorFst.read(str(g_path))
    labels = {a.ilabel for s in range(G.num_states) for a in kaldifst.ArcIterator(G, s)}
    assert lang.words["#0"] in labels  # back-off arcs
    assert lang.words["CAT"] in labels and lang.words["READ"] not in labels
    assert (tmp_path / "lang_test" / "L_disambig.fst").exists()


def test_lm_text_errors(tmp_path):
    prepare_lang(write_dict(tmp_path / "dict", TOY), "<UNK>", tmp_path / "tmp", tmp_path / "lang")
    text = tmp_path / "lm_train.txt"
    text.write_text("\n\n")
    with pytest.raises(HdnnError, match="lm_train.txt: no LM training text"):
        train_lm(text, tmp_path / "lang", tmp_path / "lm")
    text.write_text("A CAT\n<s> A CAT </s>\n")
    with pytest.raises(HdnnError, match=r"lm_train.txt:2: sentence markers"):
        train_lm(text, tmp_path / "lang", tmp_path / "lm")
    with pytest.raises(HdnnError, match="not an ARPA language model"):
        format_lm(tmp_path / "lang", text, tmp_path / "lang_test")
    assert not (tmp_path / "lang_test").exists()


def test_ci_lm_and_g(ci_lang, ci_lang_test):
    lang = Lang(ci_lang_test)
    G = lang.fst("G.fst")
    assert G.num_states > 1000
    header = gzip.open(ci_lang.parent / "local" / "lm" / "lm_3gram.arpa.gz", "rt").read(300)
    assert "ngram 3=" in header
    assert (ci_lang.parent / "local" / "lm" / "oov_counts.txt").exists()


# ---------------------------------------------------------------- real Kaldi

def kaldi_recipe(tmp_path):
    """A directory where Kaldi's utils/ scripts run (utils symlink, path.sh)."""
    s5 = tmp_path / "s5"
    s5.mkdir()
    os.symlink(os.environ.get("KALDI_ROOT", "/opt/kaldi") + "/egs/wsj/s5/utils", s5 / "utils")
    (s5 / "path.sh").write_text("export LC_ALL=C\n")
    return s5


@pytest.mark.kaldi
def test_validate_lang_accepts_ours(kaldi, ci_lang_test, tmp_path):
    s5 = kaldi_recipe(tmp_path)
    p = subprocess.run(["utils/validate_lang.pl", str(ci_lang_test)], cwd=s5, env=kaldi_env(),
                       capture_output=True, text=True)
    assert p.returncode == 0 and "SUCCESS" in p.stdout, p.stdout[-3000:]


@pytest.mark.kaldi
def test_same_lang_dir_as_kaldi_prepare_lang(kaldi, ci_corpus, ci_lang, tmp_path):
    s5 = kaldi_recipe(tmp_path)
    p = subprocess.run(["utils/prepare_lang.sh", str(ci_corpus / "local" / "dict"), "<UNK>",
                        str(tmp_path / "tmp"), str(tmp_path / "lang")], cwd=s5, env=kaldi_env(),
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    theirs = tmp_path / "lang"
    for name in ("phones.txt", "words.txt", "topo", "oov.int", "phones/roots.int", "phones/sets.int",
                 "phones/disambig.int", "phones/word_boundary.int", "phones/align_lexicon.int",
                 "phones/silence.csl", "phones/nonsilence.csl", "phones/context_indep.int"):
        assert (ci_lang / name).read_text() == (theirs / name).read_text(), name

    def arcs(path):  # same arcs and weights, in any order
        out = subprocess.run(["fstprint", str(path)], capture_output=True, text=True, check=True).stdout
        return sorted(tuple(line.split("\t")[:4]) + (round(float(line.split("\t")[4]), 5),)
                      if line.count("\t") == 4 else tuple(line.split("\t")) for line in out.splitlines())

    for name in ("L.fst", "L_disambig.fst"):
        assert arcs(ci_lang / name) == arcs(theirs / name), name

"""Session fixtures of the GMM-side data (registered for all tests by tests/conftest.py)."""
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
STEPS = ROOT / "steps_py"


def run_step(name, *args):
    """Run steps_py/<name>.py like a recipe does; returns the CompletedProcess (text)."""
    cmd = [sys.executable, str(STEPS / f"{name}.py"), *map(str, args)]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)


# ---------------------------------------------------------------- espeak corpus with phone timings

@pytest.fixture(scope="session")
def espeak_corpus(tmp_path_factory):
    """120 espeak-ng utterances (6 voices) with MFCC + CMVN, a lang dir from espeak's own
    lexicon, and the synthesiser's phoneme start times (timings.txt)."""
    from tests.gmm import espeak_data
    from hdnn.gmm.features import compute_cmvn_stats, make_features
    from hdnn.gmm.lang import prepare_lang

    out = espeak_data.make_corpus(tmp_path_factory.mktemp("espeak"), num_utts=120)
    prepare_lang(out / "dict", "<UNK>", out / "lang_tmp", out / "lang")
    make_features(out / "data", "mfcc", nj=2, progress=False)
    compute_cmvn_stats(out / "data")
    return SimpleNamespace(root=out, data=out / "data", lang=out / "lang", timings=out / "timings.txt")


@pytest.fixture(scope="session")
def espeak_mono(espeak_corpus, tmp_path_factory):
    """steps_py/train_mono.py on the espeak corpus (2 jobs, 500 Gaussians)."""
    exp = tmp_path_factory.mktemp("exp") / "mono"
    run_step("train_mono", "--nj", 2, "--totgauss", 500, "--progress", "false",
             espeak_corpus.data, espeak_corpus.lang, exp)
    return exp


@pytest.fixture(scope="session")
def espeak_tri(espeak_corpus, espeak_mono):
    """steps_py/align_si.py, then steps_py/train_deltas.py 200 1200 on the mono alignments."""
    ali = espeak_mono.parent / "mono_ali"
    run_step("align_si", "--nj", 2, espeak_corpus.data, espeak_corpus.lang, espeak_mono, ali)
    exp = espeak_mono.parent / "tri1"
    run_step("train_deltas", "--progress", "false", 200, 1200, espeak_corpus.data, espeak_corpus.lang, ali, exp)
    return exp


@pytest.fixture(scope="session")
def espeak_graph(espeak_corpus, espeak_mono):
    """A bigram LM on the espeak transcripts, G.fst, and the monophone HCLG."""
    root = espeak_mono.parent
    text = root / "lm_train.txt"
    text.write_text("".join(line.split(maxsplit=1)[1] + "\n"
                            for line in (espeak_corpus.data / "text").read_text().splitlines()))
    run_step("train_lm", "--order", 2, text, espeak_corpus.lang, root / "lm")
    lang_test = root / "lang_test"
    run_step("format_lm", espeak_corpus.lang, root / "lm" / "lm_2gram.arpa.gz", "-", lang_test)
    graph = espeak_mono / "graph"
    run_step("mkgraph", lang_test, espeak_mono, graph)
    return graph



# ---------------------------------------------------------------- the ci corpus: features, lang, LM

@pytest.fixture(scope="session")
def ci_mfcc(ci_corpus, tmp_path_factory):
    """Copies of the ci corpus's ihm/{train,dev,eval} with MFCC (steps_py/make_mfcc.py, 2 jobs)
    and per-speaker CMVN (steps_py/compute_cmvn_stats.py)."""
    import shutil

    root = tmp_path_factory.mktemp("ci_mfcc")
    for part in ("train", "dev", "eval"):
        shutil.copytree(ci_corpus / "ihm" / part, root / "data" / part)
        run_step("make_mfcc", "--nj", 2, "--progress", "false", root / "data" / part,
                 root / "exp" / "make_mfcc" / part, root / "mfcc")
        run_step("compute_cmvn_stats", root / "data" / part, root / "exp" / "make_mfcc" / part, root / "mfcc")
    return SimpleNamespace(root=root, train=root / "data" / "train", dev=root / "data" / "dev",
                           eval=root / "data" / "eval", mfcc=root / "mfcc")


@pytest.fixture(scope="session")
def ci_lang(ci_corpus, tmp_path_factory):
    """steps_py/prepare_lang.py on the ci corpus's dict (position-dependent phones)."""
    root = tmp_path_factory.mktemp("ci_lang")
    run_step("prepare_lang", ci_corpus / "local" / "dict", "<UNK>", root / "local" / "lang", root / "lang")
    return root / "lang"


@pytest.fixture(scope="session")
def ci_lang_test(ci_corpus, ci_lang):
    """The ci lang dir with G.fst of a pruned 3-gram (steps_py/train_lm.py + format_lm.py)."""
    lm_dir = ci_lang.parent / "local" / "lm"
    run_step("train_lm", "--order", 3, "--prune-thresh", "1e-7", ci_corpus / "local" / "lm_train.txt",
             ci_lang, lm_dir)
    out = ci_lang.parent / "lang_test"
    run_step("format_lm", ci_lang, lm_dir / "lm_3gram.arpa.gz", ci_corpus / "local" / "dict" / "lexicon.txt", out)
    return out


@pytest.fixture(scope="session")
def espeak_lda_mllt(espeak_corpus, espeak_tri):
    """steps_py/align_si.py with tri1, then steps_py/train_lda_mllt.py 200 1200."""
    ali = espeak_tri.parent / "tri1_ali"
    run_step("align_si", "--nj", 2, espeak_corpus.data, espeak_corpus.lang, espeak_tri, ali)
    exp = espeak_tri.parent / "tri2"
    run_step("train_lda_mllt", "--progress", "false", 200, 1200, espeak_corpus.data, espeak_corpus.lang, ali, exp)
    return exp


@pytest.fixture(scope="session")
def ci_mono(ci_mfcc, ci_lang):
    """steps_py/train_mono.py on the ci corpus's ihm/train (2 jobs, 1000 Gaussians)."""
    exp = ci_mfcc.root / "exp" / "mono"
    run_step("train_mono", "--nj", 2, "--progress", "false", ci_mfcc.train, ci_lang, exp)
    return exp


@pytest.fixture(scope="session")
def ci_tri(ci_mfcc, ci_lang, ci_mono):
    """steps_py/align_si.py with mono, then steps_py/train_deltas.py 500 5000 (as the recipe's tri1)."""
    ali = ci_mfcc.root / "exp" / "mono_ali"
    run_step("align_si", "--nj", 2, ci_mfcc.train, ci_lang, ci_mono, ali)
    exp = ci_mfcc.root / "exp" / "tri1"
    run_step("train_deltas", "--progress", "false", 500, 5000, ci_mfcc.train, ci_lang, ali, exp)
    return exp

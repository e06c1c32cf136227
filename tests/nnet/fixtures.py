"""Fixtures of the nnet-side data (registered for all tests by tests/conftest.py): the generated data dir, its by-speaker split, a trained teacher."""
import pytest

from hdnn.kaldi.data_dir import subset_tr_cv
from tests.nnet.toy import FAST, make_data_dir, run_step  # noqa: F401

@pytest.fixture(scope="session")
def toy_data(tmp_path_factory):
    """(data dir, pdf alignment rspecifier) of 32 utterances, 8 speakers, 6 pdfs."""
    return make_data_dir(tmp_path_factory.mktemp("toy"))

@pytest.fixture(scope="session")
def toy_split(toy_data, tmp_path_factory):
    """(tr dir, cv dir, alignment rspecifier): the toy data split by speaker, 6 + 2."""
    data, ali = toy_data
    root = tmp_path_factory.mktemp("split")
    tr, cv = subset_tr_cv(data, root / "tr", root / "cv", cv_fraction=0.25)
    return tr.path, cv.path, ali

@pytest.fixture(scope="session")
def teacher_dir(toy_split, tmp_path_factory):
    """A teacher-small DNN trained for 3 epochs on the toy split."""
    tr, cv, ali = toy_split
    exp = tmp_path_factory.mktemp("teacher") / "exp"
    run_step("train.py", *FAST, "--max-iters", "3", "--model-preset", "teacher-small", tr, cv, ali, exp)
    return exp

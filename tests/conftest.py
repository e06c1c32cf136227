"""Fixtures shared by all tests: the real Kaldi build, and the generated `ci` corpus."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The session fixtures of each layer's data, available to every test directory (tests/faults uses both).
pytest_plugins = ["tests.gmm.fixtures", "tests.nnet.fixtures", "tests.slurm"]


def _kaldi_root():
    from hdnn.kaldi.binaries import kaldi_root

    return kaldi_root()


def pytest_report_header(config):
    root = _kaldi_root()
    if root:
        return f"real Kaldi: {root}"
    return f"real Kaldi: none ({os.environ.get('HDNN_NO_KALDI_REASON', 'KALDI_ROOT not set or not built')})"


@pytest.fixture(scope="session")
def kaldi():
    """Path of a real Kaldi build; skips (with the reason) when none could be built."""
    root = _kaldi_root()
    if root is None:
        pytest.skip(os.environ.get("HDNN_NO_KALDI_REASON", "no Kaldi build: KALDI_ROOT unset or not built"))
    return root


@pytest.fixture(scope="session")
def ci_corpus(tmp_path_factory):
    """The `ci` size of the embedded meeting corpus, generated once per test session.

    Returns the data root: <root>/{ihm,sdm1}/{train,dev,eval}, <root>/local/dict, <root>/local/lm_train.txt.
    """
    out = tmp_path_factory.mktemp("mini_ami")
    cmd = [sys.executable, str(ROOT / "local" / "make_mini_ami.py"), "--size", "ci", "--seed", "0",
           "--nj", "2", str(out / "corpus"), str(out / "data")]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return out / "data"

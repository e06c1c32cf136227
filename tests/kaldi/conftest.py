"""Fixtures of the hdnn.kaldi tests: a small data dir, and a runner for Kaldi command lines."""
import subprocess

import pytest

from hdnn.kaldi.binaries import kaldi_env
from tests.kaldi.kaldi_data import make_data_dir


@pytest.fixture
def data_dir(tmp_path):
    return make_data_dir(tmp_path / "data" / "train")


@pytest.fixture
def kaldi_run(kaldi):
    """Run a Kaldi command line through bash (for pipes); returns stdout bytes."""

    def run(cmd, input=None):
        p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], input=input, env=kaldi_env(),
                           capture_output=True)
        assert p.returncode == 0, f"{cmd}\n{p.stderr.decode()[-2000:]}"
        return p.stdout

    return run

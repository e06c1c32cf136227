"""Fixtures for the corpus tests: the generator's modules on sys.path, and a tiny corpus."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "local"))


def make_mini_ami(*args, check=True, env=None):
    """Run local/make_mini_ami.py as a user would; returns the CompletedProcess."""
    p = subprocess.run([sys.executable, str(ROOT / "local" / "make_mini_ami.py"), *map(str, args)],
                       cwd=ROOT, capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"make_mini_ami.py {args} failed:\n{p.stderr[-2000:]}")
    return p


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """(corpus dir, data root) of the `tiny` size, seed 3, generated once per session."""
    out = tmp_path_factory.mktemp("tiny")
    make_mini_ami("--size", "tiny", "--seed", "3", "--nj", "2", out / "corpus", out / "data")
    return out / "corpus", out / "data"

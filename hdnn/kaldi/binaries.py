"""Locate and run real Kaldi binaries when a Kaldi build is present (KALDI_ROOT)."""
import os
import subprocess
from pathlib import Path

from hdnn.errors import HdnnError

_BIN_DIRS = ("bin", "featbin", "latbin", "gmmbin", "fstbin", "lmbin", "nnetbin")


def kaldi_root():
    """KALDI_ROOT if it holds built binaries, else None."""
    root = os.environ.get("KALDI_ROOT")
    if root and (Path(root) / "src" / "bin" / "copy-int-vector").exists():
        return Path(root)
    return None


def kaldi_env():
    """os.environ with Kaldi's binary dirs (and Debian's OpenFst tools) on PATH."""
    root = kaldi_root()
    if root is None:
        raise HdnnError("no Kaldi build: set KALDI_ROOT to a built Kaldi (see tools/install_kaldi.sh)")
    env = dict(os.environ)
    dirs = [str(root / "src" / d) for d in _BIN_DIRS]
    env["PATH"] = os.pathsep.join(dirs + [env.get("PATH", "")])
    env["LC_ALL"] = "C"
    return env


def run_kaldi(args, input=None, check=True, **kwargs):
    """Run a Kaldi command (list of args); returns CompletedProcess with bytes stdout/stderr."""
    p = subprocess.run(args, input=input, env=kaldi_env(), capture_output=True, **kwargs)
    if check and p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip().splitlines()
        raise HdnnError(f"{args[0]} failed (exit {p.returncode}): {err[-1] if err else ''}")
    return p

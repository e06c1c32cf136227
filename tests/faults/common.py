"""What every fault case asserts: exit status 1, one line on stderr naming what is at fault,
no Python traceback."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STEPS = ROOT / "steps_py"


def run(name, *args, timeout=600, env=None):
    """Run steps_py/<name>.py; the CompletedProcess (text), whatever its exit status."""
    cmd = [sys.executable, str(STEPS / f"{name}.py"), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def assert_one_line_error(p, *names):
    """p failed with exit 1 and a last stderr line `<step>: error: ...` naming each of `names`,
    with no traceback anywhere on stderr."""
    assert p.returncode == 1, (p.returncode, p.stderr[-2000:])
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    last = p.stderr.strip().splitlines()[-1]
    assert ": error: " in last, last
    for name in names:
        assert str(name) in last, (name, last)
    return last

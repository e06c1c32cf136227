"""hdnn/slots.py: at most N holders of a machine's search slots at once, across processes."""
import os
import signal
import subprocess
import sys
import time

import pytest

from hdnn.errors import HdnnError
from hdnn.slots import parse_slots, search_slot

HOLD = """
import sys, time
from hdnn.slots import search_slot
with search_slot(sys.argv[1]):
    start = time.monotonic()
    time.sleep(float(sys.argv[2]))
    print(start, time.monotonic())
"""


def _hold_all(spec, n, seconds):
    """(start, end) of each of n processes holding a slot of spec for `seconds`."""
    procs = [subprocess.Popen([sys.executable, "-c", HOLD, spec, str(seconds)], stdout=subprocess.PIPE, text=True)
             for _ in range(n)]
    spans = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        spans.append(tuple(map(float, out.split())))
    return spans


def _most_at_once(spans):
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    at_once = most = 0
    for _, d in events:
        at_once += d
        most = max(most, at_once)
    return most


@pytest.mark.parametrize("slots", [1, 2])
def test_no_more_processes_than_slots_hold_one_at_once(tmp_path, slots):
    spans = _hold_all(f"{tmp_path}/slots:{slots}", 4, 1.5)
    assert _most_at_once(spans) == slots


def test_a_killed_holder_frees_its_slot(tmp_path):
    spec = f"{tmp_path}/slots:1"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, spec, "600"], stdout=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (tmp_path / "slots" / "slot.0.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    spans = _hold_all(spec, 1, 0.1)
    assert len(spans) == 1


def test_unset_waits_for_nothing(monkeypatch):
    monkeypatch.delenv("HDNN_SEARCH_SLOTS", raising=False)
    with search_slot():
        pass
    with search_slot(""):
        pass


@pytest.mark.parametrize("spec", ["8", "/tmp/x:", "/tmp/x:0", ":2", "/tmp/x:two"])
def test_a_bad_value_is_one_clear_error(spec):
    with pytest.raises(HdnnError, match="HDNN_SEARCH_SLOTS=.*not DIR:N"):
        parse_slots(spec)

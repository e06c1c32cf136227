"""run_demo.sh's order of work: SDM's stages beside IHM's 3-9 once IHM's 0-2 (what both mics share)
are done, SDM's 5-6 once its own 4 and IHM's 4 (the GMM) are, SDM's 7-9 once its own 6 and IHM's 5
(the teacher) are, the results after both, and a failure on either side stopping the demo with a
non-zero exit.

The demo itself takes over an hour, so these run the real run_demo.sh in a copy of the
repository's layout whose tools/setup.sh and egs/ami/run.sh only record when they were called
(the recipe's own behaviour is tested by test_recipe_py.py on the ci corpus)."""
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

RUN_SH = r"""#!/usr/bin/env bash
# records "start|end <mic> <first>-<last stage>" with a time stamp; FAIL="<mic> <first>-<last>" fails
# there; each call lasts SLEEP_<mic>_<first>_<last> seconds (default 0.5)
mic=all first=0 last=100
while [ $# -gt 0 ]; do
  case $1 in
    --mic) mic=$2 ;;
    --stage) first=$2 ;;
    --stop-stage) last=$2 ;;
  esac
  shift
done
key="$mic $first-$last"
echo "$(date +%s.%N) start $key" >> "$CALLS"
var=SLEEP_$(echo "$key" | tr ' -' '__')
sleep "${!var:-0.5}"
case "${FAIL:-}" in "$key") echo "failing $key"; exit 1 ;; esac
echo "$(date +%s.%N) end $key" >> "$CALLS"
"""


@pytest.fixture
def demo(tmp_path):
    root = tmp_path / "hdnn"
    (root / "tools").mkdir(parents=True)
    (root / "egs" / "ami").mkdir(parents=True)
    shutil.copy(ROOT / "run_demo.sh", root / "run_demo.sh")
    (root / "tools" / "setup.sh").write_text("#!/usr/bin/env bash\ntrue\n")
    (root / "egs" / "ami" / "run.sh").write_text(RUN_SH)
    for f in ("run_demo.sh", "tools/setup.sh", "egs/ami/run.sh"):
        (root / f).chmod(0o755)
    return root


def run_demo(root, calls, **env):
    env = {**os.environ, "CALLS": str(calls), **env}
    return subprocess.run(["bash", str(root / "run_demo.sh")], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def read_calls(calls):
    """{(event, key): time}"""
    out = {}
    for line in calls.read_text().splitlines():
        t, event, key = line.split(" ", 2)
        out[(event, key)] = float(t)
    return out


def test_sdm_runs_beside_ihm_and_each_part_after_what_it_needs_of_ihm(demo, tmp_path):
    calls = tmp_path / "calls"
    # IHM's 3-4 and 6-9 long enough for SDM's parts to start beside them on a busy machine: SDM polls
    # for IHM's GMM every 5 s, so its 7-9 can start up to ~6.5 s after its 0-4 (1 s) began
    r = run_demo(demo, calls, SLEEP_sdm1_0_4="1", SLEEP_ihm_3_4="2", SLEEP_ihm_6_9="12")
    assert r.returncode == 0, r.stdout + r.stderr
    c = read_calls(calls)
    assert c[("end", "ihm 0-2")] <= c[("start", "sdm1 0-4")]
    assert c[("start", "sdm1 0-4")] < c[("end", "ihm 3-4")]  # side by side with IHM's GMM
    assert c[("end", "ihm 3-4")] <= c[("start", "ihm 5-5")]
    assert c[("start", "sdm1 5-6")] >= max(c[("end", "ihm 3-4")], c[("end", "sdm1 0-4")])
    assert c[("end", "ihm 5-5")] <= c[("start", "ihm 6-9")]
    assert c[("start", "sdm1 7-9")] >= max(c[("end", "ihm 5-5")], c[("end", "sdm1 5-6")])
    assert c[("start", "sdm1 7-9")] < c[("end", "ihm 6-9")]  # side by side with IHM's 6-9
    assert c[("start", "all 11-100")] >= max(c[("end", "sdm1 7-9")], c[("end", "ihm 6-9")])
    assert (demo / "egs/ami/exp/sdm1/run_demo.log").exists()
    assert not (demo / "egs/ami/exp/sdm1/.ihm_gmm_ready").exists()
    assert not (demo / "egs/ami/exp/sdm1/.ihm_teacher_ready").exists()


def test_sdm_waits_for_this_demos_ihm_gmm_and_teacher(demo, tmp_path):
    calls = tmp_path / "calls"
    for name in (".ihm_gmm_ready", ".ihm_teacher_ready"):  # left by a demo that was stopped
        stale = demo / "egs/ami/exp/sdm1" / name
        stale.parent.mkdir(parents=True, exist_ok=True)
        stale.touch()
    r = run_demo(demo, calls, SLEEP_ihm_3_4="2", SLEEP_ihm_5_5="7")  # SDM polls every 5 s
    assert r.returncode == 0, r.stdout + r.stderr
    c = read_calls(calls)
    assert c[("end", "sdm1 0-4")] < c[("end", "ihm 3-4")] <= c[("start", "sdm1 5-6")]
    assert c[("end", "sdm1 5-6")] < c[("end", "ihm 5-5")] <= c[("start", "sdm1 7-9")]


@pytest.mark.parametrize("stages", ["0-4", "5-6"])
def test_a_failing_sdm_part_fails_the_demo_and_names_its_log(demo, tmp_path, stages):
    calls = tmp_path / "calls"
    r = run_demo(demo, calls, FAIL=f"sdm1 {stages}")
    assert r.returncode != 0
    assert "SDM's stages failed" in r.stderr and "exp/sdm1/run_demo.log" in r.stderr
    assert f"failing sdm1 {stages}" in r.stderr  # the end of its log
    c = read_calls(calls)
    assert ("start", "sdm1 7-9") not in c and ("start", "all 11-100") not in c


@pytest.mark.parametrize("stages", ["3-4", "5-5", "6-9"])
def test_a_failing_ihm_stops_the_sdm_beside_it(demo, tmp_path, stages):
    calls = tmp_path / "calls"
    r = run_demo(demo, calls, FAIL=f"ihm {stages}", SLEEP_sdm1_0_4="3")
    assert r.returncode != 0
    time.sleep(4)  # an SDM run left alive would have finished by now
    c = read_calls(calls)
    assert ("start", "sdm1 0-4") in c
    assert ("end", "sdm1 0-4") not in c  # killed, not left running
    assert ("start", "sdm1 5-6") not in c and ("start", "sdm1 7-9") not in c

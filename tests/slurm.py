"""A one-node Slurm cluster on localhost (Debian's slurm-wlm and munge, installed by
tools/install_slurm.sh from run_tests.sh), started for a test session as root: slurmctld and
slurmd with a private configuration (SLURM_CONF), state and logs under a temporary dir and free
ports, so a system's own Slurm is left alone. Kaldi's own slurm.pl submits to it."""
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

SLURM_PL_CONF = """\
# Kaldi's slurm.pl configuration for the test cluster (its partition is named "debug").
command sbatch --export=PATH --ntasks-per-node=1
option time=* --time $0
option mem=* --mem-per-cpu $0
option mem=0
option num_threads=* --cpus-per-task $0 --ntasks-per-node=1
option num_threads=1 --cpus-per-task 1 --ntasks-per-node=1
default gpu=0
option gpu=0 -p debug
option gpu=* -p gpu --gres=gpu:$0
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _why_not():
    """Why this machine cannot run the test cluster, or None."""
    reason = os.environ.get("HDNN_NO_SLURM_REASON")
    if reason:
        return reason
    missing = [b for b in ("slurmctld", "slurmd", "munged", "sbatch", "sinfo")
               if not shutil.which(b) and not Path(f"/usr/sbin/{b}").exists()]
    if missing:
        return f"Slurm is not installed (no {', '.join(missing)}; tools/install_slurm.sh installs it)"
    if os.geteuid() != 0:
        return "starting the Slurm daemons needs root"
    return None


def _node_line():
    """slurmd -C's description of this machine (NodeName=... CPUs=... RealMemory=...)."""
    out = subprocess.run(["/usr/sbin/slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("NodeName="))
    fields = dict(f.split("=", 1) for f in line.split())
    return fields["NodeName"], " ".join(f"{k}={v}" for k, v in fields.items() if k != "UpTime")


def _start_munge(work):
    """munged's default socket, started unless a munged already answers there."""
    if subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
        return None
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        subprocess.run(["/usr/sbin/mungekey", "--create"], check=True, capture_output=True)
        shutil.chown(key, "munge", "munge")
    for d in ("/run/munge", "/var/log/munge", "/var/lib/munge"):
        Path(d).mkdir(parents=True, exist_ok=True)
        shutil.chown(d, "munge", "munge")
    subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True, capture_output=True)
    for _ in range(100):
        if subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
            return Path("/run/munge/munged.pid")
        time.sleep(0.05)
    raise RuntimeError("munged did not start")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A running one-node cluster; yields the path of a Kaldi slurm.pl config for it. Skipped,
    with the reason, where the daemons cannot run."""
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("slurm")
    for d in ("state", "spool", "log"):
        (work / d).mkdir()
    node, node_line = _node_line()
    conf = work / "slurm.conf"
    conf.write_text(f"""ClusterName=hdnntest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={work}/state
SlurmdSpoolDir={work}/spool
SlurmctldPidFile={work}/slurmctld.pid
SlurmdPidFile={work}/slurmd.pid
SlurmctldLogFile={work}/log/slurmctld.log
SlurmdLogFile={work}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
MinJobAge=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={work}/log/jobcomp.log
{node_line.replace(f"NodeName={node}", f"NodeName={node} NodeAddr=127.0.0.1")} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
""")
    old_conf = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    munge_pid = _start_munge(work)
    subprocess.run(["/usr/sbin/slurmctld", "-c", "-f", str(conf)], check=True, capture_output=True)
    subprocess.run(["/usr/sbin/slurmd", "-f", str(conf)], check=True, capture_output=True)
    try:
        for _ in range(200):
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout.strip()
            if state == "idle":
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the test Slurm node did not come up (state {state!r}; logs in {work}/log)")
        slurm_pl_conf = work / "slurm.pl.conf"
        slurm_pl_conf.write_text(SLURM_PL_CONF)
        yield SimpleNamespace(conf=conf, slurm_pl_conf=slurm_pl_conf, jobcomp=work / "log" / "jobcomp.log")
    finally:
        for pid_file in (work / "slurmd.pid", work / "slurmctld.pid", munge_pid):
            if pid_file is not None and pid_file.exists():
                try:
                    os.kill(int(pid_file.read_text().split()[0]), 15)
                except (ProcessLookupError, ValueError):
                    pass
        if old_conf is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old_conf

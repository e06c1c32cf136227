"""Parallel jobs with Kaldi's `$cmd` contract: `$cmd JOB=1:$nj <log> <command>`.

A step hands its `--cmd` (as egs/*/cmd.sh sets $train_cmd and $decode_cmd), the number of jobs,
a log file and a command whose arguments may hold the word JOB; each of the `nj` jobs runs the
command with JOB replaced by its number and writes its own log, JOB replaced likewise.

- `run.pl` (with Kaldi's options, `--max-jobs-run N` heeded, the others accepted) runs the jobs
  on this machine, built in, so that no Kaldi is needed: logs as Kaldi's run.pl writes them
  (`# <command>`, `# Started at`, the output, `# Accounting:`, `# Ended (code N)`).
- Anything else is run as a command with the same interface: Kaldi's `queue.pl`, `slurm.pl` or
  its own `run.pl` given as a path, with their options (`slurm.pl --mem 2G`), found on PATH or
  by path.

A job that fails makes `run` raise one HdnnError naming the job, its log and the last error
line the job wrote there.
"""
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from hdnn.errors import HdnnError

log = logging.getLogger(__name__)

RUN_PL_OPTIONS = ("--max-jobs-run", "--num-threads", "--mem", "--gpu", "--config", "--time")


def python_command(module, *args):
    """The command of a job that runs `python -m module args...` with this interpreter."""
    return [sys.executable, "-m", module, *[str(a) for a in args]]


def run(cmd, nj, log_file, command, what=None, progress=True):
    """Run `command` (a list of words) as jobs JOB=1..nj through `cmd`; `log_file` holds the
    word JOB. `what` names the work in messages (default: the log's name)."""
    try:
        words = shlex.split(cmd or "run.pl")
    except ValueError as e:
        raise HdnnError(f"--cmd {cmd!r}: {e}") from None
    log_file = str(log_file)
    if "JOB" not in log_file:
        raise HdnnError(f"{log_file}: a parallel job's log name needs JOB in it")
    what = what or Path(log_file).name.replace(".JOB", "").removesuffix(".log")
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    command = [str(w) for w in command]
    if words[0] == "run.pl":
        def job_command(job):
            return [w.replace("JOB", str(job)) for w in command], log_file.replace("JOB", str(job)), None

        failed = _run_local(_max_jobs(words), range(1, nj + 1), job_command, what, progress)
    else:
        failed = _run_external(words, nj, log_file, command, what)
    if failed:
        job = failed[0]
        more = f"; {len(failed) - 1} more of the {nj} jobs failed" if len(failed) > 1 else ""
        raise HdnnError(f"{what}: job {job} of {nj} failed: {_job_error(log_file, job)} "
                        f"(log: {log_file.replace('JOB', str(job))}){more}")


def _max_jobs(words):
    """--max-jobs-run of a `run.pl [options]` command (default: the number of CPUs, as run.pl)."""
    limit = os.cpu_count() or 1
    i = 1
    while i < len(words):
        opt = words[i]
        if opt not in RUN_PL_OPTIONS or i + 1 >= len(words):
            raise HdnnError(f"--cmd {shlex.join(words)}: run.pl takes {', '.join(RUN_PL_OPTIONS)} "
                            f"with a value, not {opt!r}")
        if opt == "--max-jobs-run":
            try:
                limit = int(words[i + 1])
            except ValueError:
                limit = 0
            if limit < 1:
                raise HdnnError(f"--cmd {shlex.join(words)}: bad --max-jobs-run {words[i + 1]!r}")
        i += 2
    return limit


def _run_local(max_jobs, ids, job_command, what=None, progress=False):
    """run.pl: the jobs `ids`, up to `max_jobs` at a time on this machine, job_command(job)
    giving (argv, log file, the command as the log shows it or None); returns the failed jobs."""
    from tqdm import tqdm

    pending, running, failed = list(ids), {}, []
    with tqdm(total=len(pending), desc=what, unit="job", disable=not progress or len(pending) == 1) as bar:
        while pending or running:
            while pending and len(running) < max_jobs:
                job = pending.pop(0)
                running[job] = _start(*job_command(job))
            time.sleep(0.02)
            for job, (proc, f, start) in list(running.items()):
                if proc.poll() is None:
                    continue
                _finish(f, proc.returncode, start)
                del running[job]
                bar.update()
                if proc.returncode != 0:
                    failed.append(job)
    return sorted(failed)


def _start(argv, log_file, shown=None):
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    f = open(log_file, "w")
    f.write(f"# {shown or shlex.join(argv)}\n# Started at {time.strftime('%a %b %d %H:%M:%S %Z %Y')}\n#\n")
    f.flush()
    proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc, f, time.time()


def _finish(f, code, start):
    elapsed = int(time.time() - start)
    status = f"code {code}" if code >= 0 else f"code {128 - code}; signal {-code}"
    f.write(f"# Accounting: time={elapsed} threads=1\n"
            f"# Ended ({status}) at {time.strftime('%a %b %d %H:%M:%S %Z %Y')}, elapsed time {elapsed} seconds\n")
    f.close()


def _run_external(words, nj, log_file, command, what):
    """queue.pl, slurm.pl or any command with their interface; returns the failed job numbers
    (read from the ends of the logs when it fails)."""
    exe = shutil.which(words[0])
    if exe is None:
        raise HdnnError(f"--cmd {shlex.join(words)}: no such command {words[0]!r} "
                        f"(put Kaldi's utils/parallel on PATH, or give its path)")
    argv = [exe, *words[1:], f"JOB=1:{nj}", log_file, *command]
    log.info("%s: %s", what, shlex.join(argv))
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if proc.returncode == 0:
        return []
    codes = {job: _ended_code(log_file.replace("JOB", str(job))) for job in range(1, nj + 1)}
    failed = [job for job, code in codes.items() if code != 0]
    if not failed or all(code is None for code in codes.values()):  # the submission itself failed
        lines = proc.stdout.strip().splitlines() or [f"exit code {proc.returncode}"]
        raise HdnnError(f"{what}: {Path(words[0]).name} failed: {lines[-1]}")
    return failed


def _ended_code(path):
    """The exit code a job's log ends with: run.pl's `# Ended (code N)`, queue.pl's and
    slurm.pl's `# Finished at ... with status N`; None without such a line (or a log)."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("# Ended (code "):
            return int(line[len("# Ended (code "):].split(")")[0].split(";")[0])
        if line.startswith("# Finished at ") and " with status " in line:
            return int(line.rsplit(" with status ", 1)[1].split()[0])
    return None


def _job_error(log_file, job):
    """The line of a job's log that reports its error: a Python step's first `name: error: ...`
    (under torchrun, or in a pipe whose other programs fail after it), else a Kaldi program's
    first `ERROR (...)`, else the last line that names an error (else its last line of output)."""
    try:
        lines = [line for line in Path(log_file.replace("JOB", str(job))).read_text(errors="replace").splitlines()
                 if line.strip() and not line.startswith("#") and "KaldiFatalError" not in line]
    except OSError:
        return "no log written"
    ours = [line for line in lines if re.match(r"[\w.-]+: error: ", line)]
    kaldi = [line for line in lines if line.startswith("ERROR (")]
    if ours or kaldi:
        return re.sub(r"^[\w.-]+: error: ", "", (ours or kaldi)[0].strip())  # the program's name: the log says it
    for line in reversed(lines):
        if "error" in line.lower() or "Traceback" in line:
            return line.strip()
    return lines[-1].strip() if lines else "no output"


# ---------------------------------------------------------------- run.pl's command line

def _run_pl_word(word):
    """An argument as run.pl puts it into the command line it gives bash."""
    if re.fullmatch(r"\S+", word):
        return word
    return f"'{word}'" if '"' in word else f'"{word}"'


def main(argv=None):
    """`run.pl [options] [JOB=1:N] <log> <command...>` (tools/bin/run.pl): Kaldi's utils/run.pl
    for machines without Kaldi. The command words are joined as run.pl joins them and run by
    bash (so `\\|` pipes work); exit status 1 when a job fails."""
    argv = list(sys.argv[1:] if argv is None else argv)
    words = ["run.pl"]
    while argv and argv[0].startswith("--"):
        words, argv = words + argv[:2], argv[2:]
    var, ids = None, [1]
    m = re.fullmatch(r"([A-Za-z_]\w*)=(\d+)(?::(\d+))?", argv[0]) if argv else None
    if m:
        var, first, last = m.group(1), int(m.group(2)), int(m.group(3) or m.group(2))
        ids, argv = range(first, last + 1), argv[1:]
    if len(argv) < 2:
        print("usage: run.pl [--max-jobs-run N] [JOB=1:N] <log-file> <command...>", file=sys.stderr)
        return 1
    log_file, line = argv[0], "".join(_run_pl_word(w) + " " for w in argv[1:])
    if var and len(ids) > 1 and var not in log_file:
        print(f"run.pl: you are trying to run a parallel job but you are putting the output into just one "
              f"log file ({log_file})", file=sys.stderr)
        return 1
    try:
        max_jobs = _max_jobs(words)
    except HdnnError as e:
        print(f"run.pl: {e}", file=sys.stderr)
        return 1
    def job_command(job):
        text = line.replace(var, str(job)) if var else line
        return ["bash", "-c", text], log_file.replace(var, str(job)) if var else log_file, text

    failed = _run_local(max_jobs, ids, job_command)
    if failed:
        if len(ids) == 1:
            where = log_file.replace(var, str(ids[0])) if var else log_file
            print(f"run.pl: job failed, log is in {where}", file=sys.stderr)
        else:
            print(f"run.pl: {len(failed)} / {len(ids)} failed, log is in {log_file.replace(var, '*')}",
                  file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

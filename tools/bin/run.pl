#!/usr/bin/env bash
# run.pl for machines without Kaldi: Kaldi's utils/run.pl contract (`run.pl [options] JOB=1:N
# <log> <command...>`, the command run by bash, JOB replaced in the log and the command) by
# hdnn's built-in runner (hdnn/jobs.py). egs/ami/path.sh puts it at the end of PATH, so Kaldi's
# own utils/run.pl is used where there is one.
root=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
python=$root/.venv/bin/python
[ -x "$python" ] || python=python3
exec "$python" -m hdnn.jobs "$@"

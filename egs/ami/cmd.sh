# How parallel jobs run with --backend kaldi (Kaldi's run.pl / queue.pl / slurm.pl).
# The Python steps parallelise over --nj processes on this machine themselves.
#
# On one machine (default):
export train_cmd="run.pl --max-jobs-run ${max_jobs_run:-2}"
export decode_cmd="run.pl --max-jobs-run ${max_jobs_run:-2}"
# On a Grid Engine cluster:
#   export train_cmd="queue.pl --mem 2G"
#   export decode_cmd="queue.pl --mem 4G"
# On Slurm:
#   export train_cmd="slurm.pl --mem 2G"
#   export decode_cmd="slurm.pl --mem 4G"

"""The programs that parallel jobs run (`python -m hdnn.bin.NAME`), as Kaldi's steps run its
binaries through `$cmd JOB=1:$nj` (hdnn/jobs.py): one job's share of a step's work, inputs and
outputs named on the command line, messages on stderr (the job's log). Importing hdnn pins each
job to one thread and to the same numeric kernels as every other process (hdnn/numerics.py)."""

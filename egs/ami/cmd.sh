# How the parallel jobs of every step run: Kaldi's `$cmd JOB=1:$nj <log> <command>` contract,
# for Kaldi's own steps (--backend kaldi) and the Python steps alike (hdnn/jobs.py).
#
# On one machine (default): run.pl. The Python steps run it built in (no Kaldi needed); Kaldi's
# steps use utils/run.pl.
export train_cmd="run.pl --max-jobs-run ${max_jobs_run:-2}"
export decode_cmd="run.pl --max-jobs-run ${max_jobs_run:-2}"
export cuda_cmd="run.pl"   # nnet training: one job (run.sh --use-gpu, --nnet-procs)
# The Python steps' graph searches on this machine, from every recipe run in this dir at once
# (../../run_demo.sh runs IHM and SDM side by side): at most one per core, whatever the number
# of systems and jobs (hdnn/slots.py). Set it empty for jobs on a cluster. (nproc counts the
# cores this process may use, but heeds path.sh's OMP_NUM_THREADS=1.)
export HDNN_SEARCH_SLOTS=${HDNN_SEARCH_SLOTS-$PWD/exp/.search_slots:$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}
# On a Grid Engine cluster (Kaldi's utils/parallel/queue.pl and its conf/queue.conf):
#   export train_cmd="$KALDI_ROOT/egs/wsj/s5/utils/parallel/queue.pl --mem 2G"
#   export decode_cmd="$KALDI_ROOT/egs/wsj/s5/utils/parallel/queue.pl --mem 4G"
#   export cuda_cmd="$KALDI_ROOT/egs/wsj/s5/utils/parallel/queue.pl --gpu 1"
# On Slurm (Kaldi's utils/parallel/slurm.pl; conf/slurm.conf names the partitions and options):
#   export train_cmd="$KALDI_ROOT/egs/wsj/s5/utils/parallel/slurm.pl --config conf/slurm.conf --mem 2G"
#   export decode_cmd="$KALDI_ROOT/egs/wsj/s5/utils/parallel/slurm.pl --config conf/slurm.conf --mem 4G"
#   export cuda_cmd="$KALDI_ROOT/egs/wsj/s5/utils/parallel/slurm.pl --config conf/slurm.conf --gpu 1"
# and export HDNN_SEARCH_SLOTS= (no machine-wide limit on searches).
# With GPUs, train with run.sh --use-gpu yes (and --nnet-procs N for N GPUs on the job's node).
# The jobs need the same file paths on every node (a shared file system) and this Python
# environment (the absolute path of its interpreter is in each job's command).

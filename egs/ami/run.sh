#!/usr/bin/env bash
# AMI recipe for small-footprint acoustic models (Lu, Guo & Renals, ICASSP 2017):
# GMM alignments -> DNN teacher (CE) -> highway-DNN student (CE, and KD from the teacher)
# -> decoding -> a WER table in RESULTS.md.
#
# By default it runs on the embedded mini meeting corpus, generated here. With real AMI:
#   KALDI_ROOT=/path/to/kaldi ./run.sh --corpus ami --ami-dir /path/to/amicorpus
#
# Stages (--stage N --stop-stage M):
#   0 corpus + data dirs     1 features (MFCC, fbank)   2 lang + LM
#   3 mono                   4 tri + graph + GMM decode
#   5 teacher DNN (CE)       6 student HDNN (CE) + small DNN (CE)
#   7 student HDNN (KD), and KD students that also learn from untranscribed audio labelled by
#     the teacher                                       8 nnet decoding
#   9 speaker adaptation of the KD student's gates (unsupervised, teacher-labelled, supervised)
#     and its decoding; the data-amount curve (adaptation on the first N seconds of each speaker)
#  10 sequence training (sMBR) of the teacher and the KD student, in the teacher-student
#     variants, and its decoding (the denominator, --smbr-denominator: lattices of
#     latgen-faster-mapped, or a transition-id bigram of the nnet's alignments)
#                                                       11 results table
#
# --backend kaldi runs the GMM, lang, graph, decoding and scoring steps with Kaldi's own
# steps/ and utils/ (linked from $KALDI_ROOT/egs/wsj/s5) and pipes the nnets' log-likelihoods
# into latgen-faster-mapped; --backend py runs their mirrors in steps_py/. The nnet steps are
# steps_py/ in both. A rerun skips the steps that completed (<dir>/.done) and resumes the others.

set -euo pipefail
cd "$(dirname "$0")"
command_line="$0 $*"

# Begin configuration section.
stage=0
stop_stage=100
mic=ihm            # ihm | sdm1
nj=2
backend=           # kaldi | py (default: kaldi when KALDI_ROOT holds a build, else py)
corpus=mini        # mini (generated) | ami
ami_dir=           # AMI corpus dir, for --corpus ami
data_root=         # mini corpus already generated elsewhere (make_mini_ami.py's <data-root>): copy it
size=demo          # mini corpus size: ci | demo | large
seed=0
lm_prune=1e-7      # entropy pruning of the 3-gram (AMI's LMs are "pr1-7")
num_leaves=        # tri tree leaves and Gaussians: default 2000 and 4000 on the mini corpus
tot_gauss=         # (egs/ami/README.md, "Settings"), 5000 and 80000 on AMI (Kaldi's egs/ami/s5b tri2)
teacher=teacher-small   # model presets (steps_py/nnet_info.py --preset NAME)
student=student-small
small_dnn=dnn-small
kd_lambda=1.0      # the KD students' weight of the teacher's soft targets (1 - it: the alignments')
kd_temperature=1   # and their temperature: the dev optimum of local/tune_kd.sh (README.md, stage 7)
# and their own train.py options, before --train-opts (empty: newbob's schedule as for the CE nnets,
# the dev optimum of local/tune_kd.sh --schedules; README.md, stage 7)
kd_train_opts=
# Stage 7's KD students learn from the teacher's top-k posteriors of each frame (at --kd-temperature),
# computed once (steps_py/forward.py) rather than in every epoch; true: the teacher runs on the fly.
kd_online=false
kd_topk=20
# Stage 7: student_kd_u<N>x, student_kd also trained on N times as much untranscribed audio (the
# corpus's untranscribed meetings: training speakers, no transcripts), labelled by the teacher alone.
# Empty: every N of 1 2 4 that the corpus holds; "none": no such students.
untranscribed_factors=
# and their train.py options, after --kd-train-opts (README.md, stage 7)
untranscribed_train_opts=
train_opts=        # extra options for every steps_py/train.py run
# Distant mics: the nnets train on the IHM tri model's alignments of the parallel headset audio and
# decode with its tree and graph (Kaldi's AMI --use-ihm-ali; run --mic ihm to stage 5 first), and
# student_kd is distilled from the IHM teacher's stored top-k posteriors of that headset audio
# (whatever --kd-online), student_kd_sdmt from the mic's own teacher (as student_kd on IHM).
# false: the mic's own tri alignments and graph, student_kd from the mic's own teacher.
use_ihm_ali=true
use_gpu=no         # steps_py/train.py --use-gpu: no | yes | optional (yes: set cuda_cmd in cmd.sh)
nnet_procs=1       # processes per training job (> 1: torchrun, data-parallel; the effective
                   # minibatch grows with them: README.md, "Parallel jobs and clusters")
nnet_jobs=2        # jobs run side by side in stages 6-9: trainings, systems' decodings, adaptations
# what stage 8 decodes (empty: teacher student_ce dnn_small student_kd, and stage 7's other students);
# when set, stage 7 trains only the students it names (student_kd, student_kd_sdmt, student_kd_u<N>x)
nnet_systems=
# Stage 9: per-speaker adaptation of student_kd on each test set (steps_py/adapt.py): targets from
# its first pass (unsup), the teacher's posteriors (teacher), the reference (sup: an oracle bound).
adapt_systems="student_adapt_unsup student_adapt_teacher student_adapt_sup"
adapt_opts="--update gates"           # every adaptation
# Alignment targets are left unmixed with the unadapted posteriors (they would pull the gates back
# towards the first pass's errors; early stopping regularises), the teacher's are mixed
# (egs/ami/README.md, "Speaker adaptation").
adapt_ali_opts="--kld-rho 0"
adapt_teacher_opts="--kld-rho 0.5"
# --backend py: the adapted systems are searched once per set, at this system's dev setting (as
# the curve is); empty: each sweeps dev as stage 8's systems do (4-5 searches, egs/ami/README.md,
# "Budgets"). The Kaldi backend sweeps every system on its lattices.
adapt_setting_from=student_kd
# Stage 9's data-amount curve: each speaker of these sets split in halves (utterances in time
# order); student_kd adapted on the first N seconds of the first half (0: all of it), with
# student_adapt_unsup's targets, for each kind of update; decoded on the second half at
# student_kd's dev setting. Empty: no curve.
adapt_curve_sets="eval"
adapt_curve_seconds="10 30 60 0"
adapt_curve_updates="gates lhuc all"
# Stage 10: sMBR as nnet1's train_mpe.sh (steps_py/train_smbr.py) from the nnet's own alignments
# and a denominator (--smbr-denominator): lattices, Kaldi's latgen-faster-mapped over a unigram LM
# of the training transcripts as make_denlats.sh builds them (they need a Kaldi build, whichever
# the backend), or graph, lattice-free, a transition-id bigram of those alignments
# (make_den_graph.py). Default: lattices with --backend kaldi, graph with --backend py.
# teacher_smbr, student_smbr (student_kd), student_ts_smbr (student_kd, with the teacher's soft
# targets mixed in), student_gate_smbr (student_kd, gates only), student_kd_smbrt (a KD student
# distilled from teacher_smbr).
smbr_systems="teacher_smbr student_smbr student_ts_smbr student_gate_smbr student_kd_smbrt"
smbr_denominator=
smbr_opts=""                          # every train_smbr.py run (after the variant's own options)
# train_smbr.py on the lattice-free denominator (--smbr-denominator graph), before the variant's options: its
# acoustic scale, chosen on dev (egs/ami/README.md, "Tuning sequence training on dev").
smbr_free_opts="--acoustic-scale 0.3"
smbr_ts_opts="--ts-weight 0.5 --temperature 1"
denlat_opts="--beam=13.0 --lattice-beam=7.0 --max-active=5000"   # make_denlats.sh's
made_by=           # the command recorded in RESULTS.md (default: this run.sh command line)
run_info=          # a line on the run recorded in RESULTS.md (commit, date, wall time)
# LM weight x word insertion penalty sweeps of the scoring, for both backends (local/score.sh):
# ranges that hold each system's best setting on the mini corpus, one penalty (egs/ami/README.md,
# "Settings"):
gmm_scoring_opts="--min-lmwt 12 --max-lmwt 32 --word-ins-penalty 0.0"
nnet_scoring_opts="--min-lmwt 5 --max-lmwt 13 --word-ins-penalty 0.0"
# --backend py: best-path search, once per point of the sweep (the wheels make no lattices), so the
# sweep runs on dev_tune, every ${dev_tune_part}th utterance of each dev speaker (1: on all of dev);
# dev and eval are then searched once each, at its best setting. The nnets' flatter scores keep
# more tokens alive, hence their narrower beam. How the sweep goes (--search grid | coarse |
# descent): the GMM's wide range coarse-to-fine, the nnets' by descent from LM weight 10, the
# inverse of nnet1's acoustic scale 0.1 (egs/ami/README.md, "The protocol").
dev_tune_part=2
gmm_decode_opts="--beam 10 --max-active 2000"
nnet_decode_opts="--beam 8 --max-active 2000"
gmm_search_opts="--search coarse"
nnet_search_opts="--search descent --lmwt-start 10"
# --backend kaldi: lattice generation options (beam, max_active, lattice_beam; acwt for nnets).
decode_config=conf/decode.conf
decode_dnn_config=conf/decode_dnn.conf
# End configuration section.
__option_names="stage stop_stage mic nj backend corpus ami_dir data_root size seed lm_prune num_leaves tot_gauss
  teacher student small_dnn kd_lambda kd_temperature kd_train_opts kd_online kd_topk untranscribed_factors untranscribed_train_opts train_opts use_ihm_ali use_gpu nnet_procs nnet_jobs nnet_systems adapt_systems adapt_opts adapt_ali_opts adapt_teacher_opts adapt_setting_from adapt_curve_sets adapt_curve_seconds adapt_curve_updates smbr_systems smbr_denominator smbr_opts smbr_free_opts smbr_ts_opts denlat_opts gmm_scoring_opts nnet_scoring_opts gmm_decode_opts nnet_decode_opts gmm_search_opts nnet_search_opts dev_tune_part decode_config decode_dnn_config made_by run_info"
usage_args="(see the stage list at the top of run.sh)"

. ./path.sh
. "$HDNN_ROOT/steps_py/parse_options.sh"
. local/smbr_systems.sh
. ./cmd.sh

if [ $corpus = ami ]; then : ${num_leaves:=5000} ${tot_gauss:=80000}; else : ${num_leaves:=2000} ${tot_gauss:=4000}; fi

# kaldi_has BINARY: KALDI_ROOT holds a build with that binary of src/bin.
kaldi_has() { [ -n "${KALDI_ROOT:-}" ] && [ -x "$KALDI_ROOT/src/bin/$1" ]; }
if [ -z "$backend" ]; then
  if kaldi_has copy-int-vector; then backend=kaldi; else backend=py; fi
fi
case $backend in
  kaldi)
    kaldi_has copy-int-vector || { echo "$0: --backend kaldi needs KALDI_ROOT pointing at a Kaldi build" >&2; exit 1; }
    ln -sfn "$KALDI_ROOT/egs/wsj/s5/steps" steps
    ln -sfn "$KALDI_ROOT/egs/wsj/s5/utils" utils ;;
  py) ;;
  *) echo "$0: unknown --backend $backend (kaldi|py)" >&2; exit 1 ;;
esac
[ -n "$smbr_denominator" ] || if [ $backend = kaldi ]; then smbr_denominator=lattices; else smbr_denominator=graph; fi
case $smbr_denominator in
  lattices)
    kaldi_has latgen-faster-mapped \
      || { echo "$0: --smbr-denominator lattices needs KALDI_ROOT pointing at a Kaldi build (latgen-faster-mapped)" >&2; exit 1; }
    ln -sfn "$KALDI_ROOT/egs/wsj/s5/utils" utils ;;   # make_denlats's graph and data splits
  graph) ;;
  *) echo "$0: unknown --smbr-denominator $smbr_denominator (lattices|graph)" >&2; exit 1 ;;
esac

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) $*"; }
py() { python "$HDNN_ROOT/steps_py/$1.py" "${@:2}"; }

# gmm NAME ARGS: a GMM/lang/graph/decoding step, from Kaldi's steps/ and utils/ or from steps_py/.
gmm() {
  local name=$1; shift
  if [ $backend = kaldi ]; then
    case $name in
      prepare_lang|mkgraph|format_lm|validate_data_dir|subset_data_dir|split_data) "utils/$name.sh" "$@" ;;
      *) "steps/$name.sh" "$@" ;;
    esac
  else
    py "$name" "$@"
  fi
}

# run_job $cmd [JOB=1:N] LOG COMMAND...: a Kaldi `$cmd` line; when a job fails, one line naming the
# failed job's log and the last error it wrote there (Kaldi's run.pl and queue.pl name the log only).
run_job() {
  local log= ids=1 a out l failed= err
  for a in "$@"; do
    case $a in JOB=*:*) ids=$(seq ${a#JOB=*:}) ;; *.log) log=$a; break ;; esac
  done
  for a in $ids; do [ -z "$log" ] || rm -f "${log//JOB/$a}"; done  # no earlier run's log to blame
  if out=$("$@" 2>&1); then [ -z "$out" ] || echo "$out"; return 0; fi
  for a in $ids; do  # the first job whose log ends in a failure
    l=${log//JOB/$a}
    if [ -n "$log" ] && grep -q -E '^# (Ended \(code [1-9]|Finished at .* with status [1-9])' "$l" 2>/dev/null; then
      failed=$l; break
    fi
  done
  # no such log (the submission failed, or the queue killed the job): the runner's own message
  [ -n "$failed" ] || { echo "$0: $1 failed: $(printf '%s\n' "$out" | grep . | tail -1)" >&2; exit 1; }
  # the Python steps' "name: error: ...", else Kaldi's ERROR (program[version]:...), else the last
  # line naming an error
  err=$(grep -m1 -E '^[[:alnum:]_.-]+: error: ' "$failed" | sed -E 's/^[[:alnum:]_.-]+: error: //') || true
  [ -n "$err" ] || err=$(grep -m1 '^ERROR (' "$failed") || true
  [ -n "$err" ] || err=$(grep -v -e '^#' -e 'KaldiFatalError' "$failed" | grep -E -i 'error|Traceback' | tail -1) || true
  echo "$0: job failed: ${err:-$(tail -1 "$failed")} (log: $failed)" >&2
  exit 1
}

# wanted SYSTEM: whether --nnet-systems names SYSTEM (or is empty: every system).
wanted() { [ -z "$nnet_systems" ] || [[ " $nnet_systems " == *" $1 "* ]]; }

# need FILE STAGE: fail clearly when an earlier stage has not been run.
need() { [ -e "$1" ] || { echo "$0: $1 is missing: run stage $2 first (--stage $2)" >&2; exit 1; }; }

# bg COMMAND...: COMMAND as a background job, at most $nnet_jobs at a time; bg_wait waits for them
# all and stops the recipe when one failed (its own message said why).
bg_pids=()
bg() {
  while [ $(jobs -rp | wc -l) -ge $nnet_jobs ]; do sleep 1; done
  "$@" &
  bg_pids+=($!)
}
bg_wait() {
  local p failed=0
  for p in ${bg_pids[@]+"${bg_pids[@]}"}; do wait $p || failed=1; done
  bg_pids=()
  [ $failed = 0 ] || exit 1
}

# step DIR COMMAND...: run COMMAND unless DIR/.done says it completed with the same command,
# the same inputs (every path the command names, and those in $deps) and the same $settings
# (options it takes from this script's variables); a changed one redoes it (steps_py/stage_done.py).
# Call it as `deps="PATH ..." settings="$opts" step DIR COMMAND...` when COMMAND hides them.
step() {
  local dir=$1; shift
  local state
  state=$(py stage_done --deps "${deps:-}" --settings "${settings:-}" check "$dir" "$@") || exit 1
  if [ "$state" = complete ]; then log "$dir is complete, skipping (remove $dir/.done to redo)"; return 0; fi
  [ "$state" = "not done" ] || log "$dir: $state: redoing it"
  rm -f "$dir/.done"
  "$@"
  mkdir -p "$dir"
  py stage_done --deps "${deps:-}" --settings "${settings:-}" write "$dir" "$@" || exit 1
}

data=data/$mic
exp=exp/$mic
sets="train dev eval"
graph=$exp/tri/graph
# the nnets' targets and transition model, and their decoding graph (see use_ihm_ali)
nnet_ali=$exp/tri_ali nnet_graph=$graph
case $use_ihm_ali in true|false) ;; *) echo "$0: --use-ihm-ali $use_ihm_ali: true or false" >&2; exit 1 ;; esac
case $kd_online in true|false) ;; *) echo "$0: --kd-online $kd_online: true or false" >&2; exit 1 ;; esac
[[ $dev_tune_part =~ ^[1-9][0-9]*$ ]] || { echo "$0: --dev-tune-part $dev_tune_part: a number, at least 1" >&2; exit 1; }
[[ $nnet_jobs =~ ^[1-9][0-9]*$ ]] || { echo "$0: --nnet-jobs $nnet_jobs: a number of jobs, at least 1" >&2; exit 1; }
kd_post=$exp/teacher_post  # student_kd's soft targets (stage 7)
if [ $mic != ihm ] && [ $use_ihm_ali = true ]; then
  nnet_ali=$exp/tri_ali_ihmdata nnet_graph=exp/ihm/tri/graph kd_post=$exp/ihm_teacher_post
fi

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: corpus and data dirs ($corpus)"
  if [ -n "$data_root" ]; then
    for d in $mic local; do
      [ -d data/$d ] && continue
      [ -d $data_root/$d ] || { echo "$0: no $data_root/$d (--data-root takes make_mini_ami.py's <data-root>)" >&2; exit 1; }
      mkdir -p data && rm -rf data/.$d.tmp && cp -r $data_root/$d data/.$d.tmp && mv data/.$d.tmp data/$d
    done
  elif [ $corpus = mini ]; then
    python local/make_mini_ami.py --size $size --seed $seed --nj $nj corpus/mini_ami data
  else
    [ -n "$ami_dir" ] || { echo "$0: --corpus ami needs --ami-dir" >&2; exit 1; }
    local/ami_data_prep.sh "$ami_dir" $mic data
  fi
  for s in $sets; do gmm validate_data_dir --no-feats $data/$s; done
fi

# features SET: MFCC + CMVN (GMM) in data/<mic>/SET, fbank + CMVN (nnet) in data/<mic>/SET_fbank.
features() {
  local s=$1
  gmm make_mfcc --nj $nj --cmd "$train_cmd" --mfcc-config conf/mfcc.conf $data/$s $exp/make_mfcc/$s mfcc/$mic
  gmm compute_cmvn_stats $data/$s $exp/make_mfcc/$s mfcc/$mic
  fbank_features $s
}

# fbank_features SET: fbank + CMVN (nnet) in data/<mic>/SET_fbank (a set without text too).
fbank_features() {
  local s=$1 f
  rm -rf $data/${s}_fbank
  mkdir -p $data/${s}_fbank
  for f in wav.scp text utt2spk spk2utt segments; do [ ! -f $data/$s/$f ] || cp $data/$s/$f $data/${s}_fbank/; done
  gmm make_fbank --nj $nj --cmd "$train_cmd" --fbank-config conf/fbank.conf $data/${s}_fbank $exp/make_fbank/$s fbank/$mic
  gmm compute_cmvn_stats $data/${s}_fbank $exp/make_fbank/$s fbank/$mic
}

# meetings DATA: the meeting ids of a data dir's segments (AMI_<meeting>_<channel> recordings), sorted.
meetings() { cut -d' ' -f2 $1/segments | awk -F_ '{print $2}' | sort -u; }

# set_factors: $factors, the N of the student_kd_u<N>x students (see the configuration section).
set_factors() {
  factors=
  if [ "$untranscribed_factors" = none ]; then return; fi
  local d=$data/untranscribed have want f
  if [ ! -f $d/segments ]; then
    [ -z "$untranscribed_factors" ] || { echo "$0: --untranscribed-factors: $d holds no untranscribed audio" >&2; exit 1; }
    return
  fi
  have=$(meetings $d | wc -l) want=$(meetings $data/train | wc -l)
  for f in ${untranscribed_factors:-1 2 4}; do
    if [ $((f * want)) -le $have ]; then factors="$factors $f"
    elif [ -n "$untranscribed_factors" ]; then
      echo "$0: --untranscribed-factors $f: $d holds $have meetings, not $f x $want (the training meetings)" >&2
      exit 1
    fi
  done
}

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: MFCC (GMM) and fbank (nnet) features"
  for s in $sets; do
    need $data/$s/wav.scp 0
    deps="$data/$s conf/mfcc.conf conf/fbank.conf" step $exp/make_feats/$s features $s
  done
  set_factors
  if [ -n "$factors" ]; then
    deps="$data/untranscribed conf/fbank.conf" step $exp/make_feats/untranscribed fbank_features untranscribed
  fi
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: lang dir, 3-gram LM, G.fst (shared by both mics)"
  need data/local/dict/lexicon.txt 0
  step data/lang gmm prepare_lang data/local/dict "<UNK>" data/local/lang_tmp data/lang
  step data/local/lm py train_lm --order 3 --prune-thresh $lm_prune data/local/lm_train.txt data/lang data/local/lm
  step data/lang_test gmm format_lm data/lang data/local/lm/lm_3gram.arpa.gz data/local/dict/lexicon.txt data/lang_test
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: monophone GMM"
  need $exp/make_feats/train/.done 1
  need data/lang/.done 2
  step $exp/mono gmm train_mono --nj $nj --cmd "$train_cmd" $data/train data/lang $exp/mono
  step $exp/mono_ali gmm align_si --nj $nj --cmd "$train_cmd" $data/train data/lang $exp/mono $exp/mono_ali
fi

# tune_set: the set whose sweep picks each system's LM weight and penalty: dev_tune (--backend py
# with --dev-tune-part above 1: searches cost a pass each) or dev (Kaldi's sweep of its lattices).
tune_set() { if [ $backend = py ] && [ $dev_tune_part -gt 1 ]; then echo dev_tune; else echo dev; fi; }

# decode_sets: the sets a system is decoded on, the tuning set first.
decode_sets() { if [ $(tune_set) = dev_tune ]; then echo dev_tune dev eval; else echo dev eval; fi; }

# tune_dirs: dev_tune, the GMM's and the nnets' data dirs of every ${dev_tune_part}th utterance of
# each dev speaker (in time order: every meeting and speaker in it).
tune_dirs() {
  local list=$data/dev_tune.list
  awk -v p=$dev_tune_part '{for (i = 2; i <= NF; i += p) print $i}' $data/dev/spk2utt > $list
  gmm subset_data_dir --utt-list $list $data/dev $data/dev_tune
  gmm subset_data_dir --utt-list $list $data/dev_fbank $data/dev_tune_fbank
  rm $list
}

# rest_dirs: dev_rest_fbank, the nnets' data dir of dev's utterances that are not in dev_tune: a
# system's dev decode searches these alone and takes dev_tune's own hypotheses at the setting
# chosen there (a search finds the same best path for an utterance whatever else it searches).
rest_dirs() {
  local list=$data/dev_rest.list
  awk 'NR == FNR {tune[$1]; next} !($1 in tune) {print $1}' $data/dev_tune_fbank/utt2spk $data/dev_fbank/utt2spk > $list
  gmm subset_data_dir --utt-list $list $data/dev_fbank $data/dev_rest_fbank
  rm $list
}

# tune_data: tune_dirs and rest_dirs as steps, where the tuning set is dev_tune (stages 4, 8 and
# 10 decode it).
tune_data() {
  if [ $(tune_set) = dev_tune ]; then
    deps="$data/dev $data/dev_fbank" settings=$dev_tune_part step $exp/make_feats/dev_tune tune_dirs
    deps="$data/dev_fbank $data/dev_tune_fbank" step $exp/make_feats/dev_rest rest_dirs
  fi
}

# tune_fbanks: the nnets' data dirs of dev_tune and dev's rest, where the tuning set is dev_tune.
tune_fbanks() { [ $(tune_set) = dev ] || echo $data/dev_tune_fbank $data/dev_rest_fbank; }

# reuses_tune SET [FROM]: true where a system's search of SET takes part of its hypotheses from its
# dev_tune decode (--backend py, dev searched at dev_tune's setting, not at system FROM's).
reuses_tune() { [ $backend = py ] && [ -z "${2:-}" ] && [ $1 = dev ] && [ $(tune_set) = dev_tune ]; }

# rest_search SYSTEM SET [FROM]: "DATA DECODE-DIR" where an nnet's search of SET reuses_tune: the data
# dir searched (rest_dirs) and the decode dir reused; nothing otherwise.
rest_search() {
  if reuses_tune $2 ${3:-}; then echo $data/dev_rest_fbank $exp/$1/decode_dev_tune; fi
}

# sweep_opts SYSTEM-DIR SET SCORING-OPTS SEARCH-OPTS: the py backend's search of a set: the tuning
# set is swept over SCORING-OPTS by SEARCH-OPTS, the others are searched once, at the LM weight
# and penalty it chose (the honest protocol).
sweep_opts() {
  local tune; tune=$(tune_set)
  if [ $2 = $tune ]; then echo "$4 $3"; return; fi
  setting_opts $1 $tune
}

# setting_opts SYSTEM-DIR [SET]: the py backend's options to search at dev_setting's one setting.
setting_opts() {
  local setting; setting=$(dev_setting "$@")
  set -- $setting
  echo "--min-lmwt $1 --max-lmwt $1 --word-ins-penalty $2"
}

# dev_setting SYSTEM-DIR [SET]: "LMWT WIP" of the system's best score on SET (dev: the setting dev
# and eval are scored at, as dev is searched at dev_tune's alone).
dev_setting() {
  local best=$1/decode_${2:-dev}/scoring_kaldi/best_wer
  [ -f $best ] || { echo "$0: $best is missing: decode ${2:-dev} first (the other sets are decoded at its setting)" >&2; exit 1; }
  local setting; setting=$(sed -n 's:.*/wer_\([0-9]*\)_\([-0-9.]*\)$:\1 \2:p' $best)
  [ -n "$setting" ] || { echo "$0: $best: no wer_<LMWT>_<WIP> in it" >&2; exit 1; }
  echo $setting
}

# dev_dep SYSTEM-DIR SET: what a set's decoding reads from the tuning set's (the setting it chose).
dev_dep() { local tune; tune=$(tune_set); if [ $2 != $tune ]; then echo $1/decode_$tune/scoring_kaldi/best_wer; fi; }

# nnet_dep SYSTEM SET [FROM]: the files a nnet system's decoding of SET reads (the setting: its
# tuning set's, or with FROM system FROM's dev setting; decode_system).
nnet_dep() {
  local setting; setting=$(if [ -n "${3:-}" ]; then echo $exp/$3/decode_dev/scoring_kaldi/best_wer; else dev_dep $exp/$1 $2; fi)
  echo "$exp/$1/final.pt $exp/$1/spk $nnet_graph $nnet_ali/final.mdl $data/${2}_fbank $setting $(rest_search "$@")"
}

# decode_gmm SET: decode and score a set with the tri GMM (where it reuses_tune, dev is searched where
# dev_tune was not).
decode_gmm() {
  if [ $backend = kaldi ]; then
    steps/decode.sh --nj $nj --cmd "$decode_cmd" --config $decode_config --scoring-opts "$gmm_scoring_opts" \
      $graph $data/$1 $exp/tri/decode_$1
  else
    local opts hyps=""; opts=$(sweep_opts $exp/tri $1 "$gmm_scoring_opts" "$gmm_search_opts")
    ! reuses_tune $1 || hyps="--hyps-from $exp/tri/decode_dev_tune"
    py decode --nj $nj --cmd "$decode_cmd" $gmm_decode_opts $opts $hyps $graph $data/$1 $exp/tri/decode_$1
  fi
}

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "Stage 4: triphone GMM (tri), alignments, graph, decoding"
  need $exp/mono_ali/.done 3
  need data/lang_test/.done 2
  step $exp/tri gmm train_deltas --cmd "$train_cmd" $num_leaves $tot_gauss $data/train data/lang $exp/mono_ali $exp/tri
  step $exp/tri_ali gmm align_si --nj $nj --cmd "$train_cmd" $data/train data/lang $exp/tri $exp/tri_ali
  step $graph gmm mkgraph data/lang_test $exp/tri $graph
  tune_data
  for s in $(decode_sets); do
    deps="$graph $exp/tri/final.mdl $data/$s $(dev_dep $exp/tri $s)" settings="$gmm_decode_opts $gmm_scoring_opts $gmm_search_opts tuned on $(tune_set)" \
      step $exp/tri/decode_$s decode_gmm $s
  done
fi

# train_nnet DIR ARGS: one steps_py/train.py run on the fbank features and tri alignments;
# sched_opts=OPTS (a KD student's schedule, kd_student's) come first, then --train-opts, then ARGS.
train_nnet() {
  local dir=$1 sched=${sched_opts:-}; shift
  need $nnet_ali/.done $([ $nnet_ali = $exp/tri_ali ] && echo 4 || echo 5)
  need $exp/make_feats/train/.done 1
  step $dir train_job $dir --cv-fraction 0.1 --seed $seed --use-gpu $use_gpu $sched $train_opts "$@" \
    $data/train_fbank $nnet_ali $dir
}

# train_job DIR ARGS: steps_py/train.py ARGS as one job through $cuda_cmd (as nnet1's train.sh is
# run), log in DIR/log/train_nnet.log; $nnet_procs > 1 starts it under torchrun on the job's node.
train_job() {
  local dir=$1; shift
  local launch=(python) resources=(--num-threads $nnet_procs)
  [ -n "${cuda_cmd:-}" ] || { echo "$0: cmd.sh sets no cuda_cmd (the nnet training's job command, e.g. run.pl)" >&2; exit 1; }
  if [ $nnet_procs -gt 1 ]; then
    launch=(python -m torch.distributed.run --standalone --nproc-per-node $nnet_procs)
  fi
  [ $use_gpu = no ] || resources+=(--gpu $nnet_procs)
  run_job $cuda_cmd "${resources[@]}" $dir/log/train_nnet.log "${launch[@]}" $HDNN_ROOT/steps_py/train.py "$@"
}

# spk_opts NNET-DIR: forward.py's options for a speaker-adapted system (stage 9).
spk_opts() { if [ -d $1/spk ]; then echo "--spk-params $1/spk"; fi; }

# forward_jobs CMD NNET-DIR DATA DIR [NAME [OPTS...]]: the nnet's log-likelihoods of DATA (or what
# forward.py OPTS make) in $nj jobs through CMD (one per split of DATA, as nnet-forward in
# steps/nnet/decode.sh), gathered in DIR/NAME.scp (NAME: loglikes).
forward_jobs() {
  local cmd=$1 nnet=$2 d=$3 dir=$4 name=${5:-loglikes}
  gmm split_data $d $nj
  run_job $cmd JOB=1:$nj $dir/log/forward.JOB.log python $HDNN_ROOT/steps_py/forward.py $(spk_opts $nnet) "${@:6}" \
    $d/split$nj/JOB $nnet ark,scp:$dir/$name.JOB.ark,$dir/$name.JOB.scp
  for j in $(seq $nj); do cat $dir/$name.$j.scp; done > $dir/$name.scp
}

# ihm_alignments: $nnet_ali, the IHM tri model's alignments of the headset audio parallel to this
# mic's training set, under this mic's utterance ids (use_ihm_ali).
ihm_alignments() {
  local d
  for d in train train_fbank; do local/prepare_parallel_data.sh data/ihm/$d $data/$d $data/${d/train/train_ihmdata}; done
  gmm align_si --nj $nj --cmd "$train_cmd" $data/train_ihmdata data/lang exp/ihm/tri $nnet_ali
}

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  if [ $nnet_ali != $exp/tri_ali ]; then
    log "Stage 5: the nnets' targets: the IHM tri model's alignments of the parallel headset audio"
    need exp/ihm/tri_ali/.done "4 --mic ihm"
    need $exp/make_feats/train/.done 1
    deps="data/ihm/train data/ihm/train_fbank $data/train exp/ihm/tri exp/ihm/tri_ali" step $nnet_ali ihm_alignments
  fi
  log "Stage 5: teacher DNN ($teacher), cross-entropy"
  train_nnet $exp/teacher --model-preset $teacher
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: student HDNN ($student) and a plain DNN of its size ($small_dnn), cross-entropy"
  bg train_nnet $exp/student_ce --model-preset $student
  bg train_nnet $exp/dnn_small --model-preset $small_dnn
  bg_wait
fi

# untranscribed_subset N DIR: the first N x (training meetings) untranscribed meetings, in the order of
# their ids (every team in turn), with their own speaker CMVN.
untranscribed_subset() {
  local n=$(( $1 * $(meetings $data/train | wc -l) )) dir=$2 src=$data/untranscribed_fbank
  meetings $src | head -n $n > $dir.meetings
  awk 'NR == FNR {keep[$1]; next} {split($2, r, "_"); if (r[2] in keep) print $1}' $dir.meetings $src/segments \
    > $dir.utts
  gmm subset_data_dir --utt-list $dir.utts $src $dir
  rm -f $dir/cmvn.scp $dir.meetings $dir.utts
  gmm compute_cmvn_stats $dir $exp/make_fbank/untranscribed_$1x fbank/$mic
}

# teacher_post NNET-DIR DATA DIR: the nnet's posteriors of DATA at the KD temperature, the top
# $kd_topk of each frame, in DIR/post.scp (a KD student's soft targets).
teacher_post() {
  forward_jobs "$decode_cmd" $1 $2 $3 post --output posteriors --temperature $kd_temperature --topk $kd_topk
}

# untranscribed_post N: student_kd's soft targets of the training set ($kd_post) and the mic's
# teacher's of the N x subset of the untranscribed audio, in $exp/teacher_post_u<N>x/post.scp.
untranscribed_post() {
  local dir=$exp/teacher_post_u$1x
  teacher_post $exp/teacher $data/untranscribed_$1x_fbank $dir
  cat $kd_post/post.scp >> $dir/post.scp
}

# kd_opts POST-DIR [TEACHER]: train.py's distillation options: the soft targets stored in POST-DIR,
# or the teacher (default: exp/<mic>/teacher) on the fly (--kd-online true).
kd_opts() {
  if [ $kd_online = true ]; then echo "--teacher ${2:-$exp/teacher}/final.pt"; else echo "--teacher-post scp:$1/post.scp"; fi
  echo "--kd-lambda $kd_lambda --kd-temperature $kd_temperature"
}

# soft_targets NNET-DIR DATA DIR: the step that stores NNET-DIR's soft targets of DATA in DIR.
soft_targets() {
  settings="$kd_topk $kd_temperature" step $3 teacher_post "$@"
}

# kd_student DIR POST-DIR [TEACHER [TRAIN-OPTS...]]: train the student DIR by distillation from the
# soft targets in POST-DIR (--kd-online true: from TEACHER, default exp/<mic>/teacher, on the fly),
# on stage 7's schedule ($kd_train_opts, then $sched_opts); TRAIN-OPTS: train.py's further options.
kd_student() {
  local dir=$1 post=$2 teacher=${3:-$exp/teacher}
  shift $(( $# < 3 ? $# : 3 ))
  sched_opts="$kd_train_opts ${sched_opts:-}" deps=$post train_nnet $dir --model-preset $student \
    $(kd_opts $post $teacher) "$@"
}

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  log "Stage 7: student HDNN ($student), knowledge distillation from the teacher"
  need $exp/teacher/.done 5
  set_factors
  # the students made: all, or those --nnet-systems names (then the soft targets only they need)
  factors=$(for f in $factors; do if wanted student_kd_u${f}x; then echo $f; fi; done)
  own=student_kd; [ $kd_post = $exp/teacher_post ] || own=student_kd_sdmt   # of the mic's own teacher
  for f in $factors; do
    need $exp/make_feats/untranscribed/.done 1
    deps="$data/untranscribed_fbank" step $data/untranscribed_${f}x_fbank untranscribed_subset $f $data/untranscribed_${f}x_fbank
  done
  if [ $kd_post != $exp/teacher_post ] && { wanted student_kd || [ -n "$factors" ]; }; then
    need exp/ihm/teacher/.done "5 --mic ihm"
    soft_targets exp/ihm/teacher $data/train_ihmdata_fbank $exp/ihm_teacher_post
  fi
  if [ $kd_online = false ]; then
    # the mic's own teacher's soft targets: for its student and, on IHM, inside the u<N>x students'
    if wanted $own || { [ $own = student_kd ] && [ -n "$factors" ]; }; then
      soft_targets $exp/teacher $data/train_fbank $exp/teacher_post
    fi
    for f in $factors; do
      deps="$exp/teacher $kd_post $data/untranscribed_${f}x_fbank" settings="$kd_topk $kd_temperature" \
        step $exp/teacher_post_u${f}x untranscribed_post $f
    done
  fi
  # the largest first, so that the jobs side by side finish close together; deps: the posteriors
  # (named in a rspecifier, which the stamp of a step does not follow)
  for f in $(echo $factors | tr ' ' '\n' | sort -rn); do
    sched_opts=$untranscribed_train_opts bg kd_student $exp/student_kd_u${f}x $exp/teacher_post_u${f}x $exp/teacher \
      --untranscribed $data/untranscribed_${f}x_fbank
  done
  if [ $kd_post = $exp/teacher_post ]; then
    ! wanted student_kd || bg kd_student $exp/student_kd $exp/teacher_post
  else
    # from the IHM teacher's stored soft targets of the parallel audio, whatever --kd-online says
    ! wanted student_kd || kd_online=false bg kd_student $exp/student_kd $kd_post
    ! wanted student_kd_sdmt || bg kd_student $exp/student_kd_sdmt $exp/teacher_post
  fi
  bg_wait
fi

# decode_nnet SYSTEM SET [FROM]: log-likelihoods (log-posteriors - log-priors) of an nnet, decoded
# with the tri graph and the transition model of tri_ali ($nnet_graph and $nnet_ali), then scored;
# with FROM (--backend py), searched once, at system FROM's dev setting.
decode_nnet() {
  local opts=""
  if [ $backend = py ] && [ -n "${3:-}" ]; then
    opts=$(setting_opts $exp/$3)
  elif [ $backend = py ]; then
    opts=$(sweep_opts $exp/$1 $2 "$nnet_scoring_opts" "$nnet_search_opts")
  fi
  decode_data $exp/$1 $data/${2}_fbank $exp/$1/decode_$2 "$opts" $(rest_search "$@")
}

# decode_system SYSTEM [FROM]: the tuning set (the sweep), then dev and eval at its setting; with
# FROM, dev and eval at system FROM's dev setting (decode_nnet).
decode_system() {
  local s sets from= setting
  sets=$(decode_sets) setting="tuned on $(tune_set)"
  [ $backend = kaldi ] || from=${2:-}
  [ -z "$from" ] || sets="dev eval" setting="at $from's dev setting, $(dev_setting $exp/$from)"
  for s in $sets; do
    deps=$(nnet_dep $1 $s $from) settings="$nnet_decode_opts $nnet_scoring_opts $nnet_search_opts $setting" \
      step $exp/$1/decode_$s decode_nnet $1 $s $from
  done
}

# split_for_jobs DATA...: each data dir's split into $nj jobs, made before steps that run beside
# each other split it (a split is rewritten only when it would change, and made here it will not).
split_for_jobs() {
  local d
  for d in "$@"; do
    if [ $backend = kaldi ]; then utils/split_data.sh $d $nj >/dev/null; else gmm split_data $d $nj; fi
  done
}

# decode_data NNET-DIR DATA DIR SWEEP-OPTS [SEARCHED HYPS-FROM]: decode_nnet's work for any data
# dir (SWEEP-OPTS: the py backend's LM-weight points; Kaldi's scoring sweeps $nnet_scoring_opts on
# the lattices); with SEARCHED and HYPS-FROM (--backend py), the data dir SEARCHED, part of DATA,
# is searched and decode dir HYPS-FROM's hypotheses give the rest of DATA's (rest_search).
decode_data() {
  local nnet=$1 fbank=$2 dir=$3 opts=$4 searched=${5:-$2} hyps=${6:+--hyps-from $6}
  if [ $backend = kaldi ]; then
    local beam max_active lattice_beam acwt
    . $decode_dnn_config
    utils/split_data.sh $fbank $nj
    mkdir -p $dir/log
    echo $nj > $dir/num_jobs
    run_job $decode_cmd JOB=1:$nj $dir/log/decode.JOB.log set -o pipefail \; \
      python $HDNN_ROOT/steps_py/forward.py $(spk_opts $nnet) $fbank/split$nj/JOB $nnet ark:- \| \
      latgen-faster-mapped --beam=$beam --max-active=$max_active --lattice-beam=$lattice_beam \
        --acoustic-scale=$acwt --allow-partial=true --word-symbol-table=$nnet_graph/words.txt \
        $nnet_ali/final.mdl $nnet_graph/HCLG.fst ark:- "ark:|gzip -c > $dir/lat.JOB.gz"
    local/score.sh --cmd "$decode_cmd" $nnet_scoring_opts $fbank $nnet_graph $dir
  else
    forward_jobs "$decode_cmd" $nnet $searched $dir
    py decode_mapped --nj $nj --cmd "$decode_cmd" $nnet_decode_opts $opts $hyps $nnet_graph $fbank $nnet_ali scp:$dir/loglikes.scp $dir
    rm -f $dir/loglikes.*
  fi
}

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  systems=$nnet_systems
  if [ -z "$systems" ]; then
    set_factors
    systems="teacher student_ce dnn_small student_kd$([ $kd_post = $exp/teacher_post ] || echo ' student_kd_sdmt')"
    systems="$systems$(for f in $factors; do printf ' student_kd_u%sx' $f; done)"
  fi
  log "Stage 8: nnet decoding ($systems)"
  need $nnet_graph/.done "$([ $nnet_graph = $graph ] && echo 4 || echo '4 --mic ihm')"
  for sys in $systems; do
    case $sys in teacher) from=5 ;; student_ce|dnn_small) from=6 ;; *) from=7 ;; esac
    need $exp/$sys/.done $from
  done
  # $nnet_jobs systems at a time: one's jobs fill the cores that the other's leave idle (the end
  # of a round of the search waits for its slowest job)
  tune_data
  split_for_jobs $data/dev_fbank $data/eval_fbank $(tune_fbanks)
  for sys in $systems; do bg decode_system $sys; done
  bg_wait
fi


# align_nnet SYSTEM DATA ALI-DIR: DATA's transcripts aligned with the nnet SYSTEM as
# steps/nnet/align.sh does (align-compiled-mapped on its log-likelihoods, $nnet_ali's final.mdl).
align_nnet() {
  local nnet=$exp/$1 d=$2 dir=$3
  mkdir -p $dir/log
  if [ $backend = kaldi ]; then
    utils/split_data.sh $d $nj
    cp $nnet_ali/final.mdl $nnet_ali/tree $dir/
    echo $nj > $dir/num_jobs
    run_job $train_cmd JOB=1:$nj $dir/log/align.JOB.log set -o pipefail \; \
      compile-train-graphs --read-disambig-syms=data/lang/phones/disambig.int $dir/tree $dir/final.mdl \
        data/lang/L.fst "ark:utils/sym2int.pl --map-oov $(cat data/lang/oov.int) -f 2- data/lang/words.txt $d/split$nj/JOB/text |" ark:- \| \
      align-compiled-mapped --transition-scale=1.0 --acoustic-scale=0.1 --self-loop-scale=0.1 --beam=10 \
        --retry-beam=40 $dir/final.mdl ark:- \
        "ark:python $HDNN_ROOT/steps_py/forward.py $d/split$nj/JOB $nnet ark:- |" "ark:|gzip -c > $dir/ali.JOB.gz"
  else
    forward_jobs "$train_cmd" $nnet $d $dir
    py align_mapped --nj $nj --cmd "$train_cmd" $d data/lang $nnet_ali scp:$dir/loglikes.scp $dir
    rm -f $dir/loglikes.*
  fi
}

# first_pass SET DIR: a copy of SET's fbank data dir whose text is student_kd's output on it at
# dev's LM weight and penalty (the unsupervised adaptation's transcripts).
first_pass() {
  local setting; setting=$(dev_setting $exp/student_kd)
  set -- $1 $2 $setting
  local hyp=$exp/student_kd/decode_$1/scoring_kaldi/penalty_$4/$3.txt
  need $hyp 8
  rm -rf $2 && mkdir -p $2
  cp $data/${1}_fbank/{feats.scp,cmvn.scp,utt2spk,spk2utt} $2/
  cp $hyp $2/text
}

# unless_adapted_from NNET-DIR DIR: remove DIR if it holds speakers adapted from another model
# than NNET-DIR's (adapt.py copies the model it adapts to DIR/final.pt, and refuses a DIR made from
# another): after NNET-DIR's model changed, everything in DIR is stale.
unless_adapted_from() {
  if [ -e $2/final.pt ] && ! cmp -s $1/final.pt $2/final.pt; then
    log "$2: adapted from another $1/final.pt: removing it"
    rm -rf $2
  fi
}

# adapt SYSTEM SET: adapt student_kd to every speaker of SET (stage 9's targets by SYSTEM).
adapt() {
  local dir=$exp/$1 fbank=$data/${2}_fbank
  unless_adapted_from $exp/student_kd $dir
  case $1 in
    student_adapt_teacher)
      need $exp/teacher/.done 5
      py adapt $adapt_opts $adapt_teacher_opts --teacher $exp/teacher/final.pt $fbank $exp/student_kd $dir ;;
    student_adapt_unsup)
      first_pass $2 $dir/data_$2
      align_nnet student_kd $dir/data_$2 $dir/ali_$2
      py adapt $adapt_opts $adapt_ali_opts $fbank $exp/student_kd $dir/ali_$2 $dir ;;
    student_adapt_sup)
      align_nnet student_kd $fbank $dir/ali_$2
      py adapt $adapt_opts $adapt_ali_opts $fbank $exp/student_kd $dir/ali_$2 $dir ;;
    *) echo "$0: unknown adapted system $1 (student_adapt_unsup|student_adapt_teacher|student_adapt_sup)" >&2
       exit 1 ;;
  esac
}

# curve_data SET DIR: DIR/{pool,test}, the first and second half of each speaker's utterances
# (the first half has the middle one; a speaker of one utterance is only adapted on).
curve_data() {
  local fbank=$data/${1}_fbank dir=$2
  mkdir -p $dir
  awk -v dir=$dir '{n = int(NF / 2); for (i = 2; i <= NF; i++) print $i > (dir (i <= n + 1 ? "/pool.list" : "/test.list"))}' \
    $fbank/spk2utt
  gmm subset_data_dir --utt-list $dir/pool.list $fbank $dir/pool
  gmm subset_data_dir --utt-list $dir/test.list $fbank $dir/test
}

# curve_point SET UPDATE SECONDS: one point of the data-amount curve (SECONDS 0: the whole half;
# UPDATE none: student_kd unadapted).
curve_point() {
  local curve=$exp/student_adapt_curve dir=$exp/student_adapt_curve/$1_$2_$3 nnet=$exp/student_kd
  local opts; opts=$(setting_opts $exp/student_kd)
  if [ $2 != none ]; then
    unless_adapted_from $nnet $dir
    py adapt $adapt_ali_opts --update $2 --max-seconds $3 $curve/$1/pool $nnet $exp/student_adapt_unsup/ali_$1 $dir
    nnet=$dir
  fi
  decode_data $nnet $curve/$1/test $dir/decode_test "$opts"
}

# adapt_system SYSTEM: stage 9's adaptation of student_kd to each test set, then its decoding.
adapt_system() {
  local s
  for s in dev eval; do
    deps="$exp/student_kd/final.pt $exp/student_kd/decode_$s/scoring_kaldi $exp/teacher/final.pt $data/${s}_fbank" \
      settings="$adapt_opts $adapt_ali_opts $adapt_teacher_opts $(dev_setting $exp/student_kd)" step $exp/$1/adapt_$s adapt $1 $s
  done
  decode_system $1 $adapt_setting_from
}

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  log "Stage 9: speaker adaptation of student_kd ($adapt_opts): $adapt_systems"
  need $exp/student_kd/decode_eval/.done 8
  # $nnet_jobs systems (then curve points) at a time, as in stage 8; a system's dev and eval
  # adaptations write to the same dir, so they run one after the other
  split_for_jobs $data/dev_fbank $data/eval_fbank $([ -n "$adapt_setting_from" ] || tune_fbanks)
  for sys in $adapt_systems; do bg adapt_system $sys; done
  bg_wait
  for s in $adapt_curve_sets; do
    log "Stage 9: data-amount curve on $s (${adapt_curve_seconds} s; $adapt_curve_updates)"
    need $exp/student_adapt_unsup/adapt_$s/.done 9
    deps=$data/${s}_fbank step $exp/student_adapt_curve/$s curve_data $s $exp/student_adapt_curve/$s
    split_for_jobs $exp/student_adapt_curve/$s/test
    for point in none_0 $(for u in $adapt_curve_updates; do for n in $adapt_curve_seconds; do echo ${u}_$n; done; done); do
      deps="$exp/student_kd/final.pt $exp/student_kd/decode_dev/scoring_kaldi/best_wer $exp/student_adapt_curve/$s
            $exp/student_adapt_unsup/ali_$s $nnet_graph $nnet_ali/final.mdl" settings="$adapt_ali_opts $nnet_decode_opts" \
        bg step $exp/student_adapt_curve/${s}_$point curve_point $s ${point%_*} ${point##*_}
    done
  done
  bg_wait
fi

# den_graph DIR: nnet1 make_denlats.sh's graph: the lang dir with a unigram LM of the training
# transcripts, compiled with the tri tree (weak LM: lattices full of acoustic confusions).
den_graph() {
  local dir=$1 oov; oov=$(cat data/lang/oov.int)
  rm -rf $dir/lang && mkdir -p $dir && cp -rL data/lang $dir/lang
  utils/sym2int.pl --map-oov $oov -f 2- data/lang/words.txt < $data/train/text \
    | awk '{for (n = 2; n <= NF; n++) printf("%s ", $n); printf("\n")}' | utils/make_unigram_grammar.pl \
    | fstcompile | fstarcsort --sort_type=ilabel > $dir/lang/G.fst
  utils/mkgraph.sh $dir/lang $nnet_ali $dir
}

# make_denlats SYSTEM DIR: the training set decoded by nnet SYSTEM with the unigram graph into
# lattices (make_denlats.sh: latgen-faster-mapped on its log-likelihoods).
make_denlats() {
  local nnet=$exp/$1 dir=$2 d=$data/train_fbank
  utils/split_data.sh $d $nj
  mkdir -p $dir/log
  echo $nj > $dir/num_jobs
  run_job $decode_cmd JOB=1:$nj $dir/log/decode_den.JOB.log set -o pipefail \; \
    python $HDNN_ROOT/steps_py/forward.py $d/split$nj/JOB $nnet ark:- \| \
    latgen-faster-mapped $denlat_opts --acoustic-scale=0.1 --word-symbol-table=$exp/dengraph/words.txt \
      $nnet_ali/final.mdl $exp/dengraph/HCLG.fst ark:- "ark:|gzip -c > $dir/lat.JOB.gz"
}

# smbr_den SOURCE: the source nnet's alignments of the training set and its denominator: lattices
# (SOURCE_denlats), or the lattice-free graph of those alignments (SOURCE_dengraph).
smbr_den() {
  local src=$1
  deps="$exp/$src/final.pt $nnet_ali/final.mdl data/lang" step $exp/${src}_ali align_nnet $src $data/train_fbank $exp/${src}_ali
  if [ $smbr_denominator = lattices ]; then
    deps="$exp/$src/final.pt $exp/dengraph $nnet_ali/final.mdl $data/train_fbank" settings="$denlat_opts" \
      step $exp/${src}_denlats make_denlats $src $exp/${src}_denlats
  else
    deps=$exp/${src}_ali step $exp/${src}_dengraph py make_den_graph $exp/${src}_ali $exp/${src}_dengraph
  fi
}

# smbr SYSTEM: train a stage-10 system (from its source's alignments and denominator, made by
# smbr_den first) and decode it.
smbr() {
  local src opts= den
  src=$(smbr_source $1)
  case $1 in
    student_ts_smbr) opts="--teacher $exp/teacher/final.pt $smbr_ts_opts" ;;
    student_gate_smbr) opts="--update gates" ;;
    student_kd_smbrt)  # as student_kd (stage 7), from teacher_smbr's soft targets
      need $exp/teacher_smbr/.done 10
      [ $kd_online = true ] || soft_targets $exp/teacher_smbr $data/train_fbank $exp/teacher_smbr_post
      kd_student $exp/student_kd_smbrt $exp/teacher_smbr_post $exp/teacher_smbr
      decode_system $1
      return ;;
  esac
  if [ $smbr_denominator = lattices ]; then den=$exp/${src}_denlats; else den=$exp/${src}_dengraph opts="$smbr_free_opts $opts"; fi
  opts="$opts $smbr_opts"   # last: train_smbr.py takes the last of an option, so they override the others
  step $exp/$1 py train_smbr $opts $data/train_fbank data/lang $exp/$src $exp/${src}_ali $den $exp/$1
  decode_system $1
}

if [ $stage -le 10 ] && [ $stop_stage -ge 10 ]; then
  log "Stage 10: sequence training (sMBR): $smbr_systems"
  for sys in $smbr_systems; do smbr_source $sys >/dev/null || exit 1; done
  for sys in $smbr_systems; do   # what each system starts from, before any work
    case $sys in
      teacher_smbr) need $exp/teacher/.done 5 ;;
      student_ts_smbr) need $exp/student_kd/.done 7; need $exp/teacher/.done 5 ;;
      student_kd_smbrt) [[ " $smbr_systems " == *" teacher_smbr "* ]] || need $exp/teacher_smbr/.done 10 ;;
      *) need $exp/student_kd/.done 7 ;;
    esac
  done
  sources=$(for sys in $smbr_systems; do smbr_source $sys; done | sort -u)
  [ $smbr_denominator = graph ] || deps="data/lang $data/train/text $nnet_ali" step $exp/dengraph den_graph $exp/dengraph
  tune_data
  split_for_jobs $data/train_fbank $data/dev_fbank $data/eval_fbank $(tune_fbanks)
  # each source's alignments and denominator, then the systems, $nnet_jobs at a time (those of
  # one source share its denominator); the student distilled from teacher_smbr last
  for src in $sources; do bg smbr_den $src; done
  bg_wait
  for sys in $smbr_systems; do [ $sys = student_kd_smbrt ] || bg smbr $sys; done
  bg_wait
  [[ " $smbr_systems " != *" student_kd_smbrt "* ]] || smbr student_kd_smbrt
fi

if [ $stage -le 11 ] && [ $stop_stage -ge 11 ]; then
  log "Stage 11: results"
  py results_table --mics ihm,sdm1 --command "${made_by:-$command_line}" --run-info "$run_info" exp RESULTS.md
  cat RESULTS.md
fi

log "Done (stages $stage..$stop_stage, mic $mic, backend $backend)"

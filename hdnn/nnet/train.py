"""Frame-level training of an acoustic model on Kaldi targets, with nnet1's newbob schedule.

One epoch = one pass over the (randomised) training frames, then a cross-validation pass
(``steps/nnet/train_scheduler.sh``). The objective is cross-entropy on pdf targets, or knowledge
distillation from a teacher model run on the same frames or from stored teacher posteriors.

Files in the experiment dir:
  checkpoint.pt     resume state after the last complete epoch: best model and optimizer,
                    schedule, history (written atomically at the end of every epoch)
  nnet/epochNN_lr<lr>_tr<loss>_cv<loss>[_rejected].pt   the model of every epoch
  final.pt          the best model (``hdnn.nnet.models.save_model`` format)
  curves.png        train/CV loss and frame accuracy per epoch
A run restarted with the same command continues after the last complete epoch, and ends with
the same model as an uninterrupted run: the frame order of an epoch depends only on
(seed, epoch, rank), and a checkpoint holds everything else.

Multi-process data-parallel training: start under ``torchrun``; each rank takes every
world_size-th utterance, gradients are averaged by DDP (so the effective minibatch is
world_size x minibatch_size), and rank 0 writes the files.
"""
import contextlib
import copy
import dataclasses
import logging
import math
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.algorithms.join import Join
from tqdm import tqdm

from hdnn.errors import HdnnError, first_line
from hdnn.nnet import distributed
from hdnn.nnet.data import frame_minibatches
from hdnn.nnet.losses import cross_entropy, kd_loss
from hdnn.nnet.models import save_model, save_torch, tensors_to_cpu
from hdnn.nnet.plot import plot_curves
from hdnn.nnet.schedule import Newbob


@dataclass
class TrainConfig:
    optimizer: str = "sgd"            # sgd (with momentum) or adam
    learn_rate: float = None          # sgd: per frame, as nnet1 (default 0.008); adam: step size (1e-3)
    momentum: float = 0.0
    minibatch_size: int = 256
    randomizer_size: int = 32768
    seed: int = 777
    max_iters: int = 20
    min_iters: int = 0
    keep_lr_iters: int = 0
    start_halving_impr: float = 0.01
    end_halving_impr: float = 0.001
    halving_factor: float = 0.5
    kd_lambda: float = 0.5
    kd_temperature: float = 1.0

    def __post_init__(self):
        if self.optimizer not in ("sgd", "adam"):
            raise HdnnError(f"unknown optimizer {self.optimizer!r}: use sgd or adam")
        if self.learn_rate is None:
            self.learn_rate = 0.008 if self.optimizer == "sgd" else 1e-3


@dataclass
class EpochStats:
    loss: float = 0.0        # training objective per frame
    xent: float = 0.0        # cross-entropy against the hard targets per frame
    accuracy: float = 0.0    # frame accuracy against the hard targets
    frames: int = 0


def make_optimizer(params, config):
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.learn_rate)
    return torch.optim.SGD(params, lr=config.learn_rate, momentum=config.momentum)


def _set_learn_rate(optimizer, config, learn_rate):
    # nnet1 sums gradients over the minibatch; the losses here average them.
    scale = config.minibatch_size if config.optimizer == "sgd" else 1
    for group in optimizer.param_groups:
        group["lr"] = learn_rate * scale


class Trainer:
    """Trains ``model`` on ``tr`` with CV on ``cv`` (``hdnn.nnet.data.FrameTargets``).

    ``teacher`` (a model) switches the objective to knowledge distillation on the fly; stored
    teacher posteriors in ``tr``/``cv`` (their soft_targets) switch it to KD from those. The
    schedule follows the CV objective; cross-entropy and frame accuracy against the hard
    targets are recorded beside it.
    """

    def __init__(self, exp_dir, model, tr, cv, config, teacher=None):
        self.exp_dir = Path(exp_dir)
        self.model, self.tr, self.cv, self.config = model, tr, cv, config
        self.device = next(model.parameters()).device
        self.teacher = (teacher.to(self.device).eval().requires_grad_(False) if teacher is not None else None)
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.world_size = dist.get_world_size() if dist.is_initialized() else 1
        self.optimizer = make_optimizer(model.parameters(), config)
        self.schedule = Newbob(config.learn_rate, config.start_halving_impr, config.end_halving_impr,
                               config.halving_factor, config.max_iters, config.min_iters, config.keep_lr_iters)
        self.history = []
        self.ddp_model = model
        if self.world_size > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    @property
    def checkpoint_path(self):
        return self.exp_dir / "checkpoint.pt"

    @property
    def kd(self):
        return self.teacher is not None or self.tr.soft_targets is not None

    # ------------------------------------------------------------------ objective

    def objective(self, logits, batch):
        feats, targets = batch[0], batch[1]
        c = self.config
        if self.teacher is not None:
            with torch.no_grad():
                teacher_logits = self.teacher(feats)
            return kd_loss(logits, targets, teacher_logits=teacher_logits, lam=c.kd_lambda, temperature=c.kd_temperature)
        if len(batch) == 4:
            return kd_loss(logits, targets, teacher_posteriors=(batch[2], batch[3]),
                           lam=c.kd_lambda, temperature=c.kd_temperature)
        return cross_entropy(logits, targets)

    # ------------------------------------------------------------------ passes

    def run_epoch(self, data, epoch, train):
        """One pass over this rank's share of ``data``; returns EpochStats summed over ranks."""
        rng = np.random.default_rng([self.config.seed, epoch, self.rank]) if train else None
        utts = data.utts[self.rank::self.world_size]
        batches = frame_minibatches(data.load, utts, self.config.minibatch_size,
                                    self.config.randomizer_size, rng)
        sums = torch.zeros(5, dtype=torch.float64)  # objective, xent, correct, frames, frames with targets
        self.model.train(train)
        desc = f"epoch {epoch} {'train' if train else 'cv'}"
        total = sum(data.num_frames(u) for u in utts)
        with tqdm(total=total, desc=desc, unit="frame", disable=None if self.rank == 0 else True,
                  leave=False) as bar, self._join(train):
            for i, arrays in enumerate(batches):
                batch = tuple(torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for a in arrays)
                batch = (batch[0], batch[1].long(), *batch[2:])
                with torch.set_grad_enabled(train):
                    logits = (self.ddp_model if train else self.model)(batch[0])
                    loss = self.objective(logits, batch)
                if not torch.isfinite(loss):
                    raise HdnnError(f"{data.feats_source}: epoch {epoch} minibatch {i}: loss is {loss.item()} "
                                    f"(learning rate {self.schedule.learn_rate:g} too high?)")
                if train:
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.optimizer.step()
                n = len(batch[0])
                with torch.no_grad():
                    labelled = batch[1] >= 0  # untranscribed frames have no hard target
                    n_labelled = int(labelled.sum())
                    if not self.kd:
                        xent = loss
                    else:
                        xent = cross_entropy(logits[labelled], batch[1][labelled]) if n_labelled else loss * 0
                    correct = (logits.argmax(1) == batch[1]).sum()
                sums += torch.tensor([loss.item() * n, xent.item() * n_labelled, correct.item(), n, n_labelled],
                                     dtype=torch.float64)
                bar.update(n)
        distributed.all_reduce_sum(sums)
        if sums[3] == 0:
            raise HdnnError(f"{data.feats_source}: no frames to {'train on' if train else 'cross-validate'}"
                            + (f" (fewer than one minibatch, --minibatch-size {self.config.minibatch_size})"
                               if train and total else ""))
        labelled = max(sums[4].item(), 1.0)
        return EpochStats(loss=(sums[0] / sums[3]).item(), xent=sums[1].item() / labelled,
                          accuracy=sums[2].item() / labelled, frames=int(sums[3]))

    def _join(self, train):
        """DDP's Join: ranks with fewer minibatches keep the others' all-reduces going."""
        if train and self.world_size > 1:
            return Join([self.ddp_model])
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self, best):
        """Write the resume state: ``best`` model and optimizer states, schedule, history."""
        if self.rank == 0:
            state = {"model_config": self.model.config, **best, "schedule": self.schedule.state_dict(),
                     "history": self.history, "train_config": dataclasses.asdict(self.config)}
            save_torch(state, self.checkpoint_path)

    def load_checkpoint(self):
        """Restore the state after the last complete epoch; False when there is none."""
        if not self.checkpoint_path.exists():
            return False
        try:
            state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
            if state["model_config"] != self.model.config:
                raise HdnnError(f"{self.checkpoint_path}: was written for model {state['model_config']}, "
                                f"not {self.model.config}; use a new exp dir or remove it")
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (pickle.UnpicklingError, RuntimeError, KeyError, EOFError, ValueError) as e:
            raise HdnnError(f"{self.checkpoint_path}: cannot resume from it ({first_line(e)})") from None
        self.schedule.load_state_dict(state["schedule"])
        if self.schedule.max_iters != self.config.max_iters:
            logging.info("resuming with --max-iters %d (was %d)", self.config.max_iters, self.schedule.max_iters)
            self.schedule.set_max_iters(self.config.max_iters)
        self.history = state["history"]
        logging.info("resuming %s after epoch %d (learning rate %g)", self.exp_dir,
                     self.schedule.epoch, self.schedule.learn_rate)
        return True

    def _remove_stale_temporaries(self):
        """Temporaries of atomic writes that a killed run (SIGKILL, power loss) left behind."""
        for tmp in (*self.exp_dir.glob(".*.tmp*"), *self.exp_dir.glob("nnet/.*.tmp*")):
            logging.info("removing %s, left by an interrupted run", tmp)
            tmp.unlink()

    def _best(self):
        return tensors_to_cpu({"model": copy.deepcopy(self.model.state_dict()),
                               "optimizer": copy.deepcopy(self.optimizer.state_dict())})

    # ------------------------------------------------------------------ the schedule

    def train(self, max_epochs_this_run=None):
        """Train until the schedule stops; returns the path of final.pt, or None when
        ``max_epochs_this_run`` epochs were done first (resume by calling again)."""
        if self.rank == 0:
            self._remove_stale_temporaries()
        if not self.load_checkpoint():
            cv = self.run_epoch(self.cv, 0, train=False)
            self.schedule.start(cv.loss)
            self.history.append({"epoch": 0, "cv": dataclasses.asdict(cv), "accepted": True})
            logging.info("initial model: CV loss %.4f, frame accuracy %.2f%%", cv.loss, 100 * cv.accuracy)
            self.save_checkpoint(self._best())
        final = self.exp_dir / "final.pt"
        if self.schedule.finished and final.exists() and self.schedule.best_epoch > 0:
            logging.info("%s: already trained (%d epochs)", final, self.schedule.epoch)
            return final
        best = self._best()
        epochs_run = 0
        while not self.schedule.finished:
            if max_epochs_this_run is not None and epochs_run >= max_epochs_this_run:
                return None
            best = self._train_one_epoch(best)
            epochs_run += 1
        return self._finish()

    def _train_one_epoch(self, best):
        epoch, learn_rate = self.schedule.epoch + 1, self.schedule.learn_rate
        _set_learn_rate(self.optimizer, self.config, learn_rate)
        tr = self.run_epoch(self.tr, epoch, train=True)
        cv = self.run_epoch(self.cv, epoch, train=False)
        accepted = self.schedule.step(cv.loss)
        name = f"epoch{epoch:02d}_lr{learn_rate:g}_tr{tr.loss:.4f}_cv{cv.loss:.4f}{'' if accepted else '_rejected'}"
        if self.rank == 0:
            save_model(self.exp_dir / "nnet" / f"{name}.pt", self.model)
        logging.info("epoch %d: train loss %.4f acc %.2f%% | CV loss %.4f acc %.2f%% | lr %g | %s %s",
                     epoch, tr.loss, 100 * tr.accuracy, cv.loss, 100 * cv.accuracy, learn_rate,
                     "accepted" if accepted else "rejected", name)
        if accepted:
            best = self._best()
        else:
            self.model.load_state_dict(best["model"])
            self.optimizer.load_state_dict(best["optimizer"])
        self.history.append({"epoch": epoch, "learn_rate": learn_rate, "train": dataclasses.asdict(tr),
                             "cv": dataclasses.asdict(cv), "accepted": accepted, "model": name})
        self.save_checkpoint(best)
        if self.rank == 0:
            plot_curves(self.history, self.exp_dir / "curves.png")
        return best

    def _finish(self):
        final = self.exp_dir / "final.pt"
        if self.schedule.best_epoch == 0:  # as train_scheduler.sh: no model better than the initial one
            raise HdnnError(f"{self.exp_dir}: no epoch lowered the CV loss of the initial model "
                            f"({self.schedule.best_loss:.4f}) in {self.schedule.epoch} epochs: no final.pt written "
                            f"(try another --learn-rate; see {self.exp_dir / 'log'})")
        if self.rank == 0:
            save_model(final, self.model)
            logging.info("finished after epoch %d; best epoch %d, CV loss %.4f -> %s", self.schedule.epoch,
                         self.schedule.best_epoch, self.schedule.best_loss, final)
        if self.world_size > 1:
            dist.barrier()
        return final


# ---------------------------------------------------------------------- from Kaldi dirs

def read_soft_targets(rspecifier, num_pdfs):
    """Stored teacher posteriors {utt: (ids (T, K), weights (T, K))} from a Kaldi Posterior table."""
    from hdnn.kaldi.posteriors import read_padded_posteriors

    soft = {}
    for utt, (ids, weights) in read_padded_posteriors(rspecifier):
        soft[utt] = ids, weights
        if ids.size and (ids.min() < 0 or ids.max() >= num_pdfs):
            raise HdnnError(f"{rspecifier}: utterance {utt} has pdf-ids outside [0, {num_pdfs})")
        if not np.all(np.isfinite(weights)):
            raise HdnnError(f"{rspecifier}: utterance {utt} has NaN/Inf posteriors")
    return soft


def prepare_features(exp_dir, tr_dir, teacher_dir=None, cmvn=True, norm_vars=False, splice=5,
                     global_cmvn=True, max_utts_global_cmvn=10000):
    """Write the feature set-up of ``exp_dir`` once: the teacher's when it has one (the student must
    see the teacher's input), else speaker CMVN + splicing + a global CMVN estimated on ``tr_dir``."""
    from hdnn.kaldi.features import FeaturePipeline
    from hdnn.nnet.model_dir import has_feature_setup, load_feature_pipeline, save_feature_setup

    if has_feature_setup(exp_dir):
        return
    if teacher_dir is not None and has_feature_setup(teacher_dir):
        pipeline = load_feature_pipeline(teacher_dir, tr_dir)
    else:
        pipeline = FeaturePipeline(tr_dir, cmvn=cmvn, norm_vars=norm_vars, splice=splice)
        if global_cmvn:
            pipeline.global_cmvn = pipeline.estimate_global_cmvn(max_utts_global_cmvn)
    save_feature_setup(exp_dir, pipeline)


def train_from_dirs(tr_dir, cv_dir, targets, exp_dir, preset, config, teacher=None, teacher_post=None,
                    num_pdfs=None, length_tolerance=5, max_skip_fraction=0.1, max_epochs_this_run=None,
                    device=torch.device("cpu"), untranscribed=None, **feature_opts):
    """Train a ``preset`` model on Kaldi data dirs; see steps_py/train.py for the arguments.
    The prior counts (ali_train_pdf.counts) are of all the alignments given, as train.sh's.
    The model is initialised on the CPU (the same weights whatever ``device``) and trained on ``device``.
    ``untranscribed``: a data dir (features, no text needed) trained on with the teacher's soft
    targets alone (``hdnn.nnet.losses.kd_loss``), beside ``tr_dir``; its utterances of speakers
    held out for CV are left out, so that CV stays unseen.

    Returns the path of final.pt, or None when stopped by ``max_epochs_this_run``.
    """
    from hdnn.kaldi.counts import counts_from_alignments, write_counts
    from hdnn.nnet.data import ConcatFrames, FrameTargets
    from hdnn.nnet.model_dir import PRIOR_COUNTS, load_feature_pipeline
    from hdnn.nnet.models import load_model, model_from_preset

    exp_dir = Path(exp_dir)
    check_train_config(config)
    if untranscribed and not (teacher or teacher_post):
        raise HdnnError(f"{untranscribed}: untranscribed data needs a teacher (--teacher or --teacher-post)")
    targets_spec = targets
    from hdnn.kaldi.alignments import read_targets

    targets, targets_source, num_pdfs = read_targets(targets, num_pdfs)
    teacher_model = load_model(teacher) if teacher else None
    if distributed.is_main():
        claim_exp_dir(exp_dir, tr_dir, cv_dir, targets_spec, teacher, teacher_post, config,
                      dict(preset=preset, num_pdfs=num_pdfs, length_tolerance=length_tolerance,
                           max_skip_fraction=max_skip_fraction, **feature_opts), untranscribed)
        prepare_features(exp_dir, tr_dir, Path(teacher).parent if teacher else None, **feature_opts)
        write_counts(exp_dir / PRIOR_COUNTS, counts_from_alignments(targets.items(), num_pdfs))
    distributed.barrier()
    soft = read_soft_targets(teacher_post, num_pdfs) if teacher_post else None

    def frame_targets(data_dir, hard=targets, skip_speakers=()):
        pipeline = load_feature_pipeline(exp_dir, data_dir)
        utts = [u for u in pipeline.utts if pipeline.data.utt2spk[u] not in skip_speakers]
        if len(utts) < len(pipeline.utts):
            logging.info("%s: %d of %d utterances are of CV speakers: left out", data_dir,
                         len(pipeline.utts) - len(utts), len(pipeline.utts))
        return FrameTargets(pipeline, utts, hard, targets_source, soft, teacher_post,
                            length_tolerance, max_skip_fraction, feats_source=str(pipeline.data.feats_scp))

    tr, cv = frame_targets(tr_dir), frame_targets(cv_dir)
    if untranscribed:
        tr = ConcatFrames([tr, frame_targets(untranscribed, None, set(cv.pipeline.data.spk2utt))])
    if teacher_model is not None:
        check_model_fits(teacher_model, tr.pipeline.dim, num_pdfs, teacher, tr.feats_source)
    torch.manual_seed(config.seed)
    model = model_from_preset(preset, tr.pipeline.dim, num_pdfs).to(device)
    return Trainer(exp_dir, model, tr, cv, config, teacher_model).train(max_epochs_this_run)


# What a rerun may change without starting again: more (or fewer) epochs continue the same run.
RESUMABLE_OPTIONS = ("max_iters",)
TRAINED_FILES = ("checkpoint.pt", "final.pt", "curves.png", "ali_train_pdf.counts", "feature_opts.json",
                 "global_cmvn.npz", "final.feature_transform")


def claim_exp_dir(exp_dir, tr_dir, cv_dir, targets, teacher, teacher_post, config, options, untranscribed=None):
    """Keep an exp dir's earlier training (checkpoint, feature set-up, final.pt) only when it was
    made from the same data, targets, teacher and options (<exp-dir>/.stamp); else remove it, so
    that the run starts again and names what changed in its log."""
    from hdnn.kaldi.alignments import alignment_files
    from hdnn.kaldi.data_dir import data_dir_inputs
    from hdnn.stamps import claim, make_stamp, rspecifier_files, write_stamp

    train_options = {k: v for k, v in dataclasses.asdict(config).items() if k not in RESUMABLE_OPTIONS}
    stamp = make_stamp({"training data": data_dir_inputs(tr_dir, text=False),
                        "cross-validation data": data_dir_inputs(cv_dir, text=False),
                        "targets": alignment_files(targets), "teacher": [teacher] if teacher else [],
                        "teacher posteriors": rspecifier_files(teacher_post) if teacher_post else [],
                        **({"untranscribed data": data_dir_inputs(untranscribed, text=False)} if untranscribed else {})},
                       {**train_options, **options}, exclude=[exp_dir / "nnet", exp_dir / "log"])
    marker = exp_dir / ".stamp"
    if claim(marker, stamp, str(exp_dir), earlier=any((exp_dir / name).exists() for name in TRAINED_FILES)):
        return
    for name in TRAINED_FILES:
        (exp_dir / name).unlink(missing_ok=True)
    shutil.rmtree(exp_dir / "nnet", ignore_errors=True)
    write_stamp(marker, stamp)


def check_train_config(config):
    """HdnnError naming the option when a training option is out of its range."""
    def bad(option, value, why):
        raise HdnnError(f"--{option} {value}: {why}")

    if not (math.isfinite(config.learn_rate) and config.learn_rate > 0):
        bad("learn-rate", config.learn_rate, "must be a positive number")
    if config.minibatch_size < 1:
        bad("minibatch-size", config.minibatch_size, "must be at least 1")
    if config.randomizer_size < 1:
        bad("randomizer-size", config.randomizer_size, "must be at least 1")
    if config.max_iters < 1:
        bad("max-iters", config.max_iters, "must be at least 1")
    if not 0.0 <= config.kd_lambda <= 1.0:
        bad("kd-lambda", config.kd_lambda, "must be in [0, 1]")
    if not (math.isfinite(config.kd_temperature) and config.kd_temperature > 0):
        bad("kd-temperature", config.kd_temperature, "must be a positive number")
    if not 0.0 < config.halving_factor <= 1.0:
        bad("halving-factor", config.halving_factor, "must be in (0, 1]")


def check_model_fits(model, input_dim, num_pdfs, model_source, feats_source):
    """HdnnError naming both files when a model does not take these features or pdfs."""
    if model.config["input_dim"] != input_dim:
        raise HdnnError(f"{feats_source}: network input of dim {input_dim}, but {model_source} "
                        f"takes dim {model.config['input_dim']}")
    if num_pdfs is not None and model.config["num_pdfs"] != num_pdfs:
        raise HdnnError(f"{model_source}: has {model.config['num_pdfs']} outputs, the targets have {num_pdfs} pdfs")

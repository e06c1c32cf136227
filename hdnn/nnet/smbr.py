"""Sequence-discriminative training of a trained model on denominator lattices, as Kaldi nnet1's
steps/nnet/train_mpe.sh (nnet-train-mpe-sequential) does it, and in the teacher-student setting.

Per utterance (one lattice per minibatch, in a shuffled order each iteration): the network's
log-likelihoods (log-softmax minus log-priors) replace the lattice's acoustic scores, the
criterion (hdnn.nnet.sequence) gives the expected frame accuracy A against the reference
alignment, and plain SGD steps on the loss

    (1 - ts_weight) * (-A / kappa)  +  ts_weight * tau^2 * sum_t KL(teacher_t || student_t)
                                    +  smooth * sum_t CE(ref_t, student_t)

summed over the utterance's frames, at nnet1's learning rate (1e-5). -A / kappa has Kaldi's
gradient (minus the sMBR posteriors); the teacher's soft targets keep a small student close to
the frame-level solution (Wong & Gales 2016; Lu et al. 2017), and `smooth` is frame smoothing on
the hard targets. MMI (criterion "mmi") uses logZ_den - kappa * y[num]. `update="gates"` trains
only the HDNN's transform and carry gates.

The output dir is a model dir (final.pt and the source's feature set-up and priors), with
nnet/iter<N>.pt after each iteration, curve.tsv (iteration, utterances, frames, frame
accuracy, objective per frame) and checkpoint.pt, from which a killed run resumes; the
checkpoint records digests of every input and option, and a rerun with other ones starts over.
"""
import dataclasses
import hashlib
import logging
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hdnn.errors import HdnnError, atomic_open, first_line
from hdnn.nnet.models import save_model, save_torch

log = logging.getLogger(__name__)
CRITERIA = ("smbr", "mpfe", "mmi")
UPDATES = ("all", "gates")


@dataclass
class SmbrConfig:
    """Options of train_smbr.py (names of train_mpe.sh where it has them)."""

    criterion: str = "smbr"
    learn_rate: float = 1e-5       # per utterance, on the gradient summed over its frames
    num_iters: int = 4
    acoustic_scale: float = 0.1
    lm_scale: float = 1.0
    one_silence_class: bool = True
    smooth: float = 0.0            # weight of frame cross-entropy on the alignment
    ts_weight: float = 0.0         # weight of the teacher's KL term (needs a teacher)
    temperature: float = 1.0
    update: str = "all"
    seed: int = 777

    def __post_init__(self):
        if self.criterion not in CRITERIA:
            raise HdnnError(f"unknown --criterion {self.criterion!r}: choose from {', '.join(CRITERIA)}")
        if self.update not in UPDATES:
            raise HdnnError(f"unknown --update {self.update!r}: choose from {', '.join(UPDATES)}")
        if self.learn_rate <= 0 or self.num_iters < 1 or self.acoustic_scale <= 0 or self.temperature <= 0:
            raise HdnnError("--learn-rate, --num-iters, --acoustic-scale and --temperature must be positive")
        if not 0.0 <= self.ts_weight <= 1.0 or self.smooth < 0 or self.lm_scale < 0:
            raise HdnnError(f"--ts-weight {self.ts_weight} is outside [0, 1], or --smooth / --lm-scale is negative")


def _digest(paths):
    h = hashlib.sha256()
    for path in paths:
        h.update(str(Path(path).name).encode() + b"\0" + Path(path).read_bytes())
    return h.hexdigest()


def _numbered(directory, pattern, what):
    files = sorted(Path(directory).glob(pattern), key=lambda p: [int(s) for s in p.name.split(".") if s.isdigit()])
    if not files:
        raise HdnnError(f"{directory}: no {pattern} {what}")
    return files


def read_silence_phones(lang_dir):
    """Integer ids of the silence phones (phones/silence.csl of a lang dir)."""
    path = Path(lang_dir) / "phones" / "silence.csl"
    try:
        return [int(p) for p in path.read_text().strip().split(":") if p]
    except FileNotFoundError:
        raise HdnnError(f"{path}: no such file (is {lang_dir} a lang dir?)") from None
    except ValueError:
        raise HdnnError(f"{path}: expected colon-separated integer phone ids") from None


class SequenceData:
    """The training examples: features, reference transition-ids and the denominator: a lattice
    per utterance (those with all three; each utterance's LatticeBatch is built on first use), or
    one lattice-free denominator graph for all (`<denlat-dir>/den_graph.npz`,
    steps_py/make_den_graph.py)."""

    def __init__(self, pipeline, ali_dir, denlat_dir, lang_dir, config, teacher_pipeline=None):
        from hdnn.kaldi.gmm_model import read_transition_model
        from hdnn.kaldi.io import read_int_vectors
        from hdnn.kaldi.lattices import read_lattices
        from hdnn.nnet.dengraph import DenGraph
        from hdnn.nnet.sequence import FrameAccuracy

        self.pipeline, self.teacher_pipeline, self.config = pipeline, teacher_pipeline, config
        self.tm = read_transition_model(Path(ali_dir) / "final.mdl")
        self.ali_files = _numbered(ali_dir, "ali.*.gz", "alignment files")
        gz = " ".join(str(p) for p in self.ali_files)
        self.refs = dict(read_int_vectors(f"ark:gunzip -c {gz} |"))
        self.graph, self.lattices = None, {}
        graph_file = Path(denlat_dir) / "den_graph.npz"
        if graph_file.exists():
            self.graph, self.lat_files = DenGraph.load(graph_file), [graph_file]
            if int(self.graph.tids.max()) >= len(self.tm.tid2pdf) or not np.array_equal(
                    self.graph.pdfs, self.tm.tid2pdf[self.graph.tids]):
                raise HdnnError(f"{graph_file} was not made with the transition model of {ali_dir}")
            log.info("denominator: %s, lattice-free (%d states, %d arcs)", graph_file, self.graph.num_states,
                     self.graph.num_arcs)
        else:
            self.lat_files = _numbered(denlat_dir, "lat.*.gz", "lattice files (make them with latgen-faster-mapped, "
                                                               "or a den_graph.npz with make_den_graph.py)")
            for path in self.lat_files:
                for utt, lat in read_lattices(f"ark:gunzip -c {path} |"):
                    self.lattices[utt] = lat
            log.info("denominator: %d lattices of %s", len(self.lattices), denlat_dir)
        feats = set(pipeline.utts)
        self.utts = sorted(u for u in feats if u in self.refs and (self.graph is not None or u in self.lattices))
        missing = len(feats) - len(self.utts)
        if not self.utts:
            raise HdnnError(f"no utterance of {pipeline.data.path} has both an alignment in {ali_dir} "
                            f"and a denominator in {denlat_dir}")
        if missing:
            log.warning("%d of %d utterances have no alignment or no lattice; they are skipped", missing, len(feats))
        self.silence = read_silence_phones(lang_dir)
        if config.criterion != "mmi":
            self.accuracy = FrameAccuracy(self.tm.tid2pdf, self.tm.tid2phone, self.silence,
                                          config.criterion, config.one_silence_class)
        self._batches = {}

    def example(self, utt):
        """(inputs, LatticeBatch or DenGraph, accuracy (per arc, or per frame and state) or
        None, reference pdfs, teacher inputs)."""
        from hdnn.nnet.sequence import LatticeBatch

        x = self.pipeline(utt)
        ref = self.refs[utt]
        if len(ref) != len(x):
            raise HdnnError(f"alignment of {utt} has {len(ref)} frames, its features {len(x)}")
        mmi = self.config.criterion == "mmi"
        if self.graph is not None:  # the accuracy of every state at every frame: made, not kept
            batch, acc = self.graph, None if mmi else self.graph.accuracy(self.accuracy, ref)
        else:
            if utt not in self._batches:
                batch = LatticeBatch([(utt, self.lattices.pop(utt))], [len(x)], self.tm.tid2pdf, self.config.lm_scale)
                self._batches[utt] = (batch, None if mmi else batch.accuracy(self.accuracy, ref))
            batch, acc = self._batches[utt]
        teacher_x = self.teacher_pipeline(utt) if self.teacher_pipeline is not None else None
        return torch.from_numpy(x), batch, acc, torch.from_numpy(self.tm.tid2pdf[ref]).long(), teacher_x


def utterance_loss(model, log_prior, data, utt, config, teacher=None):
    """(loss, frames, expected frame accuracy or -logZ, objective) of one utterance."""
    from hdnn.nnet.dengraph import den_mmi_loss, den_smbr_loss
    from hdnn.nnet.sequence import mmi_loss, smbr_loss

    x, batch, acc, ref_pdfs, teacher_x = data.example(utt)
    logits = model(x)
    y = F.log_softmax(logits, dim=-1) - log_prior
    kappa = config.acoustic_scale
    free = data.graph is not None
    if config.criterion == "mmi":
        if free:
            seq, logz = den_mmi_loss(y, batch, kappa, ref_pdfs.numpy(), utt)
        else:
            seq, logz = mmi_loss(y, batch, kappa, ref_pdfs.numpy())
        stat = float("nan")
    else:
        seq, expected = den_smbr_loss(y, batch, kappa, acc, utt) if free else smbr_loss(y, batch, kappa, acc)
        stat = expected.sum().item()
    loss = (1.0 - config.ts_weight) * seq
    if config.ts_weight > 0:
        from hdnn.nnet.losses import kd_loss

        with torch.no_grad():
            teacher_logits = teacher(torch.from_numpy(teacher_x))
        kd = kd_loss(logits, None, teacher_logits=teacher_logits, lam=1.0, temperature=config.temperature)
        loss = loss + config.ts_weight * kd * len(x)
    if config.smooth > 0:
        loss = loss + config.smooth * F.cross_entropy(logits, ref_pdfs, reduction="sum")
    return loss, len(x), stat, seq.item()


def _trainable(model, update):
    from hdnn.nnet.adapt import adaptable_parameters

    params = adaptable_parameters(model, update)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params.values():
        p.requires_grad_(True)
    return list(params.values())


def train_smbr(data_dir, model_dir, ali_dir, denlat_dir, lang_dir, out_dir, config, teacher=None, progress=True):
    """Sequence-train the model of ``model_dir`` on ``data_dir`` with the alignments of
    ``ali_dir`` and the lattices of ``denlat_dir``; writes the model dir ``out_dir`` and returns
    the path of its final.pt. ``teacher``: a model file, for ts_weight > 0."""
    from hdnn.nnet.forward import prior_log_probs
    from hdnn.nnet.model_dir import MODEL_DIR_FILES, PRIOR_COUNTS, copy_model_dir, load_for_data
    from hdnn.kaldi.counts import read_counts

    if (config.ts_weight > 0) != (teacher is not None):
        raise HdnnError("a teacher (--teacher) is used exactly when --ts-weight > 0")
    model_file = Path(model_dir) / "final.pt"
    model, pipeline = load_for_data(model_file, data_dir)
    num_pdfs = model.config["num_pdfs"]
    counts_file = Path(model_dir) / PRIOR_COUNTS
    log_prior = torch.from_numpy(prior_log_probs(read_counts(counts_file), num_pdfs, counts_file)).float()
    teacher_model, teacher_pipeline = None, None
    if teacher is not None:
        teacher_model, teacher_pipeline = load_for_data(teacher, data_dir, num_pdfs)
        teacher_model.eval()
    data = SequenceData(pipeline, ali_dir, denlat_dir, lang_dir, config, teacher_pipeline)
    if data.tm.num_pdfs != num_pdfs:
        raise HdnnError(f"{Path(ali_dir) / 'final.mdl'} has {data.tm.num_pdfs} pdfs, the model {num_pdfs}")
    out_dir = Path(out_dir)
    (out_dir / "nnet").mkdir(parents=True, exist_ok=True)
    copy_model_dir(model_dir, out_dir, [n for n in MODEL_DIR_FILES if n != "final.pt"])
    inputs = {"model": _digest([model_file]), "ali": _digest(data.ali_files), "lat": _digest(data.lat_files),
              "teacher": _digest([teacher]) if teacher else None, "silence": data.silence,
              # more iterations continue a run: iteration k is the same whatever the total
              "config": {k: v for k, v in dataclasses.asdict(config).items() if k != "num_iters"}}
    return _train(model, teacher_model, log_prior, data, config, out_dir, inputs, progress)


def _train(model, teacher, log_prior, data, config, out_dir, inputs, progress):
    checkpoint, final = out_dir / "checkpoint.pt", out_dir / "final.pt"
    params = _trainable(model, config.update)
    optimizer = torch.optim.SGD(params, lr=config.learn_rate)
    history, start = [], 1
    state = _load_checkpoint(checkpoint)
    if state is not None and state["inputs"] == inputs and state["iter"] <= config.num_iters:
        model.load_state_dict(state["model"])
        history, start = state["history"], state["iter"] + 1
        if start > config.num_iters and final.exists():
            log.info("%s: already trained (%d iterations)", final, config.num_iters)
            return final
        log.info("%s: resuming after iteration %d", out_dir, state["iter"])
    elif state is not None:
        log.info("%s: made from other inputs, options or more iterations; training again", checkpoint)
    if start == 1:
        for stale in (final, *out_dir.glob("nnet/iter*.pt"), out_dir / "curve.tsv"):
            stale.unlink(missing_ok=True)
    model.train()
    for it in range(start, config.num_iters + 1):
        order = np.random.default_rng([config.seed, it]).permutation(len(data.utts))
        frames, stat, objective = 0, 0.0, 0.0
        bar = tqdm(order, desc=f"{config.criterion} iteration {it}", unit="utt", disable=not progress or None,
                   leave=False)
        began, report = time.monotonic(), max(1, len(order) // 10)
        for k, i in enumerate(bar, 1):
            loss, n, s, obj = utterance_loss(model, log_prior, data, data.utts[i], config, teacher)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            frames, stat, objective = frames + n, stat + s, objective + obj
            if config.criterion != "mmi":
                bar.set_postfix(frame_acc=f"{stat / frames:.4f}", refresh=False)
            if k % report == 0 and k < len(order):  # the bar is off in a log file: a line per tenth
                _log_progress(it, k, len(order), frames, time.monotonic() - began, stat, config.criterion)
        row = {"iter": it, "utts": len(order), "frames": frames, "frame_accuracy": stat / frames,
               "objective": objective / frames}
        history.append(row)
        log.info("iteration %d: %d utterances, %d frames, average frame accuracy %.4f, objective per frame %.5f",
                 it, len(order), frames, row["frame_accuracy"], row["objective"])
        save_model(out_dir / "nnet" / f"iter{it}.pt", model)
        save_torch({"iter": it, "model": model.state_dict(), "history": history, "inputs": inputs}, checkpoint)
        _write_curve(out_dir / "curve.tsv", history)
    save_model(final, model)
    log.info("wrote %s after %d iterations", final, config.num_iters)
    return final


def _log_progress(it, done, total, frames, seconds, stat, criterion):
    acc = "" if criterion == "mmi" else f", average frame accuracy so far {stat / frames:.4f}"
    log.info("iteration %d: %d of %d utterances, %d frames, %.0f frames/s%s", it, done, total, frames,
             frames / max(seconds, 1e-9), acc)


def _load_checkpoint(path):
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return {k: state[k] for k in ("iter", "model", "history", "inputs")}
    except (pickle.UnpicklingError, RuntimeError, KeyError, EOFError, ValueError, TypeError) as e:
        raise HdnnError(f"{path}: cannot resume from it ({first_line(e)}); remove it") from None


def _write_curve(path, history):
    with atomic_open(path) as f:
        f.write("iter\tutts\tframes\tframe_accuracy\tobjective_per_frame\n")
        for r in history:
            f.write(f"{r['iter']}\t{r['utts']}\t{r['frames']}\t{r['frame_accuracy']:.6f}\t{r['objective']:.6f}\n")

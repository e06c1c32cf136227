"""Speaker adaptation of a trained acoustic model: for each speaker, a copy of the model is
fine-tuned on that speaker's audio, and only the adapted parameters are kept.

What is updated (``update``):
  gates  the HDNN's tied transform and carry gates, 2 (U^2 + U) parameters (Lu et al., 2017)
  lhuc   one amplitude 2 sigmoid(a) per hidden unit (Swietojanski & Renals, 2014)
  all    every weight (a comparison: it over-fits little data)

Targets of a frame:
  hard   pdf ids of an alignment: of the reference transcript (supervised) or of a first
         decoding pass (unsupervised; ``min_confidence`` drops frames whose aligned pdf the
         unadapted model gives less posterior than that)
  soft   a teacher model's posteriors on the same audio (no transcript, no first pass)

So that little data cannot hurt, the targets are interpolated with the unadapted model's
posteriors (KL-divergence regularisation, Yu et al., 2013, weight ``kld_rho``):

    loss = (1 - rho) * L(targets, q) + rho * KL(p_unadapted || q)

and training stops early on held-out utterances of the same speaker (the last
``held_out`` fraction of them): the parameters kept are those of the epoch with the lowest
held-out loss, the unadapted ones when no epoch lowers it.

A speaker's result is one small file, ``<dir>/<spk>.pt``: the adapted tensors by name, the
options, the digest of the model file they adapt (so that they are never applied to another
model) and that of the frames and targets they were adapted on (so that a rerun redoes a
speaker whose data, targets or options changed, and skips the others).
"""
import copy
import dataclasses
import hashlib
import logging
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hdnn.errors import HdnnError, first_line
from hdnn.nnet.losses import cross_entropy, kd_loss
from hdnn.nnet.model_dir import copy_model_dir
from hdnn.nnet.models import add_lhuc, save_torch

UPDATES = ("gates", "lhuc", "all")
log = logging.getLogger(__name__)


@dataclass
class AdaptConfig:
    update: str = "gates"
    learn_rate: float = 0.002   # SGD, per frame as nnet1 (times the minibatch size)
    max_epochs: int = 5
    minibatch_size: int = 256
    kld_rho: float = 0.5
    held_out: float = 0.1
    min_confidence: float = 0.0
    max_seconds: float = 0.0    # adapt on the first this many seconds of each speaker (0: all)
    seed: int = 777

    def __post_init__(self):
        if self.update not in UPDATES:
            raise HdnnError(f"unknown --update {self.update!r}: choose from {', '.join(UPDATES)}")
        if not 0.0 <= self.kld_rho < 1.0:
            raise HdnnError(f"--kld-rho {self.kld_rho} is outside [0, 1)")
        if not 0.0 <= self.held_out < 1.0:
            raise HdnnError(f"--held-out {self.held_out} is outside [0, 1)")
        if self.max_seconds < 0:
            raise HdnnError(f"--max-seconds {self.max_seconds} is negative")
        if self.learn_rate <= 0 or self.max_epochs < 1 or self.minibatch_size < 1:
            raise HdnnError("--learn-rate, --max-epochs and --minibatch-size must be positive")


def file_digest(path):
    """sha256 of a file's bytes (model files are written byte-identically for equal weights)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def adaptable_parameters(model, update):
    """{name: parameter} that ``update`` trains; adds LHUC parameters for "lhuc"."""
    if update == "lhuc":
        if model.lhuc is None:
            add_lhuc(model)
        return {"lhuc": model.lhuc}
    if update == "gates":
        gate_ids = {id(p) for p in model.gate_parameters()}
        if not gate_ids:
            raise HdnnError(f"a {model.config['type']} has no gates to adapt (--update lhuc or all)")
        return {n: p for n, p in model.named_parameters() if id(p) in gate_ids}
    return dict(model.named_parameters())


# ---------------------------------------------------------------------- one speaker

@dataclass
class SpeakerData:
    """A speaker's network inputs and targets: ``hard`` (N,) pdf ids, or ``teacher`` (a model
    run on ``teacher_inputs``); ``tr`` / ``cv`` index the training and held-out frames."""

    inputs: torch.Tensor
    hard: torch.Tensor = None
    teacher_inputs: torch.Tensor = None
    tr: np.ndarray = None
    cv: np.ndarray = None


def _loss(model, unadapted, teacher, data, idx, rho):
    """The adaptation loss on frames ``idx`` and the frame accuracy against its targets."""
    x = data.inputs[idx]
    logits = model(x)
    with torch.no_grad():
        si_logits = unadapted(x) if rho > 0 else None
        target_logits = teacher(data.teacher_inputs[idx]) if teacher is not None else None
    if teacher is not None:
        main = kd_loss(logits, None, teacher_logits=target_logits, lam=1.0)
        labels = target_logits.argmax(1)
    else:
        labels = data.hard[idx]
        main = cross_entropy(logits, labels)
    loss = main if rho == 0 else (1 - rho) * main + rho * kd_loss(logits, None, teacher_logits=si_logits, lam=1.0)
    return loss, (logits.argmax(1) == labels).float().mean()


def _evaluate(model, unadapted, teacher, data, idx, config):
    """(loss, accuracy) on frames ``idx``, averaged over minibatches weighted by size."""
    total, correct = 0.0, 0.0
    with torch.no_grad():
        for start in range(0, len(idx), 4096):
            part = idx[start:start + 4096]
            loss, acc = _loss(model, unadapted, teacher, data, part, config.kld_rho)
            total += loss.item() * len(part)
            correct += acc.item() * len(part)
    return total / len(idx), correct / len(idx)


def adapt_speaker(model, data, config, teacher=None, rng=None):
    """Fine-tune a copy of ``model`` on one speaker's ``data``; returns (adapted {name: tensor},
    report dict). ``rng``: a numpy Generator for the frame order."""
    rng = rng or np.random.default_rng(config.seed)
    unadapted = model.eval()
    adapted = copy.deepcopy(model).train()
    adapted.requires_grad_(False)
    params = adaptable_parameters(adapted, config.update)
    for p in params.values():
        p.requires_grad_(True)
    optimizer = torch.optim.SGD(params.values(), lr=config.learn_rate * config.minibatch_size)
    cv = data.cv if data.cv is not None and len(data.cv) else None
    best = {n: p.detach().clone() for n, p in params.items()}
    report = dict(frames=len(data.tr), held_out_frames=0 if cv is None else len(cv), epochs=0, best_epoch=0)
    if cv is not None:
        report["cv_loss"] = [list(_evaluate(adapted, unadapted, teacher, data, cv, config))]
    best_loss = report["cv_loss"][0][0] if cv is not None else None
    for epoch in range(1, config.max_epochs + 1):
        order = data.tr[rng.permutation(len(data.tr))]
        for start in range(0, len(order), config.minibatch_size):
            batch = order[start:start + config.minibatch_size]
            loss, _ = _loss(adapted, unadapted, teacher, data, batch, config.kld_rho)
            if not torch.isfinite(loss):
                raise HdnnError(f"epoch {epoch}: adaptation loss is {loss.item()} "
                                f"(--learn-rate {config.learn_rate:g} too high?)")
            optimizer.zero_grad(set_to_none=True)
            # the rate is per frame (the step is scaled by the minibatch size, the loss is a mean):
            # a short last minibatch weighs by its frames, as a summed gradient does, not as a full
            # one (its frames would weigh minibatch-size / n times). A speaker's few frames are all
            # kept, unlike training's randomizer, which drops the short last minibatch.
            (loss * (len(batch) / config.minibatch_size)).backward()
            optimizer.step()
        report["epochs"] = epoch
        if cv is None:
            best, report["best_epoch"] = {n: p.detach().clone() for n, p in params.items()}, epoch
            continue
        cv_loss, cv_acc = _evaluate(adapted, unadapted, teacher, data, cv, config)
        report["cv_loss"].append([cv_loss, cv_acc])
        if cv_loss >= best_loss:
            break
        best_loss, report["best_epoch"] = cv_loss, epoch
        best = {n: p.detach().clone() for n, p in params.items()}
    return best, report


# ---------------------------------------------------------------------- speaker files

def save_speaker_params(path, params, update, base_digest, options, report):
    save_torch({"update": update, "params": params, "base": base_digest, "options": options,
                "report": report}, path)


def data_digest(data):
    """sha256 of a speaker's network inputs and targets (what its adaptation was made from)."""
    h = hashlib.sha256()
    for t in (data.inputs, data.hard, data.teacher_inputs):
        if t is not None:
            h.update(str(tuple(t.shape)).encode())
            h.update(t.numpy().tobytes())
    return h.hexdigest()


def read_speaker_file(path):
    """The dict save_speaker_params wrote; FileNotFoundError when there is none."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, KeyError, EOFError, ValueError) as e:
        detail = "not a torch archive" if isinstance(e, KeyError) else first_line(e)
        raise HdnnError(f"{path}: not a speaker parameter file ({detail})") from None
    if not isinstance(blob, dict) or not {"params", "base", "update", "options"} <= set(blob):
        raise HdnnError(f"{path}: not a speaker parameter file (no params, base, update and options)")
    return blob


class SpeakerModels:
    """The model of each speaker: ``base`` with <spk_dir>/<spk>.pt loaded over it. A speaker
    without a file is an error; files made for another model file are refused."""

    def __init__(self, base, base_file, spk_dir):
        self.base, self.spk_dir = base, Path(spk_dir)
        self.digest = file_digest(base_file)
        self.base_file = base_file
        if not self.spk_dir.is_dir():
            raise HdnnError(f"{self.spk_dir}: no such directory of speaker parameters")
        self._cache = (None, None)

    def __call__(self, spk, utt=None):
        if self._cache[0] == spk:
            return self._cache[1]
        path = self.spk_dir / f"{spk}.pt"
        try:
            blob = read_speaker_file(path)
        except FileNotFoundError:
            raise HdnnError(f"{path}: no adapted parameters for speaker {spk}"
                            + (f" (utterance {utt})" if utt else "")) from None
        if blob["base"] != self.digest:
            raise HdnnError(f"{path}: adapts another model than {self.base_file} (its digest differs); "
                            f"adapt again")
        model = copy.deepcopy(self.base)
        if "lhuc" in blob["params"]:
            add_lhuc(model)
        names = dict(model.named_parameters())
        unknown = [n for n in blob["params"] if n not in names]
        if unknown:
            raise HdnnError(f"{path}: parameter {unknown[0]} is not in {self.base_file}")
        with torch.no_grad():
            for n, value in blob["params"].items():
                if names[n].shape != value.shape:
                    raise HdnnError(f"{path}: parameter {n} has shape {tuple(value.shape)}, "
                                    f"the model's is {tuple(names[n].shape)}")
                names[n].copy_(value)
        self._cache = (spk, model.eval())
        return model


# ---------------------------------------------------------------------- a data dir

def _split_held_out(utt_lengths, fraction):
    """(training frame indices, held-out frame indices): the last ``fraction`` of the
    utterances (at least one when there are two or more, none when fraction is 0)."""
    n = len(utt_lengths)
    k = 0 if fraction == 0 or n < 2 else max(1, min(n - 1, round(fraction * n)))
    cut = int(sum(utt_lengths[:n - k]))
    total = int(sum(utt_lengths))
    return np.arange(cut), np.arange(cut, total)


def speaker_data(pipeline, utts, hard=None, teacher_pipeline=None, held_out=0.1, length_tolerance=5,
                 source="targets", max_frames=0):
    """SpeakerData of ``utts``: inputs from ``pipeline``, hard targets from {utt: pdf ids}
    (utterances without are skipped) or teacher inputs from ``teacher_pipeline``; with
    ``max_frames``, only the first that many frames (in the order of ``utts``)."""
    inputs, targets, t_inputs, lengths = [], [], [], []
    for utt in utts:
        if max_frames and sum(lengths) >= max_frames:
            break
        x = pipeline(utt)
        parts = [x]
        if hard is not None:
            if utt not in hard:
                continue
            parts.append(hard[utt])
        if teacher_pipeline is not None:
            parts.append(teacher_pipeline(utt))
        n = min(len(a) for a in parts)
        if max(len(a) for a in parts) - n > length_tolerance:
            raise HdnnError(f"{source}: utterance {utt} has {len(parts[1])} frames, its features {len(x)}")
        if max_frames:
            n = min(n, max_frames - sum(lengths))
        inputs.append(x[:n])
        if hard is not None:
            targets.append(np.asarray(hard[utt][:n], dtype=np.int64))
        if teacher_pipeline is not None:
            t_inputs.append(parts[-1][:n])
        lengths.append(n)
    if not lengths:
        return None
    tr, cv = _split_held_out(lengths, held_out)
    return SpeakerData(inputs=torch.from_numpy(np.concatenate(inputs)),
                       hard=torch.from_numpy(np.concatenate(targets)) if targets else None,
                       teacher_inputs=torch.from_numpy(np.concatenate(t_inputs)) if t_inputs else None,
                       tr=tr, cv=cv)


def confident_frames(model, data, min_confidence):
    """Drop the training/held-out frames whose hard target gets less than ``min_confidence``
    posterior from ``model``; returns the fraction kept."""
    if min_confidence <= 0 or data.hard is None:
        return 1.0
    with torch.no_grad():
        post = F.softmax(model.eval()(data.inputs), dim=-1)
        keep = (post.gather(1, data.hard[:, None])[:, 0] >= min_confidence).numpy()
    before = len(data.tr) + len(data.cv)
    data.tr, data.cv = data.tr[keep[data.tr]], data.cv[keep[data.cv]]
    return (len(data.tr) + len(data.cv)) / max(before, 1)


def adapt_dir(data_dir, model_dir, out_dir, config, targets=None, teacher=None, progress=True):
    """Adapt the model of ``model_dir`` to every speaker of ``data_dir``: hard ``targets`` (an
    alignment dir or pdf-id rspecifier) or a ``teacher`` model file. Writes <out_dir>/spk/<spk>.pt
    and copies the model dir's files to ``out_dir``. Returns {spk: report}."""
    from tqdm import tqdm

    from hdnn.nnet.model_dir import load_for_data
    from hdnn.kaldi.alignments import read_targets

    if (targets is None) == (teacher is None):
        raise HdnnError("adaptation needs either alignments (targets) or a teacher model, not both")
    model_file = Path(model_dir) / "final.pt"
    model, pipeline = load_for_data(model_file, data_dir)
    num_pdfs = model.config["num_pdfs"]
    hard, source, teacher_model, teacher_pipeline = None, None, None, None
    if targets is not None:
        hard, source, _ = read_targets(targets, num_pdfs)
    else:
        teacher_model, teacher_pipeline = load_for_data(teacher, data_dir, num_pdfs)
        teacher_model.eval()
        source = str(teacher)
    out_dir = Path(out_dir)
    spk_dir = out_dir / "spk"
    spk_dir.mkdir(parents=True, exist_ok=True)
    copy_model_dir(model_dir, out_dir)
    digest = file_digest(model_file)
    options = {**dataclasses.asdict(config), "teacher": file_digest(teacher) if teacher else None}
    reports = {}
    data = pipeline.data
    for spk in tqdm(data.speakers, desc=f"adapt {out_dir.name}", unit="spk", disable=not progress or None):
        if "/" in spk:
            raise HdnnError(f"{data.path / 'spk2utt'}: speaker id {spk!r} cannot name a file")
        path = spk_dir / f"{spk}.pt"
        sd = speaker_data(pipeline, data.spk2utt[spk], hard, teacher_pipeline, config.held_out, source=source,
                          max_frames=round(100 * config.max_seconds))
        if sd is None:
            log.warning("speaker %s: no utterance has targets in %s; not adapted", spk, source)
            path.unlink(missing_ok=True)  # an earlier run's file would not match these targets
            continue
        spk_options = {**options, "data": data_digest(sd)}
        if path.exists():
            blob = read_speaker_file(path)
            if blob["base"] == digest and blob["options"] == spk_options:
                reports[spk] = blob["report"]
                continue
            log.info("%s: made from other data, targets or options: adapting again", path)
        kept = confident_frames(model, sd, config.min_confidence)
        rng = np.random.default_rng([config.seed, zlib.crc32(spk.encode())])
        params, report = adapt_speaker(model, sd, config, teacher_model, rng)
        report["kept_fraction"] = kept
        save_speaker_params(path, params, config.update, digest, spk_options, report)
        reports[spk] = report
        log.info("speaker %s: %s", spk, describe_report(report))
    if not reports:
        raise HdnnError(f"{data.path}: no speaker could be adapted (no targets in {source}?)")
    return reports


def describe_report(report):
    text = f"{report['frames']} frames, {report['epochs']} epochs, kept epoch {report['best_epoch']}"
    if report.get("cv_loss"):
        (l0, a0), best = report["cv_loss"][0], report["cv_loss"][report["best_epoch"]]
        text += (f"; held-out ({report['held_out_frames']} frames) loss {l0:.4f} -> {best[0]:.4f}, "
                 f"accuracy {100 * a0:.2f}% -> {100 * best[1]:.2f}%")
    if report.get("kept_fraction", 1.0) < 1.0:
        text += f"; {100 * report['kept_fraction']:.1f}% of frames passed the confidence threshold"
    return text

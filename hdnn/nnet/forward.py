"""Network outputs for Kaldi: log-likelihoods for decoding, log-posteriors, or top-k posteriors.

Log-likelihoods follow nnet1's ``nnet-forward --no-softmax=true --class-frame-counts=...``
contract (PdfPrior): log p(x|s) ~ log P(s|x) - log P(s), with log P(s) from the training
alignment counts; classes rarer than ``prior_floor`` get a huge log-prior, so never win.
The matrices (frames x pdfs, columns = pdf-ids) go to ``latgen-faster-mapped`` or the
Kaldi-free decoder.
"""
import logging

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hdnn.errors import HdnnError

OUTPUTS = ("loglikes", "log-posteriors", "posteriors")


@torch.no_grad()
def log_posteriors(model, pipeline, utts=None, temperature=1.0, speaker_models=None):
    """Iterate (utt, (T, num_pdfs) float32 log-softmax(logits / temperature)) over ``utts``;
    with ``speaker_models`` (spk, utt -> model) each utterance gets its speaker's model."""
    model.eval()
    for utt in utts if utts is not None else pipeline.utts:
        m = speaker_models(pipeline.data.utt2spk.get(utt), utt) if speaker_models else model
        logits = m(torch.from_numpy(pipeline(utt)))
        yield utt, F.log_softmax(logits / temperature, dim=-1).numpy()


def prior_log_probs(counts, num_pdfs, counts_source, floor=1e-10):
    """log-priors of the ``num_pdfs`` classes from frame counts (analyze-counts format)."""
    from hdnn.kaldi.counts import log_priors

    if len(counts) != num_pdfs:
        raise HdnnError(f"{counts_source}: {len(counts)} counts, but the model has {num_pdfs} outputs")
    return log_priors(counts, floor)


def forward(model, pipeline, output="loglikes", log_prior=None, topk=20, min_weight=0.0, temperature=1.0,
            speaker_models=None):
    """Iterate (utt, value) of the chosen ``output`` over the utterances of ``pipeline``:
    loglikes (needs ``log_prior``) and log-posteriors are (T, num_pdfs) matrices, posteriors the
    top-k sparse Kaldi posteriors at ``temperature`` (stored teacher targets for KD).
    ``speaker_models``: see log_posteriors."""
    from hdnn.kaldi.posteriors import topk_posteriors

    if output not in OUTPUTS:
        raise HdnnError(f"unknown output {output!r}; choose from {', '.join(OUTPUTS)}")
    items = log_posteriors(model, pipeline, temperature=temperature, speaker_models=speaker_models)
    for utt, logp in tqdm(items, total=len(pipeline.utts), desc="forward", unit="utt", disable=None, leave=False):
        if output == "loglikes":
            yield utt, logp - log_prior
        elif output == "log-posteriors":
            yield utt, logp
        else:
            yield utt, topk_posteriors(np.exp(logp), topk, min_weight)


def forward_dir(data_dir, model_dir, wspecifier, output="loglikes", model_file=None, counts_file=None,
                prior_floor=1e-10, topk=20, min_weight=0.0, temperature=1.0, spk_params=None):
    """Run the model of ``model_dir`` (its final.pt and feature set-up) over ``data_dir`` and write
    the ``output`` of every utterance to ``wspecifier``; returns the number written.
    ``spk_params``: a dir of per-speaker adapted parameters (<spk>.pt, hdnn.nnet.adapt) applied
    to each utterance through the data dir's utt2spk."""
    from hdnn.kaldi.counts import read_counts
    from hdnn.kaldi.io import write_matrices
    from hdnn.kaldi.posteriors import write_posteriors
    from hdnn.nnet.model_dir import PRIOR_COUNTS, load_feature_pipeline
    from hdnn.nnet.models import load_model
    from hdnn.nnet.train import check_model_fits
    from pathlib import Path

    model_file = model_file or Path(model_dir) / "final.pt"
    model = load_model(model_file)
    pipeline = load_feature_pipeline(model_dir, data_dir)
    check_model_fits(model, pipeline.dim, None, model_file, pipeline.data.feats_scp)
    speaker_models = None
    if spk_params is not None:
        from hdnn.nnet.adapt import SpeakerModels

        speaker_models = SpeakerModels(model, model_file, spk_params)
    log_prior = None
    if output == "loglikes":
        counts_file = counts_file or Path(model_dir) / PRIOR_COUNTS
        log_prior = prior_log_probs(read_counts(counts_file), model.config["num_pdfs"], counts_file, prior_floor)
    items = forward(model, pipeline, output, log_prior, topk, min_weight, temperature, speaker_models)
    write = write_posteriors if output == "posteriors" else write_matrices
    count = write(wspecifier, items)
    logging.info("wrote %s of %d utterances to %s", output, count, wspecifier)
    return count

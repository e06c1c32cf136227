"""Monophone training, as Kaldi's steps/train_mono.sh: gmm-init-mono, equal alignment,
then Viterbi EM with realignment at fixed iterations and mixing up to `totgauss`."""
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdnn.errors import HdnnError
from hdnn.gmm.model import GmmSystem
from hdnn.gmm.train import TrainingData, Trainer, claim_gmm_dir, estimate, resume_point, run_em, set_jobs
from hdnn.kaldi.gmm_model import AmDiagGmm, DiagGmm, HmmTopology, TransitionModel
from hdnn.kaldi.tree import monophone_tree

log = logging.getLogger(__name__)

REALIGN_ITERS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 23, 26, 29, 32, 35, 38)


@dataclass
class MonoConfig:
    """The configuration section of steps/train_mono.sh."""

    num_iters: int = 40
    max_iter_inc: int = 30
    initial_beam: float = 6.0
    regular_beam: float = 10.0
    retry_beam: float = 40.0
    totgauss: int = 1000
    careful: bool = False
    boost_silence: float = 1.0
    realign_iters: tuple = REALIGN_ITERS
    power: float = 0.25


def read_int_lines(path):
    path = Path(path)
    if not path.exists():
        raise HdnnError(f"{path}: no such file")
    return [[int(x) for x in line.split()] for line in path.read_text().splitlines() if line.strip()]


def init_mono(lang, feats):
    """gmm-init-mono --shared-phones=phones/sets.int: the monophone tree and one Gaussian per pdf
    with the global mean and variance of `feats` (a list of matrices)."""
    topo = HmmTopology.from_text((lang.dir / "topo").read_text(), lang.dir / "topo")
    sets = read_int_lines(lang.dir / "phones" / "sets.int")
    tree = monophone_tree(sets, {p: topo.num_pdf_classes(p) for p in topo.phones})
    tm = TransitionModel.from_tree(tree, topo)
    x = np.concatenate(feats).astype(np.float64)
    mean, var = x.mean(0), x.var(0)
    if (var <= 0).any():
        raise HdnnError("gmm-init-mono: zero variance in the initial features")
    gmm = DiagGmm.from_means_vars([1.0], mean[None], var[None])
    return GmmSystem(tree, tm, AmDiagGmm([gmm] * tree.num_pdfs))


def train_mono(data_dir, lang_dir, out_dir, nj=4, config=None, cmd="run.pl", progress=True):
    """steps/train_mono.sh <data> <lang> <dir>: writes <dir>/{tree,final.mdl,final.occs,ali.JOB.gz,num_jobs}.

    An interrupted run resumes from its last <x>.mdl; a finished one (final.mdl) is not redone.
    """
    cfg = config or MonoConfig()
    out = Path(out_dir)
    claim_gmm_dir(out, data_dir, lang_dir, None, {"config": dataclasses.asdict(cfg)})
    start = resume_point(out)
    if start is None and (out / "final.mdl").exists():
        log.info("%s: already trained (final.mdl exists)", out)
        return GmmSystem.load(out)
    out.mkdir(parents=True, exist_ok=True)
    data = TrainingData.load(data_dir, lang_dir, nj)
    set_jobs(out, data)
    trainer = Trainer(data, None, out, cmd, boost_silence=cfg.boost_silence, retry_beam=cfg.retry_beam,
                      careful=cfg.careful, progress=False)
    if not start:  # 0.mdl alone: the first pass did not finish
        system = init_mono(data.lang, [data.feats[u] for u in data.jobs[0][:10]])
        log.info("gmm-init-mono: %d pdfs, feature dim %d; %d utterances in %d jobs",
                 system.am.num_pdfs, data.dim, sum(map(len, data.jobs)), data.nj)
        system.save(out, "0.mdl")  # with the tree
        trainer.system, trainer.model = system, "0.mdl"
        _first_pass(trainer, out)
        start = 1
    else:
        trainer.use(GmmSystem.load(out, f"{start}.mdl"), f"{start}.mdl")
        log.info("resuming from %s", out / f"{start}.mdl")
    numgauss0 = trainer.system.am.num_pdfs
    incgauss = (cfg.totgauss - numgauss0) // cfg.max_iter_inc
    return run_em(trainer, out, start, cfg.num_iters, cfg.realign_iters,
                  numgauss_at=lambda x: numgauss0 + incgauss * min(x - 1, cfg.max_iter_inc),
                  beam_at=lambda x: cfg.initial_beam if x == 1 else cfg.regular_beam,
                  power=cfg.power, desc="train_mono", progress=progress)


def _first_pass(trainer, out):
    """align-equal-compiled, gmm-acc-stats-ali and gmm-est --min-gaussian-occupancy=3 -> 1.mdl."""
    result = trainer.align(out, equal=True, name="align.0")
    log.info("equal alignment: %d utterances, %d too short", len(result.alignments), len(result.failed))
    stats = trainer.accumulate("acc.0")
    system = trainer.system
    system, _, summary = estimate(system, stats, mixup=system.am.num_pdfs, power=0.25, min_gaussian_occupancy=3)
    log.info("iteration 0: %s", summary)
    trainer.use(system, "1.mdl")
    (out / "0.mdl").unlink()

"""Viterbi EM for GMM-HMMs, the engine of train_mono, train_deltas, train_lda_mllt and align_si.

Statistics (gmm-acc-stats-ali) are accumulated in numpy, one batch per pdf, in `--nj`
forked processes; the update (gmm-est: transitions, Gaussians, mixing up) is Kaldi's own
C++ code from kaldi-hmm-gmm.
"""
import logging
import multiprocessing
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hdnn.errors import HdnnError
from hdnn.gmm.align import GraphCompiler, align_utterances, boost_silence, sort_by_utt, write_alignments
from hdnn.gmm.features import iter_cmvn_deltas, split_list
from hdnn.gmm.lang import Lang
from hdnn.gmm.model import GmmSystem, am_from_khg, khg_am, khg_log_probs, khg_transition_model
from hdnn.gmm.mixup import mix_up
from hdnn.gmm.wheels import khg
from hdnn.kaldi.binary import read_kaldi_matrix
from hdnn.kaldi.data_dir import DataDir
from hdnn.kaldi.features import splice
from hdnn.kaldi.gmm_model import TransitionModel, write_kaldi_vector

log = logging.getLogger(__name__)


@dataclass
class TrainingData:
    """Features (by default CMVN + deltas, as in steps/train_deltas.sh), transcripts as word
    ids, the utterances of each job, split by speaker like utils/split_data.sh, and those of
    each speaker (the unit of every sum over the data: see map_ordered)."""

    data_dir: Path
    lang: Lang
    feats: dict
    word_ids: dict
    jobs: list
    speaker_utts: list

    @classmethod
    def load(cls, data_dir, lang_dir, nj, feats=None):
        """`feats`: {utt: features}; by default those of load_features(data_dir)."""
        data = DataDir(data_dir)
        lang = lang_dir if isinstance(lang_dir, Lang) else Lang(lang_dir)
        if data.text is None:
            raise HdnnError(f"{data.path / 'text'}: no such file")
        if data.feats_scp is None:
            raise HdnnError(f"{data.path / 'feats.scp'}: no such file (run make_mfcc first)")
        if feats is None:
            feats = load_features(data.path)
        word_ids, num_oov = {}, 0
        unk = lang.words.get(lang.oov)
        for utt in data.utts:
            words = data.text.get(utt)
            if words is None:
                log.warning("%s: no transcript for utterance %s: skipped", data.path / "text", utt)
                continue
            if not words.split():
                log.warning("%s: empty transcript for utterance %s: skipped", data.path / "text", utt)
                continue
            ids = lang.word_ids(words.split(), data.path / "text", utt)
            num_oov += sum(1 for w, i in zip(words.split(), ids) if i == unk and w != lang.oov)
            word_ids[utt] = ids
        if num_oov:
            log.info("%s: %d words not in the lexicon mapped to %s", data.path / "text", num_oov, lang.oov)
        speakers = data.speakers
        if nj > len(speakers):
            raise HdnnError(f"{data.path}: cannot split {len(speakers)} speakers into {nj} jobs (use a smaller --nj)")
        speaker_utts = [[u for u in data.spk2utt[s] if u in word_ids and u in feats] for s in speakers]
        jobs = [[u for utts in part for u in utts] for part in split_list(speaker_utts, nj)]
        if not any(jobs):
            raise HdnnError(f"{data.path}: no utterance has both features and a transcript")
        return cls(data.path, lang, feats, word_ids, jobs, speaker_utts)

    @property
    def dim(self):
        return next(iter(self.feats.values())).shape[1]

    @property
    def nj(self):
        return len(self.jobs)


def splice_context(model_dir):
    """(left, right) frames of <model_dir>/splice_opts (`--left-context=3 --right-context=3`)."""
    opts = dict(re.findall(r"--(left|right)-context=(\d+)", (Path(model_dir) / "splice_opts").read_text()))
    return int(opts.get("left", 4)), int(opts.get("right", 4))  # splice-feats' defaults


def transform_features(feats, mat):
    """transform-feats: `mat` (dim x D, or dim x (D+1) with an offset column) times each frame."""
    d = feats.shape[1]
    out = feats @ mat[:, :d].T.astype(np.float32)
    return out + mat[:, d].astype(np.float32) if mat.shape[1] == d + 1 else out


def load_features(data_dir, model_dir=None, utts=None):
    """{utt: features} of a data dir as the model in `model_dir` sees them: apply-cmvn, then
    add-deltas, or, when <model_dir>/final.mat exists (LDA+MLLT), splice-feats + transform-feats."""
    mat = Path(model_dir) / "final.mat" if model_dir else None
    if mat is None or not mat.exists():
        return dict(iter_cmvn_deltas(data_dir, utts))
    left, right = splice_context(model_dir)
    m = read_kaldi_matrix(mat)
    return {u: transform_features(splice(x, left, right), m)
            for u, x in iter_cmvn_deltas(data_dir, utts, delta_order=0)}


# ---------------------------------------------------------------- parallel jobs

JOB_STATE = {}  # state that forked job processes inherit


def run_jobs(func, nj, **shared):
    """func(job) for job in 1..nj, in forked processes that see `shared` in JOB_STATE."""
    JOB_STATE.clear()
    JOB_STATE.update(shared)
    try:
        if nj == 1:
            return [func(1)]
        with multiprocessing.get_context("fork").Pool(nj) as pool:
            return pool.map(func, range(1, nj + 1))
    finally:
        JOB_STATE.clear()


def map_ordered(func, items, nj, **shared):
    """func(item) for each item, in `nj` forked processes, yielded in the order of `items`.

    Statistics are summed per speaker and then over speakers in this one order: a sum per job
    would change its last bits with --nj (floating-point addition is not associative), and the
    next model with them.
    """
    JOB_STATE.clear()
    JOB_STATE.update(shared)
    try:
        if nj == 1:
            yield from map(func, items)
        else:
            with multiprocessing.get_context("fork").Pool(nj) as pool:
                yield from pool.imap(func, items)
    finally:
        JOB_STATE.clear()


# ---------------------------------------------------------------- statistics

@dataclass
class GmmStats:
    """gmm-acc-stats-ali statistics: per-Gaussian occupancy, first and second order sums
    (Gaussians of all pdfs stacked), transition-id counts and the total log-likelihood."""

    occ: np.ndarray
    x: np.ndarray
    x2: np.ndarray
    trans: np.ndarray
    loglike: float = 0.0
    frames: int = 0

    @classmethod
    def zeros(cls, system):
        g, d = system.am.num_gauss, system.am.dim
        return cls(np.zeros(g), np.zeros((g, d)), np.zeros((g, d)), np.zeros(system.tm.num_transition_ids + 1))

    def add(self, other):
        for name in ("occ", "x", "x2", "trans"):
            getattr(self, name).__iadd__(getattr(other, name))
        self.loglike += other.loglike
        self.frames += other.frames
        return self


def accumulate(system, feats, alignments):
    """Statistics of (features, transition-ids) pairs under `system`, batched per pdf."""
    stats = GmmStats.zeros(system)
    if not feats:
        return stats
    x = np.concatenate(feats).astype(np.float64)
    tids = np.concatenate(alignments)
    stats.trans += np.bincount(tids, minlength=len(stats.trans))
    pdf = system.tm.tid2pdf[tids]
    order = np.argsort(pdf, kind="stable")
    pdfs, first = np.unique(pdf[order], return_index=True)
    offsets = np.concatenate([[0], np.cumsum([g.num_gauss for g in system.am.pdfs])])
    for p, rows in zip(pdfs, np.split(order, first[1:])):
        xp = x[rows]
        ll = system.am.pdfs[p].component_loglikes(xp)
        top = ll.max(1, keepdims=True)
        post = np.exp(ll - top)
        total = post.sum(1, keepdims=True)
        post /= total
        stats.loglike += float((np.log(total) + top).sum())
        g = slice(offsets[p], offsets[p + 1])
        stats.occ[g] += post.sum(0)
        stats.x[g] += post.T @ xp
        stats.x2[g] += post.T @ (xp * xp)
    stats.frames += len(tids)
    return stats


def _khg_accumulator(kam, stats, am):
    """A khg.AccumAmDiagGmm holding `stats`.

    The wheel's accumulators can only be filled through AccumulateForGaussian (get_acc
    returns a copy), so each Gaussian gets two frames, mean +- standard deviation, of half
    its occupancy each: they have exactly its zeroth, first and second order statistics.
    """
    acc = khg.AccumAmDiagGmm()
    acc.init(kam, int(khg.GmmUpdateFlags.kGmmAll))
    offsets = np.concatenate([[0], np.cumsum([g.num_gauss for g in am.pdfs])])
    used = np.flatnonzero(stats.occ > 0)
    occ = stats.occ[used, None]
    mean = stats.x[used] / occ
    std = np.sqrt(np.maximum(stats.x2[used] / occ - mean * mean, 0.0))
    pdf_of = np.searchsorted(offsets, used, side="right") - 1
    for i, p, o, m, s in zip(used, pdf_of, occ[:, 0], mean, std):
        k = int(i - offsets[p])
        acc.accumulate_for_gaussian(kam, (m + s).astype(np.float32), int(p), k, 0.5 * o)
        acc.accumulate_for_gaussian(kam, (m - s).astype(np.float32), int(p), k, 0.5 * o)
    return acc


def estimate(system, stats, mixup=0, power=0.25, min_gaussian_occupancy=10.0, perturb_factor=0.01,
             min_count=20.0, seed=0):
    """gmm-est: update transitions and Gaussians from `stats`, then mix up to `mixup` Gaussians
    (the perturbations drawn from `seed`, so a run is repeatable).

    Returns (new GmmSystem, pdf occupancies, a one-line summary).
    """
    ctx, ktm, _ = system.khg()
    ktm = khg_transition_model(ctx, system.tm)  # a fresh copy: the update works in place
    kam = khg_am(system.am)
    t_impr, t_count = ktm.mle_update(stats.trans.astype(np.float64), khg.MleTransitionUpdateConfig())
    acc = _khg_accumulator(kam, stats, system.am)
    opts = khg.MleDiagGmmOptions()
    opts.min_gaussian_occupancy = min_gaussian_occupancy
    g_impr, g_count = khg.mle_am_diag_gmm_update(config=opts, amdiag_gmm_acc=acc,
                                                 flags=khg.str_to_gmm_flags("mvw"), am_gmm=kam)
    offsets = np.concatenate([[0], np.cumsum([g.num_gauss for g in system.am.pdfs])])
    occs = np.add.reduceat(stats.occ, offsets[:-1])
    am = am_from_khg(kam)
    if mixup:
        am = mix_up(am, occs, int(mixup), perturb_factor, power, min_count, seed)
    tm = TransitionModel(system.tm.topo, system.tm.tuples, khg_log_probs(ktm))
    new = system.replaced(tm=tm, am=am)
    summary = (f"transition impr {t_impr / max(t_count, 1):.4f}/frame, GMM impr {g_impr / max(g_count, 1):.4f}/frame "
               f"over {g_count:.0f} frames; avg like {stats.loglike / max(stats.frames, 1):.3f}; "
               f"{new.am.num_pdfs} pdfs, {new.am.num_gauss} Gaussians")
    return new, occs, summary


# ---------------------------------------------------------------- the trainer

class Trainer:
    """Holds the training data, the compiled graphs and the current alignments of a system,
    and runs the parallel stages of Kaldi's training scripts over them."""

    def __init__(self, data, system, boost_silence=1.0, beam=10.0, retry_beam=40.0, careful=False):
        self.data = data
        self.system = system
        self.boost = boost_silence
        self.beam, self.retry_beam, self.careful = beam, retry_beam, careful
        self.graphs = None
        self.alignments = {}
        self.decodable = None  # features -> decodable; None: the GMM's likelihoods

    def compile_graphs(self):
        """compile-train-graphs for every utterance (kept for the whole run, as fsts.JOB.gz)."""
        ctx, ktm, _ = self.system.khg()
        compiler = GraphCompiler(ctx, ktm, self.data.lang)
        self.graphs = {}
        for utts in self.data.jobs:
            for utt in utts:
                self.graphs[utt] = compiler.compile(self.data.word_ids[utt], utt)

    def aligned_utts(self, speaker):
        """The utterances of speaker number `speaker` that have an alignment."""
        return [u for u in self.data.speaker_utts[speaker] if u in self.alignments]

    def _speaker_stats(self, speaker):
        utts = self.aligned_utts(speaker)
        return accumulate(self.system, [self.data.feats[u] for u in utts], [self.alignments[u] for u in utts])

    def accumulate(self):
        """gmm-acc-stats-ali over all aligned utterances, summed per speaker, then in speaker order."""
        total = GmmStats.zeros(self.system)
        for stats in map_ordered(_acc_speaker, range(len(self.data.speaker_utts)), self.data.nj, trainer=self):
            total.add(stats)
        return total

    def _job_align(self, job, beam):
        system = self.system
        if self.boost != 1.0:
            am = boost_silence(system.am, system.tm, self.data.lang.silence, self.boost)
            system = system.replaced(am=am)
        _, ktm, kam = system.khg()
        utts = self.data.jobs[job - 1]
        return align_utterances(ktm, kam, {u: self.graphs[u] for u in utts}, self.data.feats,
                                beam=beam, retry_beam=self.retry_beam, careful=self.careful,
                                decodable=self.decodable)

    def align(self, out_dir=None, beam=None):
        """gmm-align-compiled over all jobs; writes <out_dir>/ali.JOB.gz when given."""
        if self.graphs is None:
            self.compile_graphs()
        self.system.khg()  # built once here, shared by the forked jobs
        results = run_jobs(_align_job, self.data.nj, trainer=self, beam=beam or self.beam)
        if out_dir is not None:
            for job, res in enumerate(results, 1):
                utts = [u for u in self.data.jobs[job - 1] if u in res.alignments]
                write_alignments(Path(out_dir) / f"ali.{job}.gz", ((u, res.alignments[u]) for u in utts))
        total = results[0]
        for r in results[1:]:
            total.add(r)
        total.log_problems(beam or self.beam, self.retry_beam)
        self.alignments = sort_by_utt(total.alignments)
        if not self.alignments:
            raise HdnnError(f"{self.data.data_dir}: no utterance could be aligned "
                            f"(beam {beam or self.beam}, retry beam {self.retry_beam})")
        return total


def align_si(data_dir, lang_dir, src_dir, out_dir, nj=4, beam=10.0, retry_beam=40.0, careful=False,
             boost_silence=1.0):
    """steps/align_si.sh <data> <lang> <src-dir> <align-dir>: aligns with <src-dir>/final.mdl (and
    final.mat, for LDA+MLLT systems) and writes <align-dir>/{ali.JOB.gz,final.mdl,tree,num_jobs}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    system = GmmSystem.load(src_dir)
    data = TrainingData.load(data_dir, lang_dir, nj, feats=load_features(data_dir, src_dir))
    write_num_jobs(out, data.nj)
    trainer = Trainer(data, system, boost_silence=boost_silence, beam=beam, retry_beam=retry_beam,
                      careful=careful)
    result = trainer.align(out)
    system.save(out, "final.mdl")
    for name in ("final.occs", "final.mat", "splice_opts"):
        if (Path(src_dir) / name).exists():
            shutil.copyfile(Path(src_dir) / name, out / name)
    log.info("align_si: %s", result.summary())
    return result


def align_mapped(data_dir, lang_dir, model_dir, loglikes_scp, out_dir, nj=4, beam=10.0, retry_beam=40.0):
    """align-compiled-mapped as steps/nnet/align.sh runs it: the transcripts of `data_dir`
    aligned with an nnet's pdf log-likelihoods (a scp table), the transition model and tree of
    <model_dir>; writes <out_dir>/{ali.JOB.gz,final.mdl,tree,num_jobs}."""
    from hdnn.gmm.align import mapped_decodable
    from hdnn.gmm.decode import tid_columns
    from hdnn.kaldi.io import MatrixReader

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    system = GmmSystem.load(model_dir)
    _, ktm, _ = system.khg()
    loglikes = MatrixReader(loglikes_scp)
    data = TrainingData.load(data_dir, lang_dir, nj, feats=loglikes)
    first = next((u for utts in data.jobs for u in utts), None)
    if first is not None and loglikes[first].shape[1] != ktm.num_pdfs:
        raise HdnnError(f"{loglikes.scp_path}: utterance {first} has {loglikes[first].shape[1]} columns, "
                        f"{model_dir}/final.mdl has {ktm.num_pdfs} pdfs")
    write_num_jobs(out, data.nj)
    trainer = Trainer(data, system, beam=beam, retry_beam=retry_beam)
    trainer.decodable = mapped_decodable(tid_columns(ktm))
    result = trainer.align(out)
    system.save(out, "final.mdl")
    log.info("align_mapped: %s", result.summary())
    return result


def _acc_speaker(speaker):
    return JOB_STATE["trainer"]._speaker_stats(speaker)


def _align_job(job):
    return JOB_STATE["trainer"]._job_align(job, JOB_STATE["beam"])


def claim_gmm_dir(out_dir, data_dir, lang_dir, ali_dir, options):
    """Keep a GMM dir's earlier models (finished or an interrupted run's <x>.mdl) only when they
    were made from the same data, lang dir, alignments and options (<dir>/.stamp); else empty
    the dir (all but its logs) so that the training starts again. ``options`` leave out --nj,
    which changes nothing: the statistics are summed per speaker."""
    from hdnn.kaldi.alignments import alignment_files
    from hdnn.kaldi.data_dir import data_dir_inputs
    from hdnn.stamps import claim, make_stamp, write_stamp

    out = Path(out_dir)
    lang = Path(lang_dir)
    stamp = make_stamp({"data": data_dir_inputs(data_dir),
                        "lang": [lang / "topo", lang / "L.fst", lang / "phones.txt", lang / "words.txt", lang / "phones"],
                        "alignments": alignment_files(ali_dir) if ali_dir else []},
                       options, exclude=[out])
    old = [p for p in out.iterdir() if p.name not in ("log", ".stamp")] if out.is_dir() else []
    if claim(out / ".stamp", stamp, str(out), earlier=bool(old)):
        return
    for p in old:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    write_stamp(out / ".stamp", stamp)


def resume_point(out_dir):
    """The iteration x of the newest <out_dir>/<x>.mdl left by an interrupted run, or None."""
    iters = [int(p.stem) for p in Path(out_dir).glob("*.mdl") if p.stem.isdigit()]
    return max(iters) if iters else None


def run_em(trainer, out_dir, start, num_iters, realign_iters, numgauss_at, beam_at, power, desc,
           progress=True, before_acc=None):
    """Iterations start..num_iters-1 of the training scripts' main loop: realign at
    `realign_iters`, call `before_acc(x)` if given (e.g. to re-estimate a transform), accumulate,
    gmm-est with mixing up. <x>.mdl is saved after each iteration (so an interrupted run resumes
    there); the last becomes final.mdl."""
    out = Path(out_dir)
    occs = None
    for x in tqdm(range(start, num_iters), desc=desc, disable=not progress, unit="iter", initial=start,
                  total=num_iters):
        if x in realign_iters:
            res = trainer.align(out, beam=beam_at(x))
            log.info("iteration %d: aligned (beam %g): %s", x, beam_at(x), res.summary())
        if before_acc is not None:
            before_acc(x)
        stats = trainer.accumulate()
        trainer.system, occs, summary = estimate(trainer.system, stats, mixup=numgauss_at(x), power=power)
        log.info("iteration %d: %s", x, summary)
        trainer.system.save(out, f"{x + 1}.mdl", tree=False)
        (out / f"{x}.mdl").unlink(missing_ok=True)
    trainer.system.save(out, "final.mdl", tree=False)
    if occs is not None:
        write_kaldi_vector(out / "final.occs", occs)
    (out / f"{num_iters}.mdl").unlink(missing_ok=True)
    return trainer.system


def write_num_jobs(out_dir, nj):
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / "num_jobs").write_text(f"{nj}\n")



"""Viterbi EM for GMM-HMMs, the engine of train_mono, train_deltas, train_lda_mllt and align_si.

As in Kaldi's scripts, the data dir is split by speaker (data/split<nj>/JOB) and each iteration
runs `nj` jobs through `--cmd` (hdnn/jobs.py): alignment (`python -m hdnn.bin.gmm_align`:
compile-train-graphs | gmm-align-compiled, or align-equal-compiled) into <dir>/ali.JOB.gz, and
accumulation (`python -m hdnn.bin.gmm_acc_stats`: gmm-acc-stats-ali or gmm-acc-mllt, in numpy,
one batch per pdf) into <dir>/<x>.JOB.acc. The update (gmm-est: transitions, Gaussians, mixing
up) is Kaldi's own C++ code from kaldi-hmm-gmm, in the main process.

Each job sums its statistics per speaker and adds each speaker's sum to an ExactSum
(hdnn/numerics.py): the total over the jobs is then the same bytes for any `--nj`, so the
models are too.
"""
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hdnn.errors import HdnnError, atomic_open, atomic_path
from hdnn.gmm.align import GraphCompiler, align_utterances, boost_silence, equal_align
from hdnn.gmm.features import iter_cmvn_deltas
from hdnn.gmm.lang import Lang
from hdnn.gmm.model import GmmSystem, am_from_khg, khg_am, khg_log_probs, khg_transition_model
from hdnn.gmm.mixup import mix_up
from hdnn.gmm.wheels import khg
from hdnn.kaldi.alignments import num_jobs, read_ali_dir, read_alignments, sort_by_utt, write_alignments
from hdnn.kaldi.binary import read_kaldi_matrix
from hdnn.kaldi.data_dir import DataDir, split_data, split_utts
from hdnn.kaldi.features import splice
from hdnn.kaldi.gmm_model import TransitionModel, write_kaldi_vector
from hdnn.kaldi.io import MatrixReader
from hdnn.numerics import ExactSum

log = logging.getLogger(__name__)


def transcript_ids(data, lang, utts, warn=True):
    """{utt: word ids} of the utterances `utts` of DataDir `data` that have a non-empty
    transcript (words not in the lexicon mapped to the OOV word, counted in the log)."""
    if data.text is None:
        raise HdnnError(f"{data.path / 'text'}: no such file")
    word_ids, num_oov = {}, 0
    unk = lang.words.get(lang.oov)
    for utt in utts:
        words = data.text.get(utt)
        if words is None or not words.split():
            if warn:
                log.warning("%s: %s transcript for utterance %s: skipped", data.path / "text",
                            "no" if words is None else "empty", utt)
            continue
        ids = lang.word_ids(words.split(), data.path / "text", utt)
        num_oov += sum(1 for w, i in zip(words.split(), ids) if i == unk and w != lang.oov)
        word_ids[utt] = ids
    if num_oov and warn:
        log.info("%s: %d words not in the lexicon mapped to %s", data.path / "text", num_oov, lang.oov)
    return word_ids


@dataclass
class TrainingData:
    """Features (by default CMVN + deltas, as in steps/train_deltas.sh) and the utterances of
    each job that have features and a transcript, split by speaker like utils/split_data.sh
    (whose split dirs, <data>/split<nj>/JOB, the jobs read)."""

    data_dir: Path
    lang: Lang
    feats: dict
    jobs: list

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
        word_ids = transcript_ids(data, lang, data.utts)
        jobs = [[u for u in part if u in word_ids and u in feats] for part in split_utts(data.path, nj)]
        if not any(jobs):
            raise HdnnError(f"{data.path}: no utterance has both features and a transcript")
        return cls(data.path, lang, feats, jobs)

    @property
    def dim(self):
        return next(iter(self.feats.values())).shape[1]

    @property
    def nj(self):
        return len(self.jobs)

    def split(self):
        """<data>/split<nj>, written (or checked) now: the data dirs of the jobs."""
        return split_data(self.data_dir, self.nj)


def splice_context(model_dir):
    """(left, right) frames of <model_dir>/splice_opts (`--left-context=3 --right-context=3`)."""
    opts = dict(re.findall(r"--(left|right)-context=(\d+)", (Path(model_dir) / "splice_opts").read_text()))
    return int(opts.get("left", 4)), int(opts.get("right", 4))  # splice-feats' defaults


def transform_features(feats, mat):
    """transform-feats: `mat` (dim x D, or dim x (D+1) with an offset column) times each frame."""
    d = feats.shape[1]
    out = feats @ mat[:, :d].T.astype(np.float32)
    return out + mat[:, d].astype(np.float32) if mat.shape[1] == d + 1 else out


def load_features(data_dir, model_dir=None, utts=None, transform=None, context=None):
    """{utt: features} of a data dir as a model sees them: apply-cmvn, then add-deltas; or, with
    a `transform` file (LDA+MLLT: <model_dir>/final.mat when it exists, with `context` from its
    splice_opts), splice-feats --left-context --right-context + transform-feats."""
    if transform is None and model_dir is not None and (Path(model_dir) / "final.mat").exists():
        transform, context = Path(model_dir) / "final.mat", splice_context(model_dir)
    if transform is None:
        return dict(iter_cmvn_deltas(data_dir, utts))
    left, right = context
    m = read_kaldi_matrix(transform)
    return {u: transform_features(splice(x, left, right), m)
            for u, x in iter_cmvn_deltas(data_dir, utts, delta_order=0)}


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


# ---------------------------------------------------------------- one job's work

def _job_inputs(data_dir, lang_dir, transform, context, loglikes):
    """(DataDir, Lang, {utt: features or log-likelihoods}) of one job's split data dir."""
    data = DataDir(data_dir)
    lang = Lang(lang_dir)
    if loglikes:
        table = MatrixReader(loglikes)
        feats = {u: table[u] for u in data.utts if u in table}
    else:
        feats = load_features(data_dir, transform=transform, context=context)
    return data, lang, feats


def align_job(model_dir, model, lang_dir, data_dir, ali_out, beam=10.0, retry_beam=40.0, careful=False,
              boost=1.0, equal=False, transform=None, context=None, loglikes=None, summary=None):
    """One job of an alignment pass: compile-train-graphs for the transcripts of `data_dir` (a
    split), then gmm-align-compiled with <model_dir>/<model> (and its tree), align-equal-compiled
    (`equal`), or align-compiled-mapped on the log-likelihoods of the rspecifier `loglikes`;
    writes `ali_out`, and the counts of the AlignResult to `summary` (JSON) if given."""
    import json

    from hdnn.gmm.align import AlignResult, mapped_decodable
    from hdnn.gmm.decode import tid_columns

    system = GmmSystem.load(model_dir, model)
    data, lang, feats = _job_inputs(data_dir, lang_dir, transform, context, loglikes)
    word_ids = transcript_ids(data, lang, [u for u in data.utts if u in feats], warn=False)
    if boost != 1.0:
        system = system.replaced(am=boost_silence(system.am, system.tm, lang.silence, boost))
    ctx, ktm, kam = system.khg()
    compiler = GraphCompiler(ctx, ktm, lang)
    graphs = {u: compiler.compile(ids, u) for u, ids in word_ids.items()}
    if equal:
        result = AlignResult()
        for utt, graph in graphs.items():
            ali = equal_align(graph, len(feats[utt]), utt)
            if ali is None:
                log.warning("align-equal-compiled: utterance %s (%d frames) is too short for its transcript: "
                            "skipped", utt, len(feats[utt]))
                result.failed.append(utt)
            else:
                result.alignments[utt] = ali
    else:
        decodable = mapped_decodable(tid_columns(ktm)) if loglikes else None
        result = align_utterances(ktm, kam, graphs, feats, beam=beam, retry_beam=retry_beam, careful=careful,
                                  decodable=decodable)
        result.log_problems(beam, retry_beam)
    write_alignments(ali_out, sort_by_utt(result.alignments).items())
    log.info("%s: %s", ali_out, result.summary())
    if summary:
        with atomic_open(summary) as f:
            json.dump({"failed": result.failed, "retried": result.retried, "tot_like": result.tot_like,
                       "frames": result.frames}, f)
    return result


def acc_job(model_dir, model, lang_dir, data_dir, ali_file, acc_out, mllt=False, transform=None, context=None):
    """One job of an accumulation: gmm-acc-stats-ali (or gmm-acc-mllt with `mllt`) of
    <model_dir>/<model> over the utterances of `data_dir` (a split) aligned in `ali_file`,
    summed per speaker into ExactSums; written to `acc_out` (numpy .npz)."""
    system = GmmSystem.load(model_dir, model)
    data, lang, feats = _job_inputs(data_dir, lang_dir, transform, context, None)
    alignments = dict(read_alignments(ali_file))
    sums, frames, num_utts = {}, 0, 0
    for spk in data.speakers:
        utts = [u for u in data.spk2utt[spk] if u in alignments and u in feats]
        if not utts:
            continue
        num_utts += len(utts)
        x, alis = [feats[u] for u in utts], [alignments[u] for u in utts]
        if mllt:
            from hdnn.gmm.lda_mllt import acc_mllt

            beta, G = acc_mllt(system.am, system.tm, x, alis, lang.silence)
            terms = {"beta": beta, "G": G}
        else:
            st = accumulate(system, x, alis)
            terms = {"occ": st.occ, "x": st.x, "x2": st.x2, "trans": st.trans, "loglike": st.loglike}
            frames += st.frames
        for name, value in terms.items():
            sums.setdefault(name, ExactSum(np.shape(value))).add(value)
    arrays = {"frames": np.int64(frames)}
    for name, total in sums.items():
        arrays[f"{name}.hi"], arrays[f"{name}.lo"] = total.hi, total.lo
    with atomic_path(acc_out, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    log.info("%s: %d utterances of %d speakers, %d frames", acc_out, num_utts, len(data.speakers), frames)


def read_accs(paths):
    """({name: ExactSum} summed over the job files, frames) of acc_job's outputs."""
    sums, frames = {}, 0
    for path in paths:
        with np.load(path) as z:
            frames += int(z["frames"])
            for key in z.files:
                if key.endswith(".hi"):
                    name = key[:-3]
                    part = ExactSum(hi=z[key], lo=z[f"{name}.lo"])
                    sums[name] = sums[name].merge(part) if name in sums else part
    return sums, frames


# ---------------------------------------------------------------- the trainer

class Trainer:
    """Runs the parallel stages of Kaldi's training scripts as jobs through `cmd`: alignment
    passes into <out>/ali.JOB.gz and accumulations of statistics, with the model
    <model_dir>/<model> (`use` saves a new one), on the features each job computes from its
    split (with `transform` and `context`: spliced and transformed, for LDA+MLLT) or on an
    nnet's log-likelihoods (`loglikes`, a rspecifier)."""

    def __init__(self, data, system, out, cmd="run.pl", boost_silence=1.0, beam=10.0, retry_beam=40.0,
                 careful=False, model_dir=None, model=None, progress=True):
        self.data, self.system, self.out = data, system, Path(out)
        self.cmd, self.progress = cmd, progress
        self.boost = boost_silence
        self.beam, self.retry_beam, self.careful = beam, retry_beam, careful
        self.model_dir, self.model = Path(model_dir or out), model
        self.transform, self.context, self.loglikes = None, None, None
        self.split = data.split()

    def use(self, system, name):
        """Make `system` the model of the next jobs, saved as <out>/<name>."""
        system.save(self.out, name, tree=False)
        self.system, self.model_dir, self.model = system, self.out, name

    def _feature_options(self):
        if self.loglikes:
            return [f"--loglikes={self.loglikes}"]
        if self.transform:
            return [f"--transform={self.transform}", f"--context={self.context[0]}:{self.context[1]}"]
        return []

    def _inputs(self):
        return [self.model_dir, self.model, self.data.lang.dir, self.split / "JOB"]

    def align(self, out_dir=None, beam=None, equal=False, name="align"):
        """An alignment pass (gmm-align-compiled, or align-equal-compiled) with the current model
        into <out_dir or out>/ali.JOB.gz, logs log/<name>.JOB.log. Returns an AlignResult of
        all jobs (the alignments read back, the utterances not aligned)."""
        import json

        from hdnn import jobs
        from hdnn.gmm.align import AlignResult

        out = Path(out_dir or self.out)
        beam = beam or self.beam
        options = ["--equal"] if equal else [f"--beam={beam}", f"--retry-beam={self.retry_beam}",
                                             f"--careful={str(self.careful).lower()}",
                                             f"--boost-silence={self.boost}"]
        summary = out / "log" / f"{name}.JOB.json"
        command = jobs.python_command("hdnn.bin.gmm_align", *options, f"--summary={summary}",
                                      *self._feature_options(), *self._inputs(), out / "ali.JOB.gz")
        jobs.run(self.cmd, self.data.nj, out / "log" / f"{name}.JOB.log", command, f"{name} {out.name}",
                 self.progress)
        result = AlignResult()
        for job in range(1, self.data.nj + 1):
            counts = json.loads(Path(str(summary).replace("JOB", str(job))).read_text())
            result.add(AlignResult(dict(read_alignments(out / f"ali.{job}.gz")), **counts))
        if not result.alignments:
            how = "equal alignment" if equal else f"beam {beam}, retry beam {self.retry_beam}"
            raise HdnnError(f"{self.data.data_dir}: no utterance could be aligned ({how}; "
                            f"logs: {out}/log/{name}.*.log)")
        return result

    def accumulate(self, name="acc", mllt=False):
        """gmm-acc-stats-ali (or gmm-acc-mllt) of the current model over <out>/ali.JOB.gz, logs
        log/<name>.JOB.log; returns GmmStats (or (beta, G))."""
        from hdnn import jobs

        out = self.out
        accs = [out / f"{name}.{job}.acc" for job in range(1, self.data.nj + 1)]
        command = jobs.python_command("hdnn.bin.gmm_acc_stats", *(["--mllt"] if mllt else []),
                                      *self._feature_options(), *self._inputs(), out / "ali.JOB.gz",
                                      out / f"{name}.JOB.acc")
        jobs.run(self.cmd, self.data.nj, out / "log" / f"{name}.JOB.log", command, f"{name} {out.name}",
                 progress=False)
        sums, frames = read_accs(accs)
        for path in accs:
            path.unlink()
        if mllt:
            return float(sums["beta"].value()), sums["G"].value()
        if not sums:
            return GmmStats.zeros(self.system)
        return GmmStats(sums["occ"].value(), sums["x"].value(), sums["x2"].value(), sums["trans"].value(),
                        float(sums["loglike"].value()), frames)


def align_si(data_dir, lang_dir, src_dir, out_dir, nj=4, beam=10.0, retry_beam=40.0, careful=False,
             boost_silence=1.0, cmd="run.pl", progress=True):
    """steps/align_si.sh <data> <lang> <src-dir> <align-dir>: aligns with <src-dir>/final.mdl (and
    final.mat, for LDA+MLLT systems) and writes <align-dir>/{ali.JOB.gz,final.mdl,tree,num_jobs}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    system = GmmSystem.load(src_dir)
    # the jobs compute the model's features from their splits; here only their utterance ids count
    scp = DataDir(data_dir).feats_scp
    data = TrainingData.load(data_dir, lang_dir, nj, feats=MatrixReader(scp) if scp else None)
    first = next(u for utts in data.jobs for u in utts)
    dim = load_features(data_dir, src_dir, utts=[first])[first].shape[1]
    if dim != system.am.dim:  # before any job starts: the same check as gmm-align-compiled's
        raise HdnnError(f"{scp}: utterance {first} gives features of dim {dim}, {src_dir}/final.mdl takes "
                        f"dim {system.am.dim}")
    write_num_jobs(out, data.nj)
    trainer = Trainer(data, system, out, cmd, boost_silence=boost_silence, beam=beam, retry_beam=retry_beam,
                      careful=careful, model_dir=src_dir, model="final.mdl", progress=progress)
    if (Path(src_dir) / "final.mat").exists():
        trainer.transform, trainer.context = Path(src_dir) / "final.mat", splice_context(src_dir)
    result = trainer.align(out)
    system.save(out, "final.mdl")
    for name in ("final.occs", "final.mat", "splice_opts"):
        if (Path(src_dir) / name).exists():
            shutil.copyfile(Path(src_dir) / name, out / name)
    log.info("align_si: %s", result.summary())
    return result


def align_mapped(data_dir, lang_dir, model_dir, loglikes_scp, out_dir, nj=4, beam=10.0, retry_beam=40.0,
                 cmd="run.pl", progress=True):
    """align-compiled-mapped as steps/nnet/align.sh runs it: the transcripts of `data_dir`
    aligned with an nnet's pdf log-likelihoods (a scp table), the transition model and tree of
    <model_dir>; writes <out_dir>/{ali.JOB.gz,final.mdl,tree,num_jobs}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    system = GmmSystem.load(model_dir)
    loglikes = MatrixReader(loglikes_scp)
    data = TrainingData.load(data_dir, lang_dir, nj, feats=loglikes)
    first = next((u for utts in data.jobs for u in utts), None)
    if first is not None and loglikes[first].shape[1] != system.tm.num_pdfs:
        raise HdnnError(f"{loglikes.scp_path}: utterance {first} has {loglikes[first].shape[1]} columns, "
                        f"{model_dir}/final.mdl has {system.tm.num_pdfs} pdfs")
    write_num_jobs(out, data.nj)
    trainer = Trainer(data, system, out, cmd, beam=beam, retry_beam=retry_beam, model_dir=model_dir,
                      model="final.mdl", progress=progress)
    trainer.loglikes = f"scp:{loglikes.scp_path}"
    result = trainer.align(out)
    system.save(out, "final.mdl")
    log.info("align_mapped: %s", result.summary())
    return result


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
        trainer.model_dir, trainer.model = out, f"{x}.mdl"
        if x in realign_iters:
            res = trainer.align(out, beam=beam_at(x), name=f"align.{x}")
            log.info("iteration %d: aligned (beam %g): %s", x, beam_at(x), res.summary())
        if before_acc is not None:
            before_acc(x)
        stats = trainer.accumulate(f"acc.{x}")
        system, occs, summary = estimate(trainer.system, stats, mixup=numgauss_at(x), power=power)
        log.info("iteration %d: %s", x, summary)
        trainer.use(system, f"{x + 1}.mdl")
        for old in out.glob(f"{x}.*mdl"):
            old.unlink()
    trainer.system.save(out, "final.mdl", tree=False)
    if occs is not None:
        write_kaldi_vector(out / "final.occs", occs)
    (out / f"{num_iters}.mdl").unlink(missing_ok=True)
    return trainer.system


def write_num_jobs(out_dir, nj):
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / "num_jobs").write_text(f"{nj}\n")


def set_jobs(out_dir, data):
    """<out_dir>/num_jobs for `data`'s jobs; alignments an interrupted run left for another
    number of jobs are regrouped into ali.JOB.gz of these jobs first."""
    out = Path(out_dir)
    if (out / "num_jobs").exists() and num_jobs(out) != data.nj:
        alis = read_ali_dir(out)
        for old in out.glob("ali.*.gz"):
            old.unlink()
        write_job_alignments(out, data.jobs, alis)
    write_num_jobs(out, data.nj)


def write_job_alignments(out_dir, jobs, alignments):
    """<out_dir>/ali.JOB.gz: the alignments ({utt: transition-ids}) of each job's utterances."""
    for job, utts in enumerate(jobs, 1):
        write_alignments(Path(out_dir) / f"ali.{job}.gz", ((u, alignments[u]) for u in utts if u in alignments))

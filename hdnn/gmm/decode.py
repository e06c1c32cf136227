"""Viterbi decoding with an HCLG graph: GMM features (steps/decode.sh) or an nnet's
log-likelihoods (steps/nnet/decode.sh with latgen-faster-mapped).

The wheels cannot determinise lattices, so the LM-weight x word-insertion-penalty sweep of
local/score.sh is done by decoding the best path once per (LMWT, WIP): acoustic scale
1/LMWT, and WIP added to every word arc of the graph. Kaldi's FasterDecoder does the search
over a decodable whose columns are transition-ids (`khg.DecodableCtc`, column = tid - 1).

The sweep is the whole grid (`search="grid"`), coarse-to-fine (`search="coarse"`: every few
LM weights first, then ever closer around the best so far) or a descent (`search="descent"`:
the start weight and its neighbours, then one step at a time towards the better side until
both neighbours of the best are worse), scored between rounds (WER is close to unimodal in the
LM weight). On dev coarse-to-fine costs about half the searches of the grid, a descent from
near the best about a third; eval is decoded once, at the setting dev chose (egs/ami/run.sh).

A decode dir holds tra/<LMWT>_<WIP>.tra (`utt word-id ...` lines, every utterance),
num_jobs, log/decode.JOB.log and decode_stats.txt. Each job writes its own
tra/<LMWT>_<WIP>.JOB.tra and a marker tra/.done.JOB naming the settings it completed, so an
interrupted run redoes only unfinished jobs.
"""
import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdnn.errors import HdnnError, atomic_open
from hdnn.gmm.features import iter_cmvn_deltas, read_cmvn
from hdnn.gmm.graph import add_word_penalty, read_graph
from hdnn.gmm.options import SEARCHES
from hdnn.gmm.wheels import kaldifst, khg
from hdnn.kaldi.data_dir import DataDir, data_dir_inputs, read_kaldi_map, split_data, split_list
from hdnn.kaldi.io import MatrixReader, read_matrices, read_symbol_table
from hdnn.slots import search_slot
from hdnn.stamps import changes, claim, make_stamp, read_stamp, rspecifier_files, write_stamp

log = logging.getLogger(__name__)
FRAME_SHIFT = 0.01


@dataclass
class DecodeConfig:
    """Search and sweep options (names of steps/decode.sh and local/score.sh)."""

    beam: float = 13.0
    max_active: int = 7000
    min_active: int = 200
    retry_beam: float = 30.0
    min_lmwt: int = 7
    max_lmwt: int = 17
    word_ins_penalty: tuple = ("0.0", "0.5", "1.0")
    search: str = "grid"   # grid | coarse | descent
    start_lmwt: int = 0    # where a descent starts (0: the middle of the range)
    points: tuple = ()     # the (lmwt, wip) of one round; empty: the whole grid

    def sweep(self):
        """[(lmwt, wip string)] in decoding order: this round's points, or the whole grid."""
        if self.min_lmwt < 1 or self.max_lmwt < self.min_lmwt:
            raise HdnnError(f"bad LM-weight range {self.min_lmwt}..{self.max_lmwt}")
        if self.search not in SEARCHES:
            raise HdnnError(f"bad LM-weight search {self.search!r} ({', '.join(SEARCHES)})")
        if self.start_lmwt and not self.min_lmwt <= self.start_lmwt <= self.max_lmwt:
            raise HdnnError(f"LM-weight start {self.start_lmwt} outside the range "
                            f"{self.min_lmwt}..{self.max_lmwt}")
        for w in self.word_ins_penalty:
            try:
                float(w)
            except ValueError:
                raise HdnnError(f"bad word insertion penalty {w!r}") from None
        if self.points:
            return list(self.points)
        return [(lmwt, wip) for wip in self.word_ins_penalty
                for lmwt in range(self.min_lmwt, self.max_lmwt + 1)]


def coarse_to_fine(config, decode, score):
    """Decode `config`'s sweep coarse-to-fine: LM weights `step` apart (a quarter of the range),
    then best +- step for ever halved steps down to 1, per penalty. decode(points) decodes a
    round; score(points) returns {(lmwt, wip): WerResult} of every point decoded so far.
    Returns the points decoded, in order."""
    lo, hi = config.min_lmwt, config.max_lmwt
    step = max(1, -(-(hi - lo) // 4))
    done = []
    todo = [(lmwt, wip) for wip in config.word_ins_penalty
            for lmwt in sorted(set(range(lo, hi + 1, step)) | {hi})]
    while True:
        todo = [p for p in todo if p not in done]
        if todo:
            decode(todo)
            done += todo
        if step == 1:
            return done
        results = score(done)
        step = -(-step // 2)
        todo = []
        for wip in config.word_ins_penalty:
            best = min((k for k in results if k[1] == wip), key=lambda k: (results[k].wer, k[0]))[0]
            todo += [(lmwt, wip) for lmwt in (best - step, best + step) if lo <= lmwt <= hi]


def descent(config, decode, score):
    """Decode `config`'s sweep by descent, per penalty: the start weight and its neighbours,
    then the unsearched neighbours of the best so far (of each weight tied for it: a plateau is
    walked across), until all are searched (or outside the range). decode(points) and
    score(points) as for coarse_to_fine. Returns the points decoded, in order. A noisy WER curve
    can stop it at a local minimum next to the start (measured in egs/ami/README.md, "Budgets")."""
    lo, hi = config.min_lmwt, config.max_lmwt
    start = config.start_lmwt or (lo + hi + 1) // 2
    done = []
    todo = [(lmwt, wip) for wip in config.word_ins_penalty
            for lmwt in (start - 1, start, start + 1) if lo <= lmwt <= hi]
    while todo:
        decode(todo)
        done += todo
        results = score(done)
        todo = []
        for wip in config.word_ins_penalty:
            mine = {k[0]: results[k].wer for k in results if k[1] == wip}
            best = min(mine.values())
            todo += sorted({(lmwt, wip) for w, wer in mine.items() if wer == best for lmwt in (w - 1, w + 1)
                            if lo <= lmwt <= hi and (lmwt, wip) not in done})
    return done


@dataclass
class DecodeStats:
    """Counts of a decoding run; retried/partial count (utterance, pass) pairs, failed counts
    utterances with no path in some pass (their output is empty there)."""

    utts: int = 0
    frames: int = 0
    seconds: float = 0.0
    retried: int = 0
    partial: int = 0
    failed: int = 0
    failed_utts: list = field(default_factory=list)
    points: list = field(default_factory=list)  # the (lmwt, wip) decoded

    def add(self, other):
        for name in ("utts", "frames", "seconds", "retried", "partial", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failed_utts += other.failed_utts
        return self

    @property
    def rtf(self):
        """Real-time factor of the whole sweep (decoding seconds per second of audio)."""
        return self.seconds / max(self.frames * FRAME_SHIFT, 1e-9)


# ---------------------------------------------------------------- acoustic scores

class GmmScorer:
    """Log-likelihoods of all pdfs of an AmDiagGmm for a block of frames, vectorised:
    one matrix product over every Gaussian, then a log-sum-exp per pdf
    (DecodableAmDiagGmm's LogLikelihood for every pdf at once)."""

    def __init__(self, am):
        pdfs = am.pdfs
        self.gconsts = np.concatenate([g.gconsts for g in pdfs]).astype(np.float32)
        self.means_invvars = np.concatenate([g.means_invvars for g in pdfs]).astype(np.float32)
        self.half_inv_vars = 0.5 * np.concatenate([g.inv_vars for g in pdfs]).astype(np.float32)
        sizes = np.array([g.num_gauss for g in pdfs])
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.owner = np.repeat(np.arange(len(pdfs)), sizes)
        self.dim = pdfs[0].dim

    def __call__(self, feats):
        x = np.asarray(feats, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise HdnnError(f"feature dimension {x.shape[-1]} does not match the model ({self.dim})")
        ll = self.gconsts + x @ self.means_invvars.T - (x * x) @ self.half_inv_vars.T
        top = np.maximum.reduceat(ll, self.starts, axis=1)
        top = np.where(np.isfinite(top), top, 0.0)
        total = np.add.reduceat(np.exp(ll - top[:, self.owner]), self.starts, axis=1)
        with np.errstate(divide="ignore"):
            return (np.log(total) + top).astype(np.float32)


def tid_columns(trans_model):
    """pdf index of each transition-id 1..N (the columns a DecodableCtc needs)."""
    tid2pdf = np.asarray(trans_model.transition_id_to_pdf_array(), dtype=np.int64)
    return tid2pdf[1:]


# ---------------------------------------------------------------- search

class BestPathDecoder:
    """FasterDecoder over one graph, with a wider-beam retry when no token reaches a final
    state, and partial output (as --allow-partial=true) when the retry fails too.

    Each search gets a new FasterDecoder (a few microseconds): a reused one keeps the hash size
    that its busiest search before grew, which orders its token list and so decides which of two
    equal-cost tokens reaching a state survives (and which is best), so an utterance's best path
    would depend on what its job searched before (the job split, the other LM weights of the
    round; tests/gmm/test_graph_decode.py)."""

    def __init__(self, graph, config):
        self.graph, self.config = graph, config

    def _options(self, beam):
        opts = khg.FasterDecoderOptions()
        opts.beam, opts.max_active, opts.min_active = beam, self.config.max_active, self.config.min_active
        return opts

    def _search(self, mat, beam):
        decoder = khg.FasterDecoder(self.graph, self._options(beam))
        decoder.decode(khg.DecodableCtc(mat))
        return decoder

    def __call__(self, scaled_tid_loglikes, stats):
        """Word ids of the best path; updates stats.retried/partial/failed."""
        mat = np.ascontiguousarray(scaled_tid_loglikes, dtype=np.float32)
        decoder = self._search(mat, self.config.beam)
        if not decoder.reached_final():
            stats.retried += 1
            decoder = self._search(mat, self.config.retry_beam)
        final = decoder.reached_final()
        ok, path = decoder.get_best_path(use_final_probs=final)
        if not ok:
            return None
        if not final:
            stats.partial += 1
        ok, _, words, _ = kaldifst.get_linear_symbol_sequence(path)
        return list(words) if ok else None


def decode_matrices(graph, num_words, tid_cols, items, config, out_files, stats, logger):
    """Decode (utt, pdf log-likelihoods) items once per (LMWT, WIP); write `utt ids` lines to
    out_files[(lmwt, wip)]. Failed utterances get an empty line (all deletions) and a count."""
    sweep = config.sweep()
    graphs = {wip: add_word_penalty(graph, float(wip), num_words) for wip in {w for _, w in sweep}}
    decoders = {wip: BestPathDecoder(g, config) for wip, g in graphs.items()}
    for utt, loglikes in items:
        t0 = time.time()
        tid_ll = loglikes[:, tid_cols]
        failed = False
        for lmwt, wip in sweep:
            words = decoders[wip](tid_ll * (1.0 / lmwt), stats)
            if words is None:
                failed = True
                words = []
            out_files[(lmwt, wip)].write(" ".join([utt] + [str(w) for w in words]) + "\n")
        stats.utts += 1
        stats.frames += len(loglikes)
        stats.seconds += time.time() - t0
        if failed:
            stats.failed += 1
            stats.failed_utts.append(utt)
            logger.warning("%s: no path through the graph even with beam %g: empty output",
                           utt, config.retry_beam)
        logger.info("%s %d frames", utt, len(loglikes))


# ---------------------------------------------------------------- jobs over a decode dir

def _job_files(decode_dir, job, sweep):
    return {key: Path(decode_dir) / "tra" / f"{key[0]}_{key[1]}.{job}.tra" for key in sweep}


def _read_marker(path):
    """(DecodeStats, [(lmwt, wip)]) of a job's marker tra/.done.JOB, or (None, [])."""
    try:
        head, *points = path.read_text().split("\n", 1)[0].split(" | ")
        u, fr, s, r, p, fail = head.split()
        stats = DecodeStats(int(u), int(fr), float(s), int(r), int(p), int(fail))
        return stats, [(int(k.split("_")[0]), k.split("_", 1)[1]) for k in points[0].split()] if points else []
    except (OSError, ValueError, IndexError):
        return None, []


def _run_job(job, nj, decode_dir, graph_dir, config, tid_cols, items):
    """Decode one job's utterances into its tra files (skips a job whose marker says it
    decoded every point of the sweep)."""
    sweep = config.sweep()
    files = _job_files(decode_dir, job, sweep)
    done = Path(decode_dir) / "tra" / f".done.{job}"
    before, done_points = _read_marker(done)
    if set(sweep) <= set(done_points) and all(f.exists() for f in files.values()):
        log.info("job %d: every point of the sweep was decoded before: kept", job)
        return
    stats = DecodeStats()
    tmp = {k: f.with_name(f.name + ".tmp") for k, f in files.items()}
    with search_slot():
        graph = read_graph(graph_dir)
        handles = {k: open(p, "w") for k, p in tmp.items()}
        try:
            decode_matrices(graph, _num_words(graph_dir), tid_cols, items, config, handles, stats, log)
        finally:
            for h in handles.values():
                h.close()
    for k, p in tmp.items():
        p.replace(files[k])
    total = DecodeStats().add(stats)
    if before is not None:  # per utterance counts of one round; times and retries of all
        total.seconds += before.seconds
        total.retried += before.retried
        total.partial += before.partial
    points = done_points + [k for k in sweep if k not in done_points]
    done.write_text(f"{total.utts} {total.frames} {total.seconds:.3f} {total.retried} "
                    f"{total.partial} {total.failed} | {' '.join(f'{l}_{w}' for l, w in points)}\n")
    log.info("job %d of %d: %d utterances, %d frames, RTF %.4f, retried %d, partial %d, failed %d",
             job, nj, stats.utts, stats.frames, stats.rtf, stats.retried, stats.partial, stats.failed)


def decode_job(job, nj, decode_dir, graph_dir, model_dir, config, features=None, delta_order=2,
               loglikes=None, skip_utts=None):
    """One job of a decode (`python -m hdnn.bin.decode_faster`): the GMM of <model_dir> on the
    CMVN + delta features of the data dir `features` (its job's split), or the pdf
    log-likelihoods of the rspecifier `loglikes`; the transition model of <model_dir>. The
    utterances that begin the lines of the file `skip_utts` are not searched."""
    from hdnn.gmm.model import GmmSystem

    system = GmmSystem.load(model_dir)
    _, ktm, _ = system.khg()
    if (features is None) == (loglikes is None):
        raise HdnnError("a decoding job needs either features or log-likelihoods")
    skip = set()
    if skip_utts:
        skip = {line.split(maxsplit=1)[0] for line in Path(skip_utts).read_text().splitlines() if line.strip()}
    if features is not None:
        scorer = GmmScorer(system.am)
        items = ((u, scorer(x)) for u, x in iter_cmvn_deltas(features, delta_order=delta_order) if u not in skip)
    else:
        items = ((u, x) for u, x in _checked(read_matrices(loglikes), loglikes, ktm.num_pdfs) if u not in skip)
    _run_job(job, nj, Path(decode_dir), graph_dir, config, tid_columns(ktm), items)


def _checked(items, source, num_pdfs):
    for utt, mat in items:
        if mat.shape[1] != num_pdfs:
            raise HdnnError(f"{source}: utterance {utt} has {mat.shape[1]} columns, the model has {num_pdfs} pdfs")
        yield utt, mat


def _num_words(graph_dir):
    return max(read_symbol_table(Path(graph_dir) / "words.txt").values())



def _graph_input(graph_dir):
    return {"graph": [Path(graph_dir) / "HCLG.fst", Path(graph_dir) / "words.txt"]}


def _search_options(config):
    return {k: getattr(config, k) for k in ("beam", "max_active", "min_active", "retry_beam")}


def reused_hypotheses(hyps_from, graph_dir, config):
    """{(lmwt, wip): tra file} of the decode dir `hyps_from` at each point of config's sweep.

    It holds some utterances of the same data (dev_tune's half of dev): a best path depends
    on its utterance, graph, search options and LM weight alone (BestPathDecoder), so these
    are what a search of them here would find. Its graph and search options must be ours
    (its tra/.stamp) and it must have decoded every point of the sweep."""
    hyps_from = Path(hyps_from)
    old = read_stamp(hyps_from / "tra" / ".stamp")
    if old is None:
        raise HdnnError(f"{hyps_from / 'tra' / '.stamp'}: missing or unreadable (--hyps-from needs a "
                        f"decode dir this decoder made)")
    ours = make_stamp(_graph_input(graph_dir), _search_options(config))
    # only what decides a best path: its model, log-likelihoods and job split may differ
    shared = {part: {k: old.get(part, {}).get(k, "<unset>") for k in ours[part]} for part in ours}
    differ = changes(shared, ours)
    if differ:
        raise HdnnError(f"{hyps_from}: searched otherwise than this decoding ({'; '.join(differ)}): "
                        f"its hypotheses cannot be reused")
    files = {key: hyps_from / "tra" / f"{key[0]}_{key[1]}.tra" for key in config.sweep()}
    for (lmwt, wip), f in files.items():
        if not f.is_file():
            raise HdnnError(f"{f}: missing: {hyps_from} was not searched at LM weight {lmwt}, penalty {wip}")
    return files


def claim_decode_dir(decode_dir, graph_dir, config, nj, inputs):
    """Keep a decode dir's earlier transcripts only when they were made from the same graph,
    model, features or log-likelihoods (``inputs``: {name: path or paths}), search options and
    job split (tra/.stamp); else remove them and its scores."""
    decode_dir = Path(decode_dir)
    stamp = make_stamp({**_graph_input(graph_dir), **inputs}, {**_search_options(config), "nj": nj},
                       exclude=[decode_dir])
    marker = decode_dir / "tra" / ".stamp"
    if claim(marker, stamp, str(decode_dir), earlier=any((decode_dir / "tra").glob("*.tra"))):
        return
    for old in [*(decode_dir / "tra").glob("*"), *decode_dir.glob("wer_*"),  # tra/* includes the .done.N markers
                decode_dir / "decode_stats.txt", decode_dir / "num_jobs"]:
        if old.is_file():
            old.unlink()
    shutil.rmtree(decode_dir / "scoring_kaldi", ignore_errors=True)
    write_stamp(marker, stamp)


def run_decode_jobs(decode_dir, graph_dir, model_dir, config, source, nj, cmd="run.pl", progress=True,
                    reused=None):
    """Run `nj` decoding jobs (`python -m hdnn.bin.decode_faster` through `cmd`, hdnn/jobs.py) on
    `source` (["--features", split data dir with JOB] or ["--loglikes", rspecifier with JOB]),
    merge their outputs (and the `reused` hypotheses: {(lmwt, wip): tra file}) into
    tra/<LMWT>_<WIP>.tra and write decode_stats.txt. Any failing job makes this raise, naming
    its log file."""
    from hdnn import jobs

    decode_dir = Path(decode_dir)
    (decode_dir / "tra").mkdir(parents=True, exist_ok=True)
    points = ",".join(f"{lmwt}_{wip}" for lmwt, wip in config.sweep())
    skip = [f"--skip-utts={next(iter(reused.values()))}"] if reused else []
    command = jobs.python_command(
        "hdnn.bin.decode_faster", f"--beam={config.beam}", f"--max-active={config.max_active}",
        f"--min-active={config.min_active}", f"--retry-beam={config.retry_beam}", f"--points={points}",
        f"--nj={nj}", *skip, *source, graph_dir, model_dir, decode_dir, "JOB")
    jobs.run(cmd, nj, decode_dir / "log" / "decode.JOB.log", command, f"decode {decode_dir.name}", progress)
    with atomic_open(decode_dir / "num_jobs") as f:
        f.write(f"{nj}\n")
    reused_utts = _merge(decode_dir, config.sweep(), nj, reused or {})
    stats, passes = _read_stats(decode_dir, nj)
    with atomic_open(decode_dir / "decode_stats.txt") as f:
        f.write(f"utterances {stats.utts}\nframes {stats.frames}\nseconds {stats.seconds:.3f}\n"
                f"rtf {stats.rtf:.5f}\npasses {passes}\n"
                f"rtf_per_pass {stats.rtf / passes:.5f}\nretried {stats.retried}\n"
                f"partial {stats.partial}\nfailed {stats.failed}\n"
                + (f"reused {reused_utts}\n" if reused else ""))
    log.info("%s: %d utterances, %d passes (LMWT x WIP), RTF %.4f (%.4f per pass); "
             "retried with beam %g: %d, partial: %d, failed: %d", decode_dir, stats.utts,
             passes, stats.rtf, stats.rtf / passes, config.retry_beam,
             stats.retried, stats.partial, stats.failed)
    if reused:
        log.info("%s: the hypotheses of %d more utterances taken from %s", decode_dir, reused_utts,
                 next(iter(reused.values())).parent.parent)
    return stats


def decode_sweep(decode_dir, graph_dir, model_dir, config, source, nj, cmd="run.pl", progress=True, score=None,
                 inputs=None, hyps_from=None):
    """run_decode_jobs over config's grid, or coarse-to-fine or by descent (config.search;
    then score(points) -> {point: WerResult} picks the next round). Earlier transcripts in
    `decode_dir` are kept only when made from the same `inputs` ({name: path(s)}, besides the
    graph) and options (claim_decode_dir). `hyps_from`: a decode dir of some of the utterances,
    whose hypotheses are taken and those utterances not searched (reused_hypotheses; a grid or
    fixed points only). Returns
    DecodeStats with .points, the settings decoded."""
    inputs = dict(inputs or {})
    reused = None
    if hyps_from is not None:
        if config.search != "grid" and not config.points:
            raise HdnnError(f"--hyps-from needs a grid of LM weights, not a {config.search} search")
        reused = reused_hypotheses(hyps_from, graph_dir, config)
        inputs["reused hypotheses"] = sorted(reused.values())
    claim_decode_dir(decode_dir, graph_dir, config, nj, inputs)
    if config.search == "grid" or config.points:
        stats = run_decode_jobs(decode_dir, graph_dir, model_dir, config, source, nj, cmd, progress, reused)
        stats.points = config.sweep()
        return stats
    if score is None:
        raise HdnnError(f"the {config.search} LM-weight search needs the transcripts to score rounds")
    last = {}

    def decode(points):
        last["stats"] = run_decode_jobs(decode_dir, graph_dir, model_dir,
                                        dataclasses.replace(config, points=tuple(points)), source, nj, cmd, progress)

    points = (coarse_to_fine if config.search == "coarse" else descent)(config, decode, score)
    stats = last["stats"]
    stats.points = points
    return stats


def _merge(decode_dir, sweep, nj, reused):
    """Merge the jobs' tra files per point, with the reused ones (utterances the jobs did not
    search); returns how many utterances were reused (per point)."""
    count = 0
    for lmwt, wip in sweep:
        lines = []
        for job in range(1, nj + 1):
            lines += (decode_dir / "tra" / f"{lmwt}_{wip}.{job}.tra").read_text().splitlines()
        if (lmwt, wip) in reused:   # the jobs skipped these utterances
            more = reused[(lmwt, wip)].read_text().splitlines()
            lines += more
            count = len(more)
        lines.sort(key=lambda s: s.split(maxsplit=1)[0].encode())
        with atomic_open(decode_dir / "tra" / f"{lmwt}_{wip}.tra") as f:
            f.write("".join(line + "\n" for line in lines))
    return count


def _read_stats(decode_dir, nj):
    """(DecodeStats summed over the jobs' markers, number of settings decoded)."""
    total, passes = DecodeStats(), 0
    for job in range(1, nj + 1):
        stats, points = _read_marker(decode_dir / "tra" / f".done.{job}")
        total.add(stats)
        passes = max(passes, len(points))
    return total, max(passes, 1)


# ---------------------------------------------------------------- the two front ends

def decode_gmm(graph_dir, data_dir, decode_dir, model_dir=None, nj=4, config=None, cmd="run.pl", progress=True,
               score=None, hyps_from=None):
    """steps/decode.sh: CMVN + delta features of `data_dir` (split by speaker, utils/split_data.sh),
    the GMM of <model_dir> (default: the parent of graph_dir, i.e. exp/tri1 for exp/tri1/graph),
    best paths per (LMWT, WIP) (`score` and `hyps_from`: see decode_sweep)."""
    from hdnn.gmm.model import GmmSystem

    config = config or DecodeConfig()
    graph_dir, data_dir = Path(graph_dir), Path(data_dir)
    model_dir = Path(model_dir) if model_dir else graph_dir.parent
    if (model_dir / "final.mat").exists():
        raise HdnnError(f"{model_dir / 'final.mat'}: LDA/MLLT systems are not supported by this decoder")
    system = GmmSystem.load(model_dir)
    if DataDir(data_dir).feats_scp is None:
        raise HdnnError(f"{data_dir / 'feats.scp'}: no such file (run make_mfcc first)")
    read_cmvn(data_dir)
    delta_order = _delta_order(model_dir, system.am.dim, data_dir)
    split = split_data(data_dir, nj)
    source = [f"--features={split}/JOB", f"--delta-order={delta_order}"]
    inputs = {"model": model_dir / "final.mdl", "features": data_dir_inputs(data_dir, text=False)}
    return decode_sweep(decode_dir, graph_dir, model_dir, config, source, nj, cmd, progress, score, inputs,
                        hyps_from)


def _delta_order(model_dir, model_dim, data_dir):
    """Delta order of the model's features: <model_dir>/delta_order, else from its dimension."""
    f = model_dir / "delta_order"
    if f.exists():
        return int(f.read_text().split()[0])
    feats = MatrixReader(Path(data_dir) / "feats.scp")
    raw_dim = feats[next(iter(feats.keys()))].shape[1]
    if model_dim % raw_dim or model_dim // raw_dim > 3:
        raise HdnnError(f"{model_dir}: model dimension {model_dim} does not fit features of "
                        f"dimension {raw_dim} from {data_dir}")
    return model_dim // raw_dim - 1


def decode_mapped(graph_dir, model_dir, loglike_rspecifier, decode_dir, nj=4, config=None, cmd="run.pl",
                  progress=True, score=None, hyps_from=None):
    """latgen-faster-mapped as steps/nnet/decode.sh uses it: pdf log-likelihoods (an nnet's
    log posteriors minus log priors) from `loglike_rspecifier`, the transition model of
    <model_dir>/final.mdl, best paths per (LMWT, WIP).

    A `JOB` in the rspecifier is replaced by the job number (one table per job); otherwise a
    scp table is split into `nj` parts (<decode_dir>/log/loglikes.JOB.scp) and an archive is
    decoded as one job. `score` and `hyps_from`: see decode_sweep.
    """
    config = config or DecodeConfig()
    spec = str(loglike_rspecifier)
    decode_dir = Path(decode_dir)
    if "JOB" not in spec and (spec.startswith("scp:") or (spec.endswith(".scp") and ":" not in spec)):
        scp = spec.removeprefix("scp:")
        table = read_kaldi_map(scp)
        keys = sorted(table, key=str.encode)
        nj = min(nj, len(keys))
        for job, part in enumerate(split_list(keys, nj, scp), 1):
            with atomic_open(decode_dir / "log" / f"loglikes.{job}.scp") as f:
                f.write("".join(f"{u} {table[u]}\n" for u in part))
        job_spec = f"scp:{decode_dir / 'log'}/loglikes.JOB.scp"
    elif "JOB" not in spec:
        nj, job_spec = 1, spec
    else:
        job_spec = spec
    loglikes = [f for job in range(1, nj + 1) for f in rspecifier_files(spec.replace("JOB", str(job)))]
    inputs = {"model": Path(model_dir) / "final.mdl", "log-likelihoods": loglikes or [spec]}
    return decode_sweep(decode_dir, graph_dir, model_dir, config, [f"--loglikes={job_spec}"], nj, cmd, progress,
                        score, inputs, hyps_from)

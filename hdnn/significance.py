"""Is system B's lower WER on a test set more than chance? Two matched-pair tests on two decode dirs.

A WER difference of a point on a set of a thousand words is within noise; since both systems
decoded the same utterances, paired tests see far smaller differences than two independent
confidence intervals would:

- NIST's matched-pair sentence-segment word error test (MAPSSWE, Gillick & Cox 1989), run with
  the real sctk tools (Debian package sctk): sclite aligns each system against the reference
  (`-o sgml`), sc_stats cuts the utterances into segments bounded by words both systems got
  right and tests whether the mean per-segment error difference is zero. The two-tailed p comes
  from sc_stats' Z statistic (its `MTCH_PR_RESULTS` line): sc_stats' own tables print p looked
  up in a coarse table, rounded towards larger p, and only to 3 decimals.
- the paired bootstrap over utterances (Bisani & Ney, ICASSP 2004): p is the share of resampled
  test sets on which B does not make fewer errors than A, i.e. 1 - "probability of improvement".
  Seeded, so the same inputs give the same p; its resolution is 1/resamples (p=0: below that).

Inputs are Kaldi-style decode dirs as steps/score_kaldi.sh (or steps_py/score.py) leaves them:
scoring_kaldi/test_filt.txt (reference) and scoring_kaldi/penalty_<WIP>/<LMWT>.txt
(hypotheses), lines `utt word word ...`; the setting defaults to scoring_kaldi/best_wer's.
"""
import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from hdnn.errors import HdnnError
from hdnn.kaldi.data_dir import read_kaldi_map
from hdnn.scoring import WerResult, find_sclite, run_sclite, sclite_speaker, write_trn

log = logging.getLogger(__name__)

Texts = Dict[str, List[str]]
_SPEAKER = "unknown"  # decode dirs carry no utt2spk; one pseudo-speaker keeps sclite's ids simple


@dataclass(frozen=True)
class Decode:
    """One system's hypotheses at one (LM weight, word insertion penalty) of a decode dir."""

    decode_dir: Path
    lmwt: str
    wip: str
    ref: Texts
    hyp: Texts

    @property
    def where(self) -> str:
        """`<decode-dir>/wer_<LMWT>_<WIP>`, as Kaldi's best_wer names a setting."""
        return str(self.decode_dir / f"wer_{self.lmwt}_{self.wip}")


@dataclass(frozen=True)
class Comparison:
    """The two systems' WER on one set and the p-values of the paired tests (small p: the
    difference is unlikely to be chance)."""

    set_name: str
    system_a: str  # <decode-dir>/wer_<LMWT>_<WIP>
    system_b: str
    wer_a: WerResult
    wer_b: WerResult
    utterances: int
    mapsswe_z: float  # > 0: B makes fewer errors per segment
    mapsswe_p: float  # two-tailed
    bootstrap_p: float  # one-sided: P(B not better than A)

    @property
    def better(self) -> str:
        """'A', 'B', or 'same' (equal error counts), whatever the p-values say."""
        if self.wer_a.errors == self.wer_b.errors:
            return "same"
        return "A" if self.wer_a.errors < self.wer_b.errors else "B"

    def line(self) -> str:
        """One parseable line; see steps_py/compare_wer.py for the format."""
        def wer(r: WerResult) -> str:
            return f"{r.wer:.2f} [ {r.errors} / {r.words} ]"

        return (f"%WER A {wer(self.wer_a)} B {wer(self.wer_b)} MAPSSWE p={self.mapsswe_p:.3g} "
                f"bootstrap p={self.bootstrap_p:.3g} better={self.better} set={self.set_name} "
                f"{self.system_a} vs {self.system_b}")


# ---------------------------------------------------------------- reading decode dirs

def best_setting(decode_dir: Path) -> Tuple[str, str]:
    """(LMWT, WIP) of scoring_kaldi/best_wer, whose last field ends in wer_<LMWT>_<WIP>."""
    path = Path(decode_dir) / "scoring_kaldi" / "best_wer"
    if not path.is_file():
        raise HdnnError(f"{path}: no such file (score the decode dir, or give the LM weight and penalty)")
    fields = path.read_text().split()
    m = re.search(r"wer_(\d+)_([^_/]+)$", fields[-1]) if fields else None
    if not m:
        raise HdnnError(f"{path}: last field is not a path ending in wer_<LMWT>_<WIP>")
    return m.group(1), m.group(2)


def dev_setting(system_dir) -> Tuple[str, str]:
    """(LMWT, WIP) that a system's dev decode chose (<system-dir>/decode_dev/scoring_kaldi/best_wer):
    the one setting each of its test sets is reported at."""
    return best_setting(Path(system_dir) / "decode_dev")


def read_decode(decode_dir, lmwt: Optional[str] = None, wip: Optional[str] = None) -> Decode:
    """The reference and hypotheses of a decode dir at (lmwt, wip); what is not given comes
    from best_wer. Reference utterances missing from the hypotheses count as empty, as
    steps_py/score.py counts them; hypotheses of utterances not in the reference are an error."""
    decode_dir = Path(decode_dir)
    if lmwt is None or wip is None:
        best_lmwt, best_wip = best_setting(decode_dir)
        lmwt, wip = lmwt or best_lmwt, wip or best_wip
    scoring = decode_dir / "scoring_kaldi"
    ref = read_kaldi_map(scoring / "test_filt.txt", multi=True)
    hyp_path = scoring / f"penalty_{wip}" / f"{lmwt}.txt"
    hyp = read_kaldi_map(hyp_path, multi=True)
    extra = next((u for u in hyp if u not in ref), None)
    if extra is not None:
        raise HdnnError(f"{hyp_path}: utterance {extra} is not in {scoring / 'test_filt.txt'}")
    missing = [u for u in ref if u not in hyp]
    if missing:
        log.warning("%s: %d utterances missing (scored as deletions), e.g. %s", hyp_path, len(missing), missing[0])
    return Decode(decode_dir, str(lmwt), str(wip), ref, {u: hyp.get(u, []) for u in ref})


def check_same_set(a: Decode, b: Decode) -> None:
    """Paired tests need the same utterances with the same reference words in both dirs."""
    ref_a, ref_b = (d.decode_dir / "scoring_kaldi" / "test_filt.txt" for d in (a, b))
    for utt in a.ref:
        if utt not in b.ref:
            raise HdnnError(f"{ref_b}: utterance {utt} of {ref_a} is missing: not the same set")
        if a.ref[utt] != b.ref[utt]:
            raise HdnnError(f"{ref_b}: utterance {utt} has another reference than in {ref_a}")
    for utt in b.ref:
        if utt not in a.ref:
            raise HdnnError(f"{ref_a}: utterance {utt} of {ref_b} is missing: not the same set")
    if not a.ref:
        raise HdnnError(f"{ref_a}: no utterances")


# ---------------------------------------------------------------- sctk

def find_sc_stats() -> str:
    """sc_stats sits beside sclite (Debian: /usr/lib/sctk/bin)."""
    p = Path(find_sclite()).with_name("sc_stats")
    if os.access(p, os.X_OK):
        return str(p)
    found = shutil.which("sc_stats")
    if found:
        return found
    raise HdnnError("sc_stats not found: install the Debian package sctk (tools/setup.sh does)")


def parse_pra(path: Path, utts: List[str]) -> Tuple[np.ndarray, np.ndarray]:
    """Per-utterance (errors, reference words) from sclite's `-o pralign` report, in the order
    of `utts`: the bootstrap resamples exactly sclite's alignments."""
    ids = {f"({sclite_speaker(_SPEAKER)}_{u})".lower(): i for i, u in enumerate(utts)}
    errors, words = np.full(len(utts), -1), np.zeros(len(utts), dtype=np.int64)
    index = None
    for line in Path(path).read_text(errors="replace").splitlines():
        if line.startswith("id: "):
            index = ids.get(line[4:].strip())
        elif line.startswith("Scores: (#C #S #D #I)") and index is not None:
            c, s, d, i = (int(x) for x in line.split()[-4:])
            errors[index], words[index] = s + d + i, c + s + d
    lost = np.flatnonzero(errors < 0)
    if lost.size:
        raise HdnnError(f"{path}: no alignment of utterance {utts[lost[0]]}")
    return errors, words


_MTCH = re.compile(r"MTCH_PR_RESULTS .*\(# segs: (\d+)\).*\(mean: (\S+)\) \(std dev: (\S+)\) \(Z Stat: (\S+)\)")


def parse_mapsswe(path: Path) -> Tuple[float, float]:
    """(Z, two-tailed p) of the MTCH_PR_RESULTS line of sc_stats' `-t mapsswe -v` report.

    Z = mean/(std/sqrt(segments)) of the per-segment errors of the first system minus the
    second. sc_stats reports Z 0 when every segment differs by the same amount (std dev 0);
    that is no evidence of equality, so p is 0 there unless the mean is 0 too."""
    m = _MTCH.search(Path(path).read_text(errors="replace"))
    if not m:
        raise HdnnError(f"{path}: no MTCH_PR_RESULTS line in sc_stats' report")
    mean, std, z = (float(x) for x in m.groups()[1:])
    if std == 0.0:
        return (0.0, 1.0) if mean == 0.0 else (math.copysign(math.inf, mean), 0.0)
    return z, math.erfc(abs(z) / math.sqrt(2.0))


def mapsswe(sgml_a: Path, sgml_b: Path, out_dir: Path) -> Tuple[float, float]:
    """(Z, p) of sc_stats' MAPSSWE test on two sclite `-o sgml` alignments of the same set."""
    cmd = [find_sc_stats(), "-p", "-t", "mapsswe", "-v", "-O", str(out_dir), "-n", "mapsswe"]
    stdin = Path(sgml_a).read_bytes() + Path(sgml_b).read_bytes()
    p = subprocess.run(cmd, input=stdin, capture_output=True)
    report = Path(out_dir) / "mapsswe.stats.mapsswe"
    if p.returncode != 0 or not report.exists():
        err = (p.stderr or p.stdout).decode(errors="replace").strip().splitlines()
        raise HdnnError(f"sc_stats failed on {sgml_a} and {sgml_b}: {err[-1] if err else f'exit {p.returncode}'}")
    return parse_mapsswe(report)


# ---------------------------------------------------------------- bootstrap

def bootstrap_p(errors_a: np.ndarray, errors_b: np.ndarray, resamples: int = 10000, seed: int = 0) -> float:
    """Paired bootstrap over utterances (Bisani & Ney 2004): the share of `resamples` test sets,
    drawn with replacement from the utterances, on which B makes at least as many errors as A.
    Both systems are scored on each resampled set, so only the per-utterance differences count."""
    if resamples < 1:
        raise HdnnError(f"bootstrap: resamples must be at least 1, got {resamples}")
    diff = np.asarray(errors_a, dtype=np.int64) - np.asarray(errors_b, dtype=np.int64)
    n = diff.size
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // max(n, 1))  # bound the index matrix to ~32 MB
    not_better = 0
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        not_better += int(np.count_nonzero(diff[idx].sum(axis=1) <= 0))
    return not_better / resamples


# ---------------------------------------------------------------- both

def set_name_of(decode_dir: Path) -> str:
    """`dev` for exp/tri1/decode_dev (Kaldi's naming), else the dir's name."""
    name = Path(decode_dir).resolve().name
    return name[len("decode_"):] if name.startswith("decode_") and len(name) > 7 else name


def compare(a: Decode, b: Decode, *, set_name: Optional[str] = None, resamples: int = 10000,
            seed: int = 0) -> Comparison:
    """Score both systems with sclite and run both paired tests (A first, B second)."""
    check_same_set(a, b)
    utts = list(a.ref)
    with tempfile.TemporaryDirectory(prefix="compare_wer.") as tmp:
        tmp = Path(tmp)
        speakers = {u: _SPEAKER for u in utts}
        write_trn(tmp / "ref.trn", a.ref, speakers)
        wers, errors = [], []
        for name, d in (("A", a), ("B", b)):
            write_trn(tmp / f"{name}.trn", {u: d.hyp[u] for u in utts}, speakers)
            wers.append(run_sclite(tmp / "ref.trn", tmp / f"{name}.trn", tmp, name,
                                   reports=("rsum", "sgml", "pralign")))
            errors.append(parse_pra(tmp / f"{name}.pra", utts))
        if wers[0].errors == 0 and wers[1].errors == 0:
            z, p = 0.0, 1.0  # no segments to test (and sc_stats crashes on none)
        else:
            z, p = mapsswe(tmp / "A.sgml", tmp / "B.sgml", tmp)
    for name, w, (e, n) in zip("AB", wers, errors):
        if (int(e.sum()), int(n.sum())) != (w.errors, w.words):
            raise HdnnError(f"sclite's per-utterance counts of system {name} do not add up to its "
                            f"totals ({w.errors} errors, {w.words} words)")
    return Comparison(set_name or set_name_of(a.decode_dir), a.where, b.where, wers[0], wers[1],
                      len(utts), z, p, bootstrap_p(errors[0][0], errors[1][0], resamples, seed))

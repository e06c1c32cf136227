"""Scoring like Kaldi's local/score.sh, with NIST sclite (Debian sctk) for the numbers.

For every (LM weight, word insertion penalty) of a decode dir's sweep, the best-path word ids
(tra/<LMWT>_<WIP>.tra) become a trn file that sclite scores against the data dir's text.
Outputs follow steps/score_kaldi.sh: wer_<LMWT>_<WIP> (`%WER 23.45 [ 1234 / 5262, 100 ins,
200 del, 934 sub ]`), scoring_kaldi/best_wer, scoring_kaldi/penalty_<WIP>/<LMWT>.txt, and
sclite's reports (*.sys with the per-speaker breakdown, *.dtl, *.pra) for the best setting.
"""
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hdnn.errors import HdnnError, atomic_open
from hdnn.kaldi.io import read_symbol_table

log = logging.getLogger(__name__)
_SCLITE_PATHS = ("/usr/lib/sctk/bin/sclite",)


def find_sclite():
    """Path of NIST sclite (Debian package sctk)."""
    for p in _SCLITE_PATHS:
        if os.access(p, os.X_OK):
            return p
    p = shutil.which("sclite")
    if p:
        return p
    raise HdnnError("sclite not found: install the Debian package sctk (tools/setup.sh does)")


@dataclass
class WerResult:
    """Error counts of one scoring run."""

    words: int
    ins: int
    dels: int
    subs: int
    sentences: int = 0
    sentence_errors: int = 0

    @property
    def errors(self):
        return self.ins + self.dels + self.subs

    @property
    def wer(self):
        return 100.0 * self.errors / self.words if self.words else 0.0

    def kaldi_line(self, where=""):
        """`%WER 23.45 [ 1234 / 5262, 100 ins, 200 del, 934 sub ] where` (compute-wer's format)."""
        line = (f"%WER {self.wer:.2f} [ {self.errors} / {self.words}, {self.ins} ins, "
                f"{self.dels} del, {self.subs} sub ]")
        return f"{line} {where}".rstrip()


_WER_LINE = re.compile(r"%WER\s+([\d.]+)\s+\[\s*(\d+)\s*/\s*(\d+),\s*(\d+)\s+ins,\s*(\d+)\s+del,\s*(\d+)\s+sub\s*\]\s*(.*)")


def parse_wer_line(line):
    """(WerResult, trailing text) of a Kaldi `%WER ...` line."""
    m = _WER_LINE.search(line)
    if not m:
        raise HdnnError(f"not a %WER line: {line.strip()!r}")
    _, _, words, ins, dels, subs, rest = m.groups()
    return WerResult(int(words), int(ins), int(dels), int(subs)), rest.strip()


def best_wer_line(decode_dir):
    """The `%WER ...` line of <decode-dir>/scoring_kaldi/best_wer (ours or Kaldi's), or None."""
    f = Path(decode_dir) / "scoring_kaldi" / "best_wer"
    if not f.is_file():
        return None
    line = f.read_text().strip()
    return line if line.startswith("%WER") else None


def wer_line_at(decode_dir, setting):
    """The `%WER ...` line of <decode-dir>/wer_<LMWT>_<WIP> followed by that file's path (Kaldi's
    file has the compute-wer command line first), or None; setting is (LMWT, WIP)."""
    f = Path(decode_dir) / f"wer_{setting[0]}_{setting[1]}"
    if not f.is_file():
        return None
    line = next((l.strip() for l in f.read_text().splitlines() if l.startswith("%WER")), None)
    return f"{line} {f}" if line else None


# ---------------------------------------------------------------- trn files and sclite

def sclite_speaker(spk):
    """sclite cuts speaker ids at '_' or '-' and lower-cases them: keep them intact."""
    return re.sub(r"[_\-]", ".", spk)


def write_trn(path, utt2words, utt2spk):
    """A trn file: `words (speaker_utt)` per utterance, in the order of utt2words."""
    with atomic_open(path) as f:
        for utt, words in utt2words.items():
            spk = sclite_speaker(utt2spk.get(utt, "unknown"))
            f.write(f"{' '.join(words)} ({spk}_{utt})\n".lstrip())


def run_sclite(ref_trn, hyp_trn, out_dir, name, reports=("sum", "rsum")):
    """Score hyp_trn against ref_trn; sclite's reports go to <out_dir>/<name>.{sys,raw,...}.
    Returns the WerResult of sclite's Sum line."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [find_sclite(), "-r", str(ref_trn), "trn", "-h", str(hyp_trn), "trn", "-i", "spu_id",
           "-O", str(out_dir), "-n", name, "-o", *reports]
    p = subprocess.run(cmd, capture_output=True, text=True)
    raw = out_dir / f"{name}.raw"
    if p.returncode != 0 or not raw.exists():
        err = (p.stderr or p.stdout).strip().splitlines()
        raise HdnnError(f"sclite failed on {hyp_trn}: {err[-1] if err else 'no output'}")
    return parse_sclite_raw(raw)


def parse_sclite_raw(path):
    """Counts from the `| Sum |` line of sclite's .raw report."""
    for line in Path(path).read_text(errors="replace").splitlines():
        fields = [f for f in re.split(r"[|\s]+", line) if f]
        if fields and fields[0] == "Sum":
            snt, wrd, _corr, sub, dele, ins, _err, serr = (int(float(x)) for x in fields[1:9])
            return WerResult(wrd, ins, dele, sub, snt, serr)
    raise HdnnError(f"{path}: no Sum line in sclite's report")


# ---------------------------------------------------------------- a decode dir

def read_tra(path, id2word):
    """{utt: [words]} from a `utt id id ...` file."""
    out = {}
    for num, line in enumerate(Path(path).read_text().splitlines(), 1):
        f = line.split()
        if not f:
            continue
        try:
            out[f[0]] = [id2word[int(i)] for i in f[1:]]
        except (KeyError, ValueError):
            raise HdnnError(f"{path}:{num}: utterance {f[0]} has a word id not in words.txt") from None
    return out


def sweep_of(decode_dir):
    """[(lmwt, wip)] for which a decode dir has tra/<LMWT>_<WIP>.tra."""
    out = []
    for p in sorted((Path(decode_dir) / "tra").glob("*_*.tra")):
        lmwt, _, wip = p.stem.partition("_")
        try:
            float(wip)  # job files (<LMWT>_<WIP>.<JOB>.tra) do not parse
        except ValueError:
            continue
        if lmwt.isdigit():
            out.append((int(lmwt), wip))
    return sorted(out, key=lambda k: (float(k[1]), k[0]))


def score(data_dir, lang_dir, decode_dir, sweep=None, cmd=None):
    """Score a decode dir like local/score.sh; returns (best WerResult, best (lmwt, wip)).

    Writes <decode>/wer_<LMWT>_<WIP>, scoring_kaldi/{test_filt.txt, best_wer,
    penalty_<WIP>/<LMWT>.txt, sclite/}. Utterances missing from a hypothesis file score as
    all deletions and are counted. With `cmd`, one job per penalty scores its LM weights through
    it (hdnn/jobs.py), as steps/score_kaldi.sh runs them; else all in this process.
    """
    decode_dir = Path(decode_dir)
    results = score_points(data_dir, lang_dir, decode_dir, sweep, cmd)
    scoring = decode_dir / "scoring_kaldi"
    best_key = min(results, key=lambda k: (results[k].wer, float(k[1]), k[0]))
    best = results[best_key]
    name = f"{best_key[0]}_{best_key[1]}"
    run_sclite(scoring / "test_filt.trn", scoring / f"penalty_{best_key[1]}" / f"{best_key[0]}.trn",
               scoring / "sclite", f"best_{name}", reports=("sum", "rsum", "pralign", "dtl"))
    with atomic_open(scoring / "best_wer") as f:
        f.write(best.kaldi_line(str(decode_dir / f"wer_{name}")) + "\n")
    log.info("%s", best.kaldi_line(str(decode_dir / f"wer_{name}")))
    return best, best_key


def score_points(data_dir, lang_dir, decode_dir, sweep=None, cmd=None):
    """{(lmwt, wip): WerResult} of each setting of `sweep` (default: all decoded); writes
    <decode>/wer_<LMWT>_<WIP> and the scoring_kaldi/ files of each, but not best_wer. With `cmd`,
    one job per penalty (`python -m hdnn.bin.score_penalty`) through it."""
    from hdnn.kaldi.data_dir import read_kaldi_map

    data_dir, decode_dir = Path(data_dir), Path(decode_dir)
    text = read_kaldi_map(data_dir / "text", multi=True)
    if not text:
        raise HdnnError(f"{data_dir / 'text'}: no transcripts to score against")
    sweep = sweep or sweep_of(decode_dir)
    if not sweep:
        raise HdnnError(f"{decode_dir / 'tra'}: no <LMWT>_<WIP>.tra files (run decode first)")
    for lmwt, wip in sweep:
        tra = decode_dir / "tra" / f"{lmwt}_{wip}.tra"
        if not tra.exists():
            raise HdnnError(f"{tra}: no such file (decode with this LM weight and penalty first)")
    scoring = decode_dir / "scoring_kaldi"
    with atomic_open(scoring / "test_filt.txt") as f:
        f.write("".join(f"{u} {' '.join(w)}\n" for u, w in text.items()))
    write_trn(scoring / "test_filt.trn", text, read_kaldi_map(data_dir / "utt2spk"))
    if cmd is None:
        return {(lmwt, wip): score_point(data_dir, lang_dir, decode_dir, lmwt, wip) for lmwt, wip in sweep}
    from hdnn import jobs

    penalties = list(dict.fromkeys(wip for _, wip in sweep))
    spec = ";".join(f"{wip}:{','.join(str(lmwt) for lmwt, w in sweep if w == wip)}" for wip in penalties)
    command = jobs.python_command("hdnn.bin.score_penalty", f"--sweep={spec}", data_dir, lang_dir, decode_dir, "JOB")
    jobs.run(cmd, len(penalties), scoring / "log" / "score.JOB.log", command, f"score {decode_dir.name}",
             progress=False)
    return {(lmwt, wip): parse_sclite_raw(scoring / "sclite" / f"{lmwt}_{wip}.raw") for lmwt, wip in sweep}


def score_point(data_dir, lang_dir, decode_dir, lmwt, wip):
    """Score tra/<lmwt>_<wip>.tra against scoring_kaldi/test_filt.trn (score_points writes it):
    penalty_<wip>/<lmwt>.{txt,trn}, sclite/<lmwt>_<wip>.*, wer_<lmwt>_<wip>. Returns the WerResult."""
    from hdnn.kaldi.data_dir import read_kaldi_map

    data_dir, decode_dir = Path(data_dir), Path(decode_dir)
    text = read_kaldi_map(data_dir / "text", multi=True)
    utt2spk = read_kaldi_map(data_dir / "utt2spk")
    id2word = {i: w for w, i in read_symbol_table(Path(lang_dir) / "words.txt").items()}
    scoring = decode_dir / "scoring_kaldi"
    tra = decode_dir / "tra" / f"{lmwt}_{wip}.tra"
    hyp = read_tra(tra, id2word)
    missing = [u for u in text if u not in hyp]
    hyp_all = {u: hyp.get(u, []) for u in text}
    penalty_dir = scoring / f"penalty_{wip}"
    with atomic_open(penalty_dir / f"{lmwt}.txt") as f:
        f.write("".join(f"{u} {' '.join(w)}\n".replace(" \n", "\n") for u, w in hyp_all.items()))
    hyp_trn = penalty_dir / f"{lmwt}.trn"
    write_trn(hyp_trn, hyp_all, utt2spk)
    res = run_sclite(scoring / "test_filt.trn", hyp_trn, scoring / "sclite", f"{lmwt}_{wip}")
    with atomic_open(decode_dir / f"wer_{lmwt}_{wip}") as f:
        f.write(res.kaldi_line() + "\n")
        f.write(f"%SER {100.0 * res.sentence_errors / max(res.sentences, 1):.2f} "
                f"[ {res.sentence_errors} / {res.sentences} ]\n")
        f.write(f"Scored {len(text)} sentences, {len(missing)} not present in hyp.\n")
    if missing:
        log.warning("%s: %d utterances missing (scored as deletions), e.g. %s", tra, len(missing), missing[0])
    return res

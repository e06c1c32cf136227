"""Scoring with sclite (hdnn.scoring, steps_py/score.py), checked against kaldialign's edit
distance and Kaldi's compute-wer."""
import random
import subprocess
import sys
from pathlib import Path

import kaldialign
import pytest

from hdnn.errors import HdnnError
from hdnn.kaldi.binaries import run_kaldi
from hdnn.scoring import WerResult, parse_wer_line, run_sclite, score, write_trn

ROOT = Path(__file__).resolve().parents[1]
VOCAB = "the a remote control button is red blue we need to design new one and so um".split()


def noisy_copy(words, rng):
    """`words` with random substitutions, deletions and insertions."""
    out = []
    for w in words:
        r = rng.random()
        if r < 0.1:
            continue
        out.append(rng.choice(VOCAB) if r < 0.25 else w)
        if rng.random() < 0.08:
            out.append(rng.choice(VOCAB))
    return out


def make_corpus(rng, num_utts=40):
    utt2spk, ref, hyp = {}, {}, {}
    for n in range(num_utts):
        spk = ("FEE_005", "MEO-012", "spk3")[n % 3]
        utt = f"{spk}_{n:04d}"
        utt2spk[utt] = spk
        ref[utt] = [rng.choice(VOCAB) for _ in range(rng.randint(1, 12))]
        hyp[utt] = noisy_copy(ref[utt], rng)
    return utt2spk, ref, hyp


def test_sclite_counts_equal_kaldialign(tmp_path):
    utt2spk, ref, hyp = make_corpus(random.Random(1))
    write_trn(tmp_path / "ref.trn", ref, utt2spk)
    write_trn(tmp_path / "hyp.trn", hyp, utt2spk)
    res = run_sclite(tmp_path / "ref.trn", tmp_path / "hyp.trn", tmp_path / "out", "hyp")
    errors = [kaldialign.edit_distance(ref[u], hyp[u]) for u in ref]
    assert res.words == sum(len(r) for r in ref.values())
    assert res.errors == sum(e["total"] for e in errors)
    assert res.sentences == len(ref)
    assert res.sentence_errors == sum(e["total"] > 0 for e in errors)
    # per-speaker lines keep the speaker ids apart (sclite would cut them at '_' or '-')
    report = (tmp_path / "out" / "hyp.sys").read_text()
    for spk in ("fee.005", "meo.012", "spk3"):
        assert spk in report


def test_kaldi_wer_line():
    res = WerResult(words=5262, ins=100, dels=200, subs=934)
    line = res.kaldi_line("exp/ihm/tri1/decode_dev/wer_10_0.0")
    assert line == "%WER 23.45 [ 1234 / 5262, 100 ins, 200 del, 934 sub ] exp/ihm/tri1/decode_dev/wer_10_0.0"
    back, where = parse_wer_line(line)
    assert (back.words, back.ins, back.dels, back.subs) == (5262, 100, 200, 934)
    assert where == "exp/ihm/tri1/decode_dev/wer_10_0.0"
    with pytest.raises(HdnnError, match="not a %WER line"):
        parse_wer_line("WER 12")


def fake_decode_dir(tmp_path, rng):
    """A data dir, words.txt and a decode dir whose tra files hold noisy hypotheses for two
    LM weights: LMWT 9 noisier than LMWT 10; one utterance missing from LMWT 10."""
    utt2spk, ref, _ = make_corpus(rng, num_utts=30)
    data = tmp_path / "data"
    data.mkdir()
    (data / "text").write_text("".join(f"{u} {' '.join(w)}\n" for u, w in sorted(ref.items())))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
    words = {w: i for i, w in enumerate(["<eps>"] + sorted(VOCAB), 0)}
    lang = tmp_path / "lang"
    lang.mkdir()
    (lang / "words.txt").write_text("".join(f"{w} {i}\n" for w, i in words.items()))
    dec = tmp_path / "decode"
    (dec / "tra").mkdir(parents=True)
    hyps = {9: {u: noisy_copy(noisy_copy(r, rng), rng) for u, r in ref.items()},
            10: {u: noisy_copy(r, rng) for u, r in list(ref.items())[1:]}}
    for lmwt, hyp in hyps.items():
        (dec / "tra" / f"{lmwt}_0.0.tra").write_text(
            "".join(f"{u} {' '.join(str(words[w]) for w in h)}\n" for u, h in hyp.items()))
    (dec / "tra" / "10_0.0.1.tra").write_text("a job's part, not a sweep point\n")
    return data, lang, dec, ref, hyps


def test_score_a_decode_dir(tmp_path):
    data, lang, dec, ref, hyps = fake_decode_dir(tmp_path, random.Random(2))
    best, key = score(data, lang, dec)
    expected = {}
    for lmwt, hyp in hyps.items():
        expected[lmwt] = sum(kaldialign.edit_distance(r, hyp.get(u, []))["total"] for u, r in ref.items())
    assert key == (min(expected, key=expected.get), "0.0")
    assert best.errors == expected[key[0]]
    wer10 = (dec / "wer_10_0.0").read_text().splitlines()
    assert parse_wer_line(wer10[0])[0].errors == expected[10]
    assert wer10[2] == "Scored 30 sentences, 1 not present in hyp."
    best_line = (dec / "scoring_kaldi" / "best_wer").read_text()
    assert best_line.strip().endswith(f"{dec}/wer_{key[0]}_0.0")
    assert list((dec / "scoring_kaldi" / "sclite").glob("best_*.dtl"))
    first = next(iter(ref))
    assert (dec / "scoring_kaldi" / "penalty_0.0" / "10.txt").read_text().splitlines()[0] == first


def test_score_step_errors(tmp_path):
    data, lang, dec, _, _ = fake_decode_dir(tmp_path, random.Random(3))
    step = [sys.executable, str(ROOT / "steps_py" / "score.py")]
    p = subprocess.run(step + [str(data), str(lang), str(dec)], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0 and p.stdout.startswith("%WER ")
    p = subprocess.run(step + ["--min-lmwt", "12", str(data), str(lang), str(dec)], capture_output=True,
                       text=True, cwd=ROOT)
    assert p.returncode == 1 and "no decoded LM weight" in p.stderr.strip().splitlines()[-1]
    (dec / "tra" / "9_0.0.tra").write_text("FEE_005_0000 999\n")
    p = subprocess.run(step + [str(data), str(lang), str(dec)], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 1
    assert "9_0.0.tra:1: utterance FEE_005_0000 has a word id not in words.txt" in p.stderr


@pytest.mark.kaldi
def test_same_counts_as_kaldi_compute_wer(kaldi, tmp_path):
    utt2spk, ref, hyp = make_corpus(random.Random(4))
    write_trn(tmp_path / "ref.trn", ref, utt2spk)
    write_trn(tmp_path / "hyp.trn", hyp, utt2spk)
    ours = run_sclite(tmp_path / "ref.trn", tmp_path / "hyp.trn", tmp_path / "out", "hyp")
    (tmp_path / "ref.txt").write_text("".join(f"{u} {' '.join(w)}\n" for u, w in ref.items()))
    (tmp_path / "hyp.txt").write_text("".join(f"{u} {' '.join(w)}\n" for u, w in hyp.items()))
    out = run_kaldi(["compute-wer", "--text", "--mode=present", f"ark:{tmp_path / 'ref.txt'}",
                     f"ark:{tmp_path / 'hyp.txt'}"]).stdout.decode()
    theirs, _ = parse_wer_line(out)
    assert theirs.words == ours.words and theirs.errors == ours.errors
    assert ours.kaldi_line().split("[")[0] == out.splitlines()[0].split("[")[0]

"""Forced alignments: agreement with the synthesiser's phone timings, ali-to-pdf/ali-to-phones,
CTM output, and failed alignments."""
import shutil

import numpy as np
import pytest

from hdnn.gmm.align import ali_to_phones, split_to_phones
from hdnn.kaldi.alignments import read_ali_dir, read_alignments
from hdnn.kaldi.gmm_model import read_phone_table, read_transition_model

FRAME_SHIFT = 0.01


def boundary_errors(exp, corpus):
    """|aligned phone start - espeak phone start| (s) over the utterances whose aligned phone
    sequence (silence removed, word-position suffixes stripped) equals espeak's."""
    from tests.gmm.espeak_data import read_timings

    tm = read_transition_model(exp / "final.mdl")
    names = read_phone_table(corpus.lang / "phones.txt")
    ref = read_timings(corpus.timings)
    errors, compared = [], 0
    for utt, ali in read_ali_dir(exp).items():
        if utt not in ref:
            continue
        segs = [(names[p].rsplit("_", 1)[0], start * FRAME_SHIFT) for p, start, _ in split_to_phones(tm, ali)]
        segs = [(p, t) for p, t in segs if p not in ("SIL", "SPN")]
        if [p for p, _ in segs] != [p for _, p in ref[utt]]:
            continue
        compared += 1
        errors += [abs(t - t_ref) for (_, t), (t_ref, _) in zip(segs, ref[utt])]
    return np.array(errors), compared


@pytest.mark.parametrize("system", ["espeak_mono", "espeak_tri"])
def test_alignments_agree_with_synthesiser_timings(request, espeak_corpus, system):
    errors, compared = boundary_errors(request.getfixturevalue(system), espeak_corpus)
    assert compared >= 60  # most utterances are spoken as the lexicon says
    median = np.median(errors)
    print(f"{system}: {compared} utterances, {len(errors)} phones, median boundary error "
          f"{median * 1000:.1f} ms, {np.mean(errors <= 0.02) * 100:.0f}% within 20 ms")
    assert median < 0.020
    assert np.mean(errors <= 0.05) > 0.85


def test_ali_to_pdf_and_phones_steps(espeak_corpus, espeak_tri, tmp_path):
    from tests.gmm.fixtures import run_step

    tm = read_transition_model(espeak_tri / "final.mdl")
    ours = dict(read_alignments(espeak_tri / "ali.1.gz"))
    rspec = f"ark:gunzip -c {espeak_tri / 'ali.1.gz'}|"
    out = run_step("ali_to_pdf", espeak_tri / "final.mdl", rspec, "ark,t:-").stdout
    pdfs = {line.split()[0]: [int(x) for x in line.split()[1:]] for line in out.splitlines()}
    assert pdfs.keys() == ours.keys()
    assert all(pdfs[u] == tm.tid2pdf[a].tolist() for u, a in ours.items())

    out = run_step("ali_to_phones", espeak_tri / "final.mdl", rspec, "ark,t:-").stdout
    phones = {line.split()[0]: [int(x) for x in line.split()[1:]] for line in out.splitlines()}
    assert all(phones[u] == ali_to_phones(tm, a).tolist() for u, a in ours.items())
    out = run_step("ali_to_phones", "--per-frame", "true", espeak_tri / "final.mdl", rspec, "ark,t:-").stdout
    assert all(len(line.split()) - 1 == len(ours[line.split()[0]]) for line in out.splitlines())

    ctm = tmp_path / "phones.ctm"
    run_step("ali_to_phones", "--ctm-output", "true", "--phone-symbol-table", espeak_corpus.lang / "phones.txt",
             espeak_tri / "final.mdl", rspec, ctm)
    rows = [line.split() for line in ctm.read_text().splitlines()]
    utt = next(iter(ours))
    mine = [r for r in rows if r[0] == utt]
    assert mine[0][2] == "0.00" and mine[0][4] == "SIL"
    assert sum(float(r[3]) for r in mine) == pytest.approx(len(ours[utt]) * FRAME_SHIFT)
    starts = [float(r[2]) for r in mine]
    assert starts == sorted(starts)


@pytest.mark.kaldi
def test_ctm_matches_kaldi(kaldi, espeak_tri):
    from hdnn.gmm.align import phone_ctm_lines
    from hdnn.kaldi.binaries import run_kaldi

    out = run_kaldi(["ali-to-phones", "--ctm-output", str(espeak_tri / "final.mdl"),
                     f"ark:gunzip -c {espeak_tri / 'ali.2.gz'}|", "-"]).stdout.decode().split("\n")
    tm = read_transition_model(espeak_tri / "final.mdl")
    ours = [line for utt, ali in read_alignments(espeak_tri / "ali.2.gz") for line in phone_ctm_lines(tm, utt, ali)]
    theirs = [line.split() for line in out if line.strip()]
    assert len(theirs) == len(ours)
    for a, b in zip(ours, theirs):
        a = a.split()
        assert a[0] == b[0] and a[4] == b[4]
        assert float(a[2]) == pytest.approx(float(b[2])) and float(a[3]) == pytest.approx(float(b[3]))


def test_failed_alignment_is_retried_then_skipped_and_counted(espeak_corpus, espeak_mono, tmp_path):
    """An utterance whose transcript is far too long for its audio cannot be aligned: it is
    retried with the wider beam, then left out, logged by name and counted; the rest align."""
    from hdnn.gmm.train import align_si

    data = tmp_path / "data"
    shutil.copytree(espeak_corpus.data, data)
    lines = (data / "text").read_text().splitlines()
    bad = lines[3].split()[0]
    words = sorted({w for line in lines for w in line.split()[1:]})
    lines[3] = bad + " " + " ".join(words * 2)
    (data / "text").write_text("\n".join(lines) + "\n")
    res = align_si(data, espeak_corpus.lang, espeak_mono, tmp_path / "ali", nj=2)
    assert res.failed == [bad] and bad in res.retried
    assert len(res.alignments) == 119
    job_logs = "".join(p.read_text() for p in (tmp_path / "ali" / "log").glob("align.*.log"))
    assert f"did not successfully align utterance {bad}" in job_logs
    assert bad not in read_ali_dir(tmp_path / "ali")
    assert "done 119, retried 1, failed 1" in res.summary()

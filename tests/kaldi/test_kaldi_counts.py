"""Pdf counts and priors, against real analyze-counts."""
import numpy as np
import pytest

from hdnn.errors import HdnnError
from hdnn.kaldi.binary import KaldiBinaryWriter
from hdnn.kaldi.counts import (FLOORED_LOG_PRIOR, counts_from_alignments, log_priors, read_counts,
                               write_counts)
from hdnn.kaldi.io import write_int_vectors

ALIS = {"u1": np.array([0, 0, 2, 2, 2, 5]), "u2": np.array([5, 1, 1]), "u3": np.array([], dtype=int)}


def test_counts_round_trip_and_priors(tmp_path):
    counts = counts_from_alignments(ALIS.items(), num_pdfs=7)
    assert counts.tolist() == [2.5, 2.5, 3.5, 0.5, 0.5, 2.5, 0.5]
    write_counts(tmp_path / "ali_train_pdf.counts", counts)
    assert (tmp_path / "ali_train_pdf.counts").read_text() == " [ 2.5 2.5 3.5 0.5 0.5 2.5 0.5 ]\n"
    np.testing.assert_array_equal(read_counts(tmp_path / "ali_train_pdf.counts"), counts)
    priors = log_priors(counts)
    np.testing.assert_allclose(np.exp(priors).sum(), 1, rtol=1e-6)
    floored = log_priors(counts_from_alignments(ALIS.items(), 7, add=0), floor=1e-3)
    assert floored[3] == floored[6] == np.float32(FLOORED_LOG_PRIOR)
    assert floored[2] == pytest.approx(np.log(3 / 9))
    w = KaldiBinaryWriter()
    w.vector(counts, dtype=np.float64)
    w.save(tmp_path / "bin.counts")
    np.testing.assert_array_equal(read_counts(tmp_path / "bin.counts"), counts)


def test_bad_counts(tmp_path):
    with pytest.raises(HdnnError, match="pdf-id 5 out of range"):
        counts_from_alignments(ALIS.items(), num_pdfs=5)
    (tmp_path / "c").write_text("[ 1 x 2 ]\n")
    with pytest.raises(HdnnError, match=f"{tmp_path}/c: non-numeric"):
        read_counts(tmp_path / "c")
    with pytest.raises(HdnnError, match="cannot read counts"):
        read_counts(tmp_path / "missing")


@pytest.mark.kaldi
def test_counts_match_analyze_counts(kaldi_run, tmp_path):
    rng = np.random.default_rng(0)
    alis = {f"u{i}": rng.integers(0, 40, rng.integers(1, 300)) for i in range(20)}
    write_int_vectors(f"ark:{tmp_path}/pdf.ark", alis.items())
    kaldi_run(f"analyze-counts --binary=false --counts-dim=45 ark:{tmp_path}/pdf.ark {tmp_path}/k.counts")
    ours = counts_from_alignments(alis.items(), num_pdfs=45)
    np.testing.assert_array_equal(read_counts(tmp_path / "k.counts"), ours)
    write_counts(tmp_path / "o.counts", ours)
    assert (tmp_path / "o.counts").read_text().split() == (tmp_path / "k.counts").read_text().split()

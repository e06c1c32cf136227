"""Pdf alignments and alignment dirs: real ali-to-pdf against the Kaldi-free model reader."""
import re

import numpy as np
import pytest

from hdnn.errors import HdnnError
from hdnn.kaldi.alignments import num_pdfs_of, read_ali_dir_pdfs, read_pdf_alignments
from hdnn.kaldi.io import write_int_vectors

TOPO = """<Topology>
<TopologyEntry>
<ForPhones>
2 3 4 5
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.75 <Transition> 2 0.25 </State>
<State> 2 <PdfClass> 2 <Transition> 2 0.75 <Transition> 3 0.25 </State>
<State> 3 </State>
</TopologyEntry>
<TopologyEntry>
<ForPhones>
1
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.5 <Transition> 1 0.5 </State>
<State> 1 </State>
</TopologyEntry>
</Topology>
"""


def test_pdf_alignments(tmp_path):
    write_int_vectors(f"ark:{tmp_path}/pdf.ark", [("a", [3, 3, 0]), ("b", [1])])
    got = dict(read_pdf_alignments(f"ark:{tmp_path}/pdf.ark"))
    assert got["a"].tolist() == [3, 3, 0] and got["b"].dtype == np.int32
    write_int_vectors(f"ark:{tmp_path}/neg.ark", [("a", [3, -1])])
    with pytest.raises(HdnnError, match="neg.ark: alignment of a has a negative pdf-id -1"):
        list(read_pdf_alignments(f"ark:{tmp_path}/neg.ark"))


def test_ali_dir_errors(tmp_path):
    with pytest.raises(HdnnError, match="final.mdl: no such file"):
        read_ali_dir_pdfs(tmp_path)
    (tmp_path / "final.mdl").write_bytes(b"")
    with pytest.raises(HdnnError, match="no ali.\\*.gz"):
        read_ali_dir_pdfs(tmp_path)


@pytest.mark.kaldi
def test_ali_dir_kaldi_and_model_reader_agree(kaldi_run, tmp_path):
    ali_dir = tmp_path / "mono_ali"
    ali_dir.mkdir()
    (tmp_path / "topo").write_text(TOPO)
    kaldi_run(f"gmm-init-mono {tmp_path}/topo 13 {ali_dir}/final.mdl {ali_dir}/tree")
    info = kaldi_run(f"hmm-info {ali_dir}/final.mdl").decode()
    num_tids = int(re.search(r"number of transition-ids\s+(\d+)", info)[1])
    rng = np.random.default_rng(0)
    for job in (1, 2, 10):
        alis = [(f"utt{job:02d}_{i}", rng.integers(1, num_tids + 1, rng.integers(1, 80))) for i in range(3)]
        write_int_vectors(f"ark:| gzip -c > {ali_dir}/ali.{job}.gz", alis)
    kaldi_run(f"ali-to-pdf {ali_dir}/final.mdl 'ark:gunzip -c {ali_dir}/ali.*.gz |' ark:{tmp_path}/pdf.ark")
    want = dict(read_pdf_alignments(f"ark:{tmp_path}/pdf.ark"))
    with_kaldi = list(read_ali_dir_pdfs(ali_dir, use_kaldi=True))
    without = list(read_ali_dir_pdfs(ali_dir, use_kaldi=False))
    assert [u for u, _ in with_kaldi] == [u for u, _ in without] == sorted(want, key=lambda u: int(u[3:5]))
    for (utt, a), (_, b) in zip(with_kaldi, without):
        assert a.tolist() == b.tolist() == want[utt].tolist()
    assert num_pdfs_of(ali_dir, use_kaldi=True) == num_pdfs_of(ali_dir, use_kaldi=False) == 1 + 4 * 3
    assert max(a.max() for a in want.values()) + 1 == 13

"""Tables of matrices and int vectors: round trips, pipes, bad input, and real Kaldi reading ours."""
import subprocess
import sys

import numpy as np
import pytest

from hdnn.errors import HdnnError
from hdnn.kaldi.io import (MatrixReader, read_int_vectors, read_matrices, write_int_vectors,
                           write_matrices)

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.fixture
def mats():
    rng = np.random.default_rng(1)
    return {f"utt{i}": rng.standard_normal((10 + 7 * i, 5)).astype(np.float32) * (i + 1) for i in range(4)}


@pytest.fixture
def vecs():
    rng = np.random.default_rng(2)
    return {"a": rng.integers(0, 3000, 50), "b": np.array([], dtype=np.int64), "c": np.arange(7)}


def _same(got, want, atol=0.0):
    got = dict(got)
    assert list(got) == list(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], atol=atol, rtol=0)


@pytest.mark.parametrize("compress", [False, True])
def test_matrix_round_trip(tmp_path, mats, compress):
    ark, scp = tmp_path / "f.ark", tmp_path / "f.scp"
    assert write_matrices(f"ark,scp:{ark},{scp}", mats.items(), compress=compress) == len(mats)
    atol = 0.02 * max(np.ptp(m) for m in mats.values()) if compress else 0.0
    for rspec in (f"scp:{scp}", f"ark:{ark}", str(scp), str(ark), f"ark:cat {ark} |"):
        _same(read_matrices(rspec), mats, atol)
    reader = MatrixReader(scp)
    assert len(reader) == 4 and "utt2" in reader and "nope" not in reader
    assert list(reader.keys()) == list(mats)
    np.testing.assert_allclose(reader["utt3"], mats["utt3"], atol=atol)
    assert reader["utt3"].dtype == np.float32
    with pytest.raises(HdnnError, match=f"{scp}: no utterance nope"):
        reader["nope"]


def test_text_archives(tmp_path, mats, vecs):
    write_matrices(f"ark,t:{tmp_path}/m.txt", mats.items())
    _same(read_matrices(f"ark:{tmp_path}/m.txt"), mats, atol=1e-5)
    write_int_vectors(f"ark,t:{tmp_path}/v.txt", vecs.items())
    assert (tmp_path / "v.txt").read_text().splitlines()[1] == "b "
    _same(read_int_vectors(f"ark:{tmp_path}/v.txt"), vecs)


def test_int_vector_round_trip(tmp_path, vecs):
    write_int_vectors(f"ark,scp:{tmp_path}/v.ark,{tmp_path}/v.scp", vecs.items())
    for rspec in (f"scp:{tmp_path}/v.scp", f"ark:{tmp_path}/v.ark", f"ark:gzip -c {tmp_path}/v.ark | gunzip -c |"):
        got = dict(read_int_vectors(rspec))
        _same(got, vecs)
        assert all(v.dtype == np.int32 for v in got.values())


def _python_writer(tmp_path, code):
    script = tmp_path / "writer.py"
    script.write_text(f"import sys; sys.path.insert(0, {str(ROOT)!r})\n" + code)
    return f"{sys.executable} {script}"


def test_stdout_archives_feed_a_pipe(tmp_path):
    cmd = _python_writer(tmp_path, (
        "import numpy as np\nfrom hdnn.kaldi.io import write_matrices\n"
        "write_matrices('ark:-', [('x', np.full((3, 2), 1.5, np.float32)), ('y', np.eye(2))])\n"))
    got = list(read_matrices(f"ark:{cmd} |"))
    assert [u for u, _ in got] == ["x", "y"]
    assert got[0][1].tolist() == [[1.5, 1.5]] * 3 and got[1][1].tolist() == [[1, 0], [0, 1]]
    cmd = _python_writer(tmp_path, (
        "from hdnn.kaldi.io import write_int_vectors\nwrite_int_vectors('ark:-', [('z', [4, 5, 6])])\n"))
    raw = subprocess.run(cmd, shell=True, capture_output=True, check=True).stdout
    reader = _python_writer(tmp_path, (
        "from hdnn.kaldi.io import read_int_vectors\nprint(dict(read_int_vectors('ark:-'))['z'].tolist())\n"))
    assert subprocess.run(reader, shell=True, input=raw, capture_output=True).stdout == b"[4, 5, 6]\n"
    assert raw == b"z \0B\4\3\0\0\0" + b"".join(b"\4" + bytes([i]) + b"\0\0\0" for i in (4, 5, 6))


def test_bad_input_is_one_clear_error(tmp_path, mats):
    with pytest.raises(HdnnError, match=f"{tmp_path}/none.scp: no such scp file"):
        read_matrices(f"scp:{tmp_path}/none.scp")
    with pytest.raises(HdnnError, match="not an rspecifier"):
        read_matrices(f"{tmp_path}/feats.txt")
    write_matrices(f"ark,scp:{tmp_path}/f.ark,{tmp_path}/f.scp", mats.items())
    data = (tmp_path / "f.ark").read_bytes()
    (tmp_path / "cut.ark").write_bytes(data[: len(data) - 9])
    with pytest.raises(HdnnError, match="cut.ark"):
        list(read_matrices(f"ark:{tmp_path}/cut.ark"))
    with pytest.raises(HdnnError, match=r"pipe 'false' failed \(exit 1\)"):
        list(read_matrices("ark:false |"))
    with pytest.raises(HdnnError, match="is not a float matrix"):
        write_int_vectors(f"ark:{tmp_path}/v.ark", [("u", [1, 2])])
        list(read_matrices(f"ark:{tmp_path}/v.ark"))


def test_nan_names_file_and_utterance(tmp_path, mats):
    mats["utt2"][3, 1] = np.nan
    write_matrices(f"ark,scp:{tmp_path}/f.ark,{tmp_path}/f.scp", mats.items())
    with pytest.raises(HdnnError, match=r"f.scp \(utt2\): utterance utt2 has NaN/Inf at \(3, 1\)"):
        list(read_matrices(f"scp:{tmp_path}/f.scp"))
    with pytest.raises(HdnnError, match="f.scp: utterance utt2 has NaN"):
        MatrixReader(tmp_path / "f.scp")["utt2"]
    assert len(list(read_matrices(f"ark:{tmp_path}/f.ark", check=False))) == 4


def test_failed_write_leaves_old_output(tmp_path, mats):
    wspec = f"ark,scp:{tmp_path}/f.ark,{tmp_path}/f.scp"
    write_matrices(wspec, mats.items())
    before = sorted(p.read_bytes() for p in tmp_path.iterdir())

    def failing():
        yield "ok", np.zeros((2, 2))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_matrices(wspec, failing())
    with pytest.raises(HdnnError, match="expected a matrix"):
        write_matrices(wspec, [("ok", np.zeros((2, 2))), ("bad", np.zeros(3))])
    with pytest.raises(HdnnError, match="keys must be"):
        write_int_vectors(f"ark,scp:{tmp_path}/v.ark,{tmp_path}/v.scp", [("has space", [1])])
    assert sorted(p.read_bytes() for p in tmp_path.iterdir()) == before


@pytest.mark.kaldi
def test_kaldi_reads_our_tables(kaldi_run, tmp_path, mats, vecs):
    write_matrices(f"ark,scp:{tmp_path}/f.ark,{tmp_path}/f.scp", mats.items())
    write_matrices(f"ark,scp:{tmp_path}/c.ark,{tmp_path}/c.scp", mats.items(), compress=True)
    assert kaldi_run(f"feat-to-dim scp:{tmp_path}/f.scp -").strip() == b"5"
    kaldi_run(f"copy-feats scp:{tmp_path}/f.scp ark,t:{tmp_path}/k.txt")
    _same(read_matrices(f"ark:{tmp_path}/k.txt"), mats, atol=1e-4)
    # Kaldi decompresses ours as we do, and we read Kaldi's compressed archives (up to
    # float rounding: Kaldi and kaldiio order the decompression arithmetic differently)
    rounding = 1e-6 * max(np.ptp(m) for m in mats.values())
    kaldi_run(f"copy-feats scp:{tmp_path}/c.scp ark:{tmp_path}/kc.ark")
    _same(read_matrices(f"ark:{tmp_path}/kc.ark"), dict(read_matrices(f"scp:{tmp_path}/c.scp")), rounding)
    kaldi_run(f"copy-feats --compress=true scp:{tmp_path}/f.scp ark:{tmp_path}/kcc.ark")
    kaldi_run(f"copy-feats ark:{tmp_path}/kcc.ark ark:{tmp_path}/kcd.ark")
    _same(read_matrices(f"ark:{tmp_path}/kcc.ark"), dict(read_matrices(f"ark:{tmp_path}/kcd.ark")), rounding)
    write_int_vectors(f"ark,scp:{tmp_path}/v.ark,{tmp_path}/v.scp", vecs.items())
    text = kaldi_run(f"copy-int-vector scp:{tmp_path}/v.scp ark,t:-").decode().splitlines()
    assert text == [f"{k} " + "".join(f"{x} " for x in v) for k, v in vecs.items()]
    kaldi_run(f"copy-int-vector ark,t:{tmp_path}/v.ark ark:{tmp_path}/kv.ark")
    _same(read_int_vectors(f"ark:{tmp_path}/kv.ark"), vecs)
    # our stdout archive inside a Kaldi pipe
    cmd = _python_writer(tmp_path, (
        "from hdnn.kaldi.io import read_matrices, write_matrices\n"
        f"write_matrices('ark:-', read_matrices('scp:{tmp_path}/f.scp'))\n"))
    assert kaldi_run(f"{cmd} | feat-to-len ark:- ark,t:-").decode().split() == \
        [x for k, m in mats.items() for x in (k, str(len(m)))]

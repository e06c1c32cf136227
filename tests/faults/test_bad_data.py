"""Bad data: truncated or corrupt files, models that do not fit, empty files. Each is one line
naming the file (and the utterance), exit 1, no traceback, nothing left that looks complete."""
import shutil

import kaldiio
import numpy as np
import pytest

from tests.faults.common import assert_one_line_error, run
from tests.nnet.toy import FAST


def model_dir_copy(src, dst):
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copy(f, dst / f.name)
    return dst


def test_a_zero_byte_model_is_named(toy_split, teacher_dir, tmp_path):
    tr, _, _ = toy_split
    model = model_dir_copy(teacher_dir, tmp_path / "model")
    (model / "final.pt").write_bytes(b"")
    p = run("forward", tr, model, f"ark:{tmp_path / 'out.ark'}")
    assert_one_line_error(p, model / "final.pt", "not an hdnn model file")
    assert not (tmp_path / "out.ark").exists()
    shutil.copy(teacher_dir / "final.pt", model / "final.pt")  # the fix: the model restored
    assert run("forward", tr, model, f"ark:{tmp_path / 'out.ark'}").returncode == 0
    assert run("forward", tr, teacher_dir, f"ark:{tmp_path / 'clean.ark'}").returncode == 0
    assert (tmp_path / "out.ark").read_bytes() == (tmp_path / "clean.ark").read_bytes()


def test_a_zero_byte_checkpoint_is_not_resumed_from(toy_data, tmp_path):
    data, ali = toy_data
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "checkpoint.pt").write_bytes(b"")  # a run killed while it wrote it, before atomic writes
    p = run("train", *FAST, "--max-iters", 1, "--cv-fraction", 0.25, data, ali, exp)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "no record of what the earlier output was made from" in (exp / "log" / "train.log").read_text()
    assert (exp / "final.pt").exists()


def _two_entry_ark(path):
    kaldiio.save_ark(str(path), {"utt1": np.zeros((3, 4), np.float32), "utt2": np.ones((3, 4), np.float32)})
    data = path.read_bytes()
    return data, data.index(b"utt2 ")


def test_an_archive_truncated_at_an_entry_boundary(tmp_path):
    data, at = _two_entry_ark(tmp_path / "full.ark")
    bad = tmp_path / "bad.ark"
    bad.write_bytes(data[:at] + b"utt2 ")
    from hdnn.errors import HdnnError
    from hdnn.kaldi.io import read_matrices

    with pytest.raises(HdnnError, match=r"bad\.ark: cannot read: truncated or corrupt") as e:
        list(read_matrices(f"ark:{bad}"))
    assert "\n" not in str(e.value)


def test_an_archive_with_a_corrupt_binary_marker(tmp_path):
    data, at = _two_entry_ark(tmp_path / "full.ark")
    bad = tmp_path / "bad.ark"
    bad.write_bytes(data[:at] + b"utt2 \0\x80" + data[at + 7:])
    from hdnn.errors import HdnnError
    from hdnn.kaldi.io import read_matrices

    with pytest.raises(HdnnError, match=r"bad\.ark: cannot read: not a Kaldi table, or corrupt") as e:
        list(read_matrices(f"ark:{bad}"))
    assert "\n" not in str(e.value)


def test_alignments_of_another_model(espeak_mono, tmp_path):
    """Transition-ids beyond the model's: ali-to-pdf with the wrong final.mdl."""
    ali = tmp_path / "ali.ark"
    kaldiio.save_ark(str(ali), {"spk0_u0000": np.array([1, 2, 99999], np.int32)})
    out = tmp_path / "pdf.ark"
    p = run("ali_to_pdf", espeak_mono / "final.mdl", f"ark:{ali}", f"ark:{out}")
    assert_one_line_error(p, "spk0_u0000", "99999")
    assert not out.exists()


def test_alignment_with_features_of_another_dimension(espeak_corpus, espeak_mono, tmp_path):
    """align_si.py on 13-dim features with a model of 39-dim (deltas) input read as raw: the
    data dir's features are cut to 10 dims."""
    data = tmp_path / "data"
    shutil.copytree(espeak_corpus.data, data)
    feats = {u: m[:, :10] for u, m in kaldiio.load_scp(str(espeak_corpus.data / "feats.scp")).items()}
    kaldiio.save_ark(str(tmp_path / "feats10.ark"), feats, scp=str(data / "feats.scp"))
    out = tmp_path / "ali"
    p = run("align_si", "--nj", 2, data, espeak_corpus.lang, espeak_mono, out)
    assert_one_line_error(p, "dim")
    assert not (out / "num_jobs").exists() and not list(out.glob("ali.*.gz"))


def test_train_names_the_users_data_dir_not_its_split(toy_data, tmp_path):
    data, ali = toy_data
    bad = tmp_path / "data"
    shutil.copytree(data, bad)
    feats = kaldiio.load_scp(str(data / "feats.scp"))
    first = sorted(feats)[0]
    mats = {u: np.array(m) for u, m in feats.items()}
    mats[first][3, 0] = np.nan
    kaldiio.save_ark(str(tmp_path / "nan.ark"), mats, scp=str(bad / "feats.scp"))
    exp = tmp_path / "exp"
    p = run("train", *FAST, "--max-iters", 1, "--cv-fraction", 0.25, bad, ali, exp)
    last = assert_one_line_error(p, f"{bad}/feats.scp")
    assert "exp/data/" not in last and not (exp / "final.pt").exists()


def test_cmvn_of_a_data_dir_without_features(espeak_corpus, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(espeak_corpus.data, data, ignore=shutil.ignore_patterns("feats.scp", "cmvn.scp"))
    p = run("compute_cmvn_stats", data, tmp_path / "log", tmp_path / "cmvn")
    assert_one_line_error(p, data / "feats.scp", "make the features first")
    assert not (data / "cmvn.scp").exists()


def test_decoding_a_missing_loglikelihood_table(espeak_corpus, espeak_mono, espeak_graph, tmp_path):
    missing = tmp_path / "nowhere" / "loglikes.scp"
    p = run("decode_mapped", "--progress", "false", espeak_graph, espeak_corpus.data, espeak_mono,
            f"scp:{missing}", tmp_path / "decode")
    assert_one_line_error(p, missing)
    assert not (tmp_path / "decode" / "scoring_kaldi" / "best_wer").exists()


def test_a_teacher_with_other_outputs(toy_data, teacher_dir, tmp_path):
    data, ali = toy_data
    exp = tmp_path / "exp"
    p = run("train", *FAST, "--cv-fraction", 0.25, "--num-pdfs", 9, "--teacher", teacher_dir / "final.pt", data, ali, exp)
    assert_one_line_error(p, teacher_dir / "final.pt", "outputs")
    assert not (exp / "final.pt").exists()


def test_a_model_dir_without_its_feature_setup(toy_split, teacher_dir, tmp_path):
    tr, _, _ = toy_split
    model = model_dir_copy(teacher_dir, tmp_path / "model")
    (model / "feature_opts.json").unlink()
    p = run("forward", tr, model, f"ark:{tmp_path / 'out.ark'}")
    assert_one_line_error(p, model / "feature_opts.json")
    assert not (tmp_path / "out.ark").exists()

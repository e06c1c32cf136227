"""CMVN, splicing, global CMVN and final.feature_transform, against real Kaldi where built."""

import numpy as np
import pytest

from tests.kaldi.kaldi_data import FEAT_DIM
from hdnn.errors import HdnnError
from hdnn.kaldi.data_dir import DataDir
from hdnn.kaldi.features import (FeaturePipeline, GlobalCmvn, apply_cmvn, splice,
                                 write_feature_transform)
from hdnn.kaldi.io import MatrixReader, read_matrices, write_matrices


def test_apply_cmvn_normalises_each_speaker(data_dir):
    d = DataDir(data_dir)
    feats, stats = MatrixReader(d.feats_scp), MatrixReader(d.cmvn_scp, dtype=np.float64)
    for spk, utts in d.spk2utt.items():
        for norm_vars in (False, True):
            x = np.concatenate([apply_cmvn(feats[u], stats[spk], norm_vars) for u in utts])
            np.testing.assert_allclose(x.mean(0), 0, atol=1e-4)
            if norm_vars:
                np.testing.assert_allclose(x.std(0), 1, atol=1e-4)
    with pytest.raises(HdnnError, match="no variance row"):
        apply_cmvn(feats[d.utts[0]], stats[d.speakers[0]][:1], norm_vars=True)
    with pytest.raises(HdnnError, match="count = 0"):
        apply_cmvn(feats[d.utts[0]], np.zeros((2, FEAT_DIM + 1)))


def test_splice_repeats_edge_frames():
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    y = splice(x, left=2, right=1)
    assert y.shape == (4, 8)
    assert y[0].tolist() == [0, 1, 0, 1, 0, 1, 2, 3]
    assert y[3].tolist() == [2, 3, 4, 5, 6, 7, 6, 7]
    assert splice(np.zeros((0, 3)), 5, 5).shape == (0, 33)


def test_global_cmvn_stats_save_load(tmp_path):
    rng = np.random.default_rng(0)
    mats = [rng.standard_normal((50, 4)) * [1, 2, 3, 1e-7] + [5, -1, 0, 2] for _ in range(3)]
    cmvn = GlobalCmvn.from_matrices(mats)
    y = cmvn(np.concatenate(mats))
    np.testing.assert_allclose(y[:, :3].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y[:, :3].std(0), 1, atol=1e-5)
    assert cmvn.scale[3] == pytest.approx(1 / np.sqrt(1e-10), rel=1e-6)  # var floored as cmvn-to-nnet
    cmvn.save(tmp_path / "cmvn.npz")
    again = GlobalCmvn.load(tmp_path / "cmvn.npz")
    assert np.array_equal(again.shift, cmvn.shift) and np.array_equal(again.scale, cmvn.scale)
    with pytest.raises(HdnnError, match="not a global cmvn file"):
        GlobalCmvn.load(tmp_path / "missing.npz")


def test_pipeline(data_dir, tmp_path):
    pipe = FeaturePipeline(data_dir, splice=2)
    assert pipe.dim == 5 * FEAT_DIM and pipe.utts == DataDir(data_dir).utts
    cmvn = pipe.estimate_global_cmvn()
    pipe = FeaturePipeline(data_dir, splice=2, global_cmvn=cmvn)
    x = np.concatenate([pipe(u) for u in pipe.utts])
    assert x.dtype == np.float32 and x.shape[1] == pipe.dim
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-4)
    utt = pipe.utts[0]
    spk = pipe.data.utt2spk[utt]
    want = cmvn(splice(apply_cmvn(pipe.feats[utt], pipe.cmvn[spk]), 2, 2))
    np.testing.assert_allclose(pipe(utt), want, rtol=1e-6)
    with pytest.raises(HdnnError, match="global cmvn dim"):
        FeaturePipeline(data_dir, splice=5, global_cmvn=cmvn)


def test_pipeline_bad_input(data_dir):
    (data_dir / "cmvn.scp").write_text((data_dir / "cmvn.scp").read_text().split("\n", 1)[1])
    pipe = FeaturePipeline(data_dir)
    with pytest.raises(HdnnError, match=f"cmvn.scp: no cmvn stats for utterance {pipe.utts[0]}"):
        pipe(pipe.utts[0])
    (data_dir / "cmvn.scp").unlink()
    with pytest.raises(HdnnError, match="cmvn.scp: no such file"):
        FeaturePipeline(data_dir)
    (data_dir / "feats.scp").unlink()
    with pytest.raises(HdnnError, match="feats.scp: no such file"):
        FeaturePipeline(data_dir)


def _require(kaldi, *tools):
    for tool in tools:
        if not any((kaldi / "src" / d / tool).exists() for d in ("bin", "featbin", "nnetbin")):
            pytest.skip(f"Kaldi build has no {tool} yet")


@pytest.mark.kaldi
@pytest.mark.parametrize("norm_vars", [False, True])
def test_cmvn_and_splice_match_kaldi(kaldi, kaldi_run, data_dir, tmp_path, norm_vars):
    d = DataDir(data_dir)
    kaldi_run(f"compute-cmvn-stats --spk2utt=ark:{data_dir}/spk2utt scp:{data_dir}/feats.scp "
              f"ark:{tmp_path}/cmvn.ark")
    ours = MatrixReader(d.cmvn_scp, dtype=np.float64)
    for spk, stats in read_matrices(f"ark:{tmp_path}/cmvn.ark", dtype=np.float64):
        np.testing.assert_allclose(stats, ours[spk], rtol=1e-7)
    kaldi_run(f"apply-cmvn --norm-vars={str(norm_vars).lower()} --utt2spk=ark:{data_dir}/utt2spk "
              f"scp:{data_dir}/cmvn.scp scp:{data_dir}/feats.scp ark:- | "
              f"splice-feats --left-context=3 --right-context=4 ark:- ark:{tmp_path}/spliced.ark")
    pipe = FeaturePipeline(data_dir, norm_vars=norm_vars, splice=0)
    count = 0
    for utt, want in read_matrices(f"ark:{tmp_path}/spliced.ark"):
        np.testing.assert_allclose(splice(pipe.normalized(utt), 3, 4), want, rtol=1e-5, atol=1e-5)
        count += 1
    assert count == d.num_utts


@pytest.mark.kaldi
def test_feature_transform_runs_in_kaldi_nnet_forward(kaldi, kaldi_run, data_dir, tmp_path):
    _require(kaldi, "nnet-forward", "nnet-info", "cmvn-to-nnet")
    pipe = FeaturePipeline(data_dir, splice=5)
    pipe = FeaturePipeline(data_dir, splice=5, global_cmvn=pipe.estimate_global_cmvn())
    pipe.write_feature_transform(tmp_path / "final.feature_transform")
    info = kaldi_run(f"nnet-info {tmp_path}/final.feature_transform").decode()
    assert f"input-dim {FEAT_DIM}" in info and f"output-dim {11 * FEAT_DIM}" in info
    assert "<Splice>" in info and "<AddShift>" in info and "<Rescale>" in info
    kaldi_run(f"apply-cmvn --utt2spk=ark:{data_dir}/utt2spk scp:{data_dir}/cmvn.scp "
              f"scp:{data_dir}/feats.scp ark:- | nnet-forward {tmp_path}/final.feature_transform "
              f"ark:- ark:{tmp_path}/out.ark")
    for utt, want in read_matrices(f"ark:{tmp_path}/out.ark"):
        np.testing.assert_allclose(pipe(utt), want, rtol=1e-4, atol=1e-4)
    # our GlobalCmvn equals nnet1's compute-cmvn-stats | cmvn-to-nnet on the spliced features
    write_matrices(f"ark:{tmp_path}/spliced.ark",
                   ((u, splice(FeaturePipeline(data_dir).normalized(u))) for u in pipe.utts))
    kaldi_run(f"compute-cmvn-stats ark:{tmp_path}/spliced.ark - | "
              f"cmvn-to-nnet --binary=false - {tmp_path}/cmvn.nnet")
    text = (tmp_path / "cmvn.nnet").read_text()
    kaldi_shift = np.array(text.split("<AddShift>")[1].split("[")[1].split("]")[0].split(), dtype=float)
    kaldi_scale = np.array(text.split("<Rescale>")[1].split("[")[1].split("]")[0].split(), dtype=float)
    np.testing.assert_allclose(pipe.global_cmvn.shift, kaldi_shift, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pipe.global_cmvn.scale, kaldi_scale, rtol=1e-4)


def test_feature_transform_text(tmp_path):
    write_feature_transform(tmp_path / "ft", 2, 1)
    assert (tmp_path / "ft").read_text().split() == [
        "<Nnet>", "<Splice>", "6", "2", "[", "-1", "0", "1", "]", "<!EndOfComponent>", "</Nnet>"]
    with pytest.raises(HdnnError, match="global cmvn dim 4 != spliced dim 6"):
        write_feature_transform(tmp_path / "ft2", 2, 1, GlobalCmvn(np.zeros(4), np.ones(4)))
    assert not (tmp_path / "ft2").exists()

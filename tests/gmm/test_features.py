"""MFCC/fbank extraction, CMVN statistics and deltas (hdnn.gmm.features, steps make_mfcc,
make_fbank, compute_cmvn_stats) on the ci corpus, and against real Kaldi."""
import io
import shutil
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
from scipy.io import wavfile

from tests.gmm.fixtures import ROOT, STEPS
from hdnn.errors import HdnnError
from hdnn.gmm.features import (FeatureConfig, WaveReader, compute_cmvn_stats, iter_cmvn_deltas,
                               make_features)
from hdnn.kaldi.binaries import run_kaldi
from hdnn.kaldi.data_dir import read_kaldi_map


def small_copy(src, dst, num_utts=6):
    """A copy of a data dir (with segments) keeping the first `num_utts` utterances."""
    dst.mkdir(parents=True)
    keep = list(read_kaldi_map(src / "utt2spk"))[:num_utts]
    for name in ("utt2spk", "text", "segments"):
        rows = read_kaldi_map(src / name)
        (dst / name).write_text("".join(f"{u} {rows[u]}\n" for u in keep))
    recos = {line.split()[1] for line in (dst / "segments").read_text().splitlines()}
    (dst / "wav.scp").write_text("".join(f"{r} {p}\n" for r, p in read_kaldi_map(src / "wav.scp").items()
                                         if r in recos))
    spk2utt = {}
    for u in keep:
        spk2utt.setdefault(read_kaldi_map(src / "utt2spk")[u], []).append(u)
    (dst / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in spk2utt.items()))
    return dst


def test_make_mfcc_outputs(ci_mfcc):
    data = ci_mfcc.dev
    feats = dict(kaldiio.load_scp_sequential(str(data / "feats.scp")))
    segments = read_kaldi_map(data / "segments")
    assert list(feats) == list(segments)
    num_frames = read_kaldi_map(data / "utt2num_frames")
    durations = read_kaldi_map(data / "utt2dur")
    for utt, mat in feats.items():
        assert mat.shape[1] == 13
        assert int(num_frames[utt]) == len(mat)
        _, start, end = segments[utt].split()
        assert abs(float(durations[utt]) - (float(end) - float(start))) < 0.002
        # snip-edges: 1 + (samples - 400) // 160 frames
        assert len(mat) == 1 + (round((float(end) - float(start)) * 16000) - 400) // 160
    # compressed as copy-feats --compress=true writes them: a "CM" header after the key
    ark, offset = open(data / "feats.scp").readline().split()[1].rsplit(":", 1)
    with open(ark, "rb") as f:
        f.seek(int(offset))
        assert f.read(4) == b"\0BCM"
    logs = sorted((ci_mfcc.root / "exp" / "make_mfcc" / "dev").glob("make_mfcc_dev.*.log"))
    assert len(logs) == 2


def test_parallel_jobs_and_reruns_give_the_same_features(ci_corpus, tmp_path):
    a = small_copy(ci_corpus / "ihm" / "dev", tmp_path / "a")
    b = small_copy(ci_corpus / "ihm" / "dev", tmp_path / "b")
    make_features(a, "mfcc", nj=1, progress=False)
    make_features(b, "mfcc", nj=3, progress=False)
    fa = dict(kaldiio.load_scp_sequential(str(a / "feats.scp")))
    fb = dict(kaldiio.load_scp_sequential(str(b / "feats.scp")))
    assert fa.keys() == fb.keys()
    for utt in fa:  # dither is seeded by the utterance id
        np.testing.assert_array_equal(fa[utt], fb[utt])
    arks = sorted((b / "data").glob("*.ark"))
    mtimes = [p.stat().st_mtime_ns for p in arks]
    make_features(b, "mfcc", nj=3, progress=False)  # complete jobs are not redone
    assert [p.stat().st_mtime_ns for p in arks] == mtimes


def test_make_fbank_with_a_kaldi_config(ci_corpus, tmp_path):
    data = small_copy(ci_corpus / "ihm" / "dev", tmp_path / "data", num_utts=3)
    conf = tmp_path / "fbank.conf"
    conf.write_text("--num-mel-bins=40  # nnet input\n--sample-frequency=16000\n")
    subprocess.run([sys.executable, str(STEPS / "make_fbank.py"), "--nj", "1", "--fbank-config", str(conf),
                    "--progress", "false", str(data), str(tmp_path / "log"), str(tmp_path / "fbank")],
                   check=True, capture_output=True, cwd=ROOT)
    mats = dict(kaldiio.load_scp_sequential(str(data / "feats.scp")))
    assert {m.shape[1] for m in mats.values()} == {40}
    assert (data / "conf" / "fbank.conf").read_text() == conf.read_text()
    assert list((tmp_path / "fbank").glob("raw_fbank_data.1.ark"))


def test_cmvn_stats_are_per_speaker_sums(ci_mfcc):
    data = ci_mfcc.dev
    feats = dict(kaldiio.load_scp_sequential(str(data / "feats.scp")))
    cmvn = dict(kaldiio.load_scp_sequential(str(data / "cmvn.scp")))
    spk2utt = read_kaldi_map(data / "spk2utt", multi=True)
    assert list(cmvn) == list(spk2utt)
    for spk, utts in spk2utt.items():
        x = np.concatenate([feats[u] for u in utts]).astype(np.float64)
        assert cmvn[spk].dtype == np.float64 and cmvn[spk].shape == (2, 14)
        np.testing.assert_allclose(cmvn[spk][0, :13], x.sum(0), rtol=1e-6)
        np.testing.assert_allclose(cmvn[spk][1, :13], (x * x).sum(0), rtol=1e-6)
        assert cmvn[spk][0, 13] == len(x)


def test_cmvn_deltas_pipeline(ci_mfcc):
    data = ci_mfcc.dev
    utt2spk = read_kaldi_map(data / "utt2spk")
    spk = utt2spk[next(iter(utt2spk))]
    utts = [u for u, s in utt2spk.items() if s == spk]
    out = dict(iter_cmvn_deltas(data, utts=utts))
    assert list(out) == utts
    x = np.concatenate(list(out.values()))
    assert x.shape[1] == 39
    np.testing.assert_allclose(x[:, :13].mean(0), 0.0, atol=1e-3)  # speaker mean removed


def test_config_errors(tmp_path):
    conf = tmp_path / "mfcc.conf"
    conf.write_text("--use-energy=false\n--no-such-option=1\n")
    with pytest.raises(HdnnError, match=r"mfcc.conf: option --no-such-option is not supported"):
        FeatureConfig("mfcc", conf)
    conf.write_text("--num-ceps=many\n")
    with pytest.raises(HdnnError, match=r"bad value for --num-ceps"):
        FeatureConfig("mfcc", conf)


def test_bad_audio_gives_one_line_error_and_no_output(ci_corpus, tmp_path):
    data = small_copy(ci_corpus / "ihm" / "dev", tmp_path / "data", num_utts=4)
    wav = read_kaldi_map(data / "wav.scp")
    reco = next(iter(wav))
    utt = next(u for u, s in read_kaldi_map(data / "segments").items() if s.split()[0] == reco)

    (data / "wav.scp").write_text("".join(f"{r} {tmp_path / 'missing.wav' if r == reco else p}\n"
                                          for r, p in wav.items()))
    with pytest.raises(HdnnError, match=rf"wav.scp: recording {reco} \(utterance {utt}\): no such file"):
        make_features(data, "mfcc", nj=2, progress=False)
    assert not (data / "feats.scp").exists()
    assert not [p for p in (data / "data").glob("*") if p.suffix in (".ark", ".scp", ".tmp")]

    rate8k = tmp_path / "8k.wav"
    subprocess.run(["sox", next(iter(wav.values())), "-r", "8000", str(rate8k)], check=True)
    (data / "wav.scp").write_text("".join(f"{r} {rate8k if r == reco else p}\n" for r, p in wav.items()))
    p = subprocess.run([sys.executable, str(STEPS / "make_mfcc.py"), "--nj", "1", "--progress", "false",
                        str(data)], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 1
    last = p.stderr.strip().splitlines()[-1]
    assert f"recording {reco} (utterance {utt}): sample rate 8000 Hz, expected 16000 Hz" in last
    assert "Traceback" not in p.stderr


def test_unsorted_data_dir_is_rejected(ci_corpus, tmp_path):
    data = small_copy(ci_corpus / "ihm" / "dev", tmp_path / "data", num_utts=4)
    lines = (data / "utt2spk").read_text().splitlines()
    (data / "utt2spk").write_text("\n".join(lines[::-1]) + "\n")
    with pytest.raises(HdnnError, match="utt2spk"):
        make_features(data, "mfcc", nj=1, progress=False)


# ---------------------------------------------------------------- real Kaldi

@pytest.mark.kaldi
def test_kaldi_reads_our_features(kaldi, ci_mfcc):
    scp = ci_mfcc.dev / "feats.scp"
    assert run_kaldi(["feat-to-dim", f"scp:{scp}", "-"]).stdout.split() == [b"13"]
    text = run_kaldi(["copy-feats", f"scp:{scp}", "ark,t:-"]).stdout
    ours = dict(kaldiio.load_scp_sequential(str(scp)))
    theirs = dict(kaldiio.load_ark(io.BytesIO(text)))
    assert theirs.keys() == ours.keys()
    for utt in ours:
        np.testing.assert_allclose(theirs[utt], ours[utt], atol=1e-3)


@pytest.mark.kaldi
def test_features_close_to_compute_mfcc_feats(kaldi, ci_corpus, tmp_path):
    data = small_copy(ci_corpus / "ihm" / "dev", tmp_path / "data", num_utts=3)
    conf = tmp_path / "mfcc.conf"
    conf.write_text("--use-energy=false\n--dither=0\n")
    make_features(data, "mfcc", conf, nj=1, progress=False)
    ours = dict(kaldiio.load_scp_sequential(str(data / "feats.scp")))
    reader = WaveReader(data, 16000)
    with open(tmp_path / "segments.scp", "w") as scp:  # the segments as wav files
        for utt in ours:
            wavfile.write(tmp_path / f"{utt}.wav", 16000, reader(utt).astype(np.int16))
            scp.write(f"{utt} {tmp_path / f'{utt}.wav'}\n")
    out = run_kaldi(["compute-mfcc-feats", f"--config={conf}", f"scp:{tmp_path / 'segments.scp'}",
                     "ark:-"]).stdout
    theirs = dict(kaldiio.load_ark(io.BytesIO(out)))
    for utt, mat in ours.items():
        assert theirs[utt].shape == mat.shape
        # compression error only (copy-feats --compress keeps ~1/65536 of the range)
        scale = np.abs(theirs[utt]).max()
        assert np.abs(theirs[utt] - mat).max() < 0.02 * scale, utt


@pytest.mark.kaldi
def test_cmvn_stats_equal_compute_cmvn_stats(kaldi, ci_mfcc):
    data = ci_mfcc.dev
    out = run_kaldi(["compute-cmvn-stats", f"--spk2utt=ark:{data / 'spk2utt'}", f"scp:{data / 'feats.scp'}",
                     "ark:-"]).stdout
    theirs = dict(kaldiio.load_ark(io.BytesIO(out)))
    ours = dict(kaldiio.load_scp_sequential(str(data / "cmvn.scp")))
    assert theirs.keys() == ours.keys()
    for spk in ours:
        # float rounding only: sums of thousands of frames, some close to zero
        np.testing.assert_allclose(ours[spk], theirs[spk], rtol=1e-5, atol=1e-7 * np.abs(theirs[spk]).max())
    # and Kaldi reads ours
    run_kaldi(["copy-matrix", f"scp:{data / 'cmvn.scp'}", "ark,t:/dev/null"])


def test_cmvn_recomputed_after_new_features(ci_corpus, tmp_path):
    data = small_copy(ci_corpus / "ihm" / "dev", tmp_path / "data", num_utts=3)
    make_features(data, "mfcc", nj=1, progress=False)
    assert compute_cmvn_stats(data) == len(read_kaldi_map(data / "spk2utt"))
    shutil.rmtree(data / "data")
    with pytest.raises(HdnnError, match="raw_mfcc_data.1.ark"):
        compute_cmvn_stats(data)

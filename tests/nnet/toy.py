"""A small generated Kaldi data dir with pdf alignments, and a runner for the steps.

Each utterance is a sequence of pdf segments (3-8 frames each); a frame of pdf k is drawn from
N(mu_k + speaker offset, 1). Per-speaker CMVN removes the speaker offset, so the classes are
learnable but overlap (frame accuracy well below 100%).
"""
import os
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np

from hdnn.kaldi.data_dir import write_kaldi_map
from hdnn.kaldi.features import cmvn_stats
from hdnn.kaldi.io import write_int_vectors, write_matrices

NUM_PDFS = 6
FEAT_DIM = 5


def make_data_dir(root, num_spk=8, utts_per_spk=4, seed=0, frames=(40, 70), feat_dim=FEAT_DIM, speaker_warp=0.0):
    """Write <root>/data (feats, cmvn, utt2spk, spk2utt, text) and <root>/ali.{ark,scp};
    return (data dir, pdf alignment rspecifier). With ``speaker_warp``, each speaker's frames
    also go through their own linear map I + speaker_warp * N(0, 1), which CMVN does not undo
    (something for speaker adaptation to learn)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 1.2, size=(NUM_PDFS, feat_dim))
    data, feats, ali, utt2spk = root / "data", {}, {}, {}
    for s in range(num_spk):
        spk = f"spk{s:02d}"
        offset = rng.normal(0, 3, size=feat_dim)
        warp = np.eye(feat_dim) + speaker_warp * rng.normal(size=(feat_dim, feat_dim)) if speaker_warp else None
        for u in range(utts_per_spk):
            utt = f"{spk}-utt{u:02d}"
            num_frames = int(rng.integers(*frames))
            lengths = rng.integers(3, 9, size=num_frames)
            pdfs = np.repeat(rng.integers(0, NUM_PDFS, size=num_frames), lengths)[:num_frames]
            x = means[pdfs] + offset + rng.normal(0, 1, size=(num_frames, feat_dim))
            feats[utt] = (x if warp is None else x @ warp.T).astype(np.float32)
            ali[utt], utt2spk[utt] = pdfs.astype(np.int32), spk
    spk2utt = {}
    for utt, spk in utt2spk.items():
        spk2utt.setdefault(spk, []).append(utt)
    data.mkdir(parents=True)
    write_matrices(f"ark,scp:{data}/feats.ark,{data}/feats.scp", sorted(feats.items()))
    with kaldiio.WriteHelper(f"ark,scp:{data}/cmvn.ark,{data}/cmvn.scp") as w:
        for spk, utts in sorted(spk2utt.items()):
            w(spk, cmvn_stats(feats[u] for u in utts))
    write_kaldi_map(data / "utt2spk", utt2spk)
    write_kaldi_map(data / "spk2utt", spk2utt)
    write_kaldi_map(data / "text", {u: "hello world" for u in utt2spk})
    write_int_vectors(f"ark,scp:{root}/ali.ark,{root}/ali.scp", sorted(ali.items()))
    return data, f"scp:{root}/ali.scp"


STEPS = Path(__file__).resolve().parents[2] / "steps_py"


def run_step(name, *args, check=True, torchrun=None, timeout=300):
    """Run steps_py/<name>.py (under torchrun with that many processes); returns CompletedProcess."""
    cmd = [sys.executable, str(STEPS / name), *map(str, args)]
    if torchrun:
        cmd[1:1] = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(torchrun)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{name} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p


FAST = ["--minibatch-size", "32", "--randomizer-size", "2048"]

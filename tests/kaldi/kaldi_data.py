"""Small Kaldi data dirs made with numpy + kaldiio for the hdnn.kaldi tests."""
from pathlib import Path

import kaldiio
import numpy as np

SPEAKERS = ("FEE005", "MEE006", "MEO008", "MTD009")
FEAT_DIM = 13


def utt_id(spk, i):
    return f"{spk}_AMI_ES2002a_H0{i}_{1000 + 37 * i:07d}_{1200 + 37 * i:07d}"


def write_lines(path, lines):
    Path(path).write_text("".join(line + "\n" for line in lines))


def make_data_dir(root, speakers=SPEAKERS, utts_per_spk=2, seed=0, segments=True):
    """A valid data dir with wav.scp/segments/text/feats.scp/cmvn.scp and real-looking sizes."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    utt2spk = {utt_id(s, i): s for s in speakers for i in range(utts_per_spk)}
    utts = sorted(utt2spk)
    write_lines(root / "utt2spk", [f"{u} {utt2spk[u]}" for u in utts])
    write_lines(root / "spk2utt", [f"{s} " + " ".join(u for u in utts if utt2spk[u] == s) for s in sorted(speakers)])
    write_lines(root / "text", [f"{u} HELLO WORLD NUMBER {n}" for n, u in enumerate(utts)])
    if segments:
        recos = sorted({f"AMI_ES2002a_H0{u.split('_H0')[1][0]}" for u in utts})
        write_lines(root / "segments", [f"{u} AMI_ES2002a_H0{u.split('_H0')[1][0]} 1.0 2.5" for u in utts])
        write_lines(root / "wav.scp", [f"{r} /corpus/{r}.wav" for r in recos])
        write_lines(root / "reco2file_and_channel", [f"{r} {r} A" for r in recos])
    else:
        write_lines(root / "wav.scp", [f"{u} /corpus/{u}.wav" for u in utts])
    feats = {u: (rng.standard_normal((int(rng.integers(15, 40)), FEAT_DIM)) * 3 + 10).astype(np.float32)
             for u in utts}
    kaldiio.save_ark(str(root / "feats.ark"), feats, scp=str(root / "feats.scp"))
    stats = {}
    for s in sorted(speakers):
        x = np.concatenate([feats[u] for u in utts if utt2spk[u] == s]).astype(np.float64)
        st = np.zeros((2, FEAT_DIM + 1))
        st[0, :-1], st[1, :-1], st[0, -1] = x.sum(0), (x * x).sum(0), len(x)
        stats[s] = st
    kaldiio.save_ark(str(root / "cmvn.ark"), stats, scp=str(root / "cmvn.scp"))
    return root

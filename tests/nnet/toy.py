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


TOY_TOPO = """<Topology>
<TopologyEntry>
<ForPhones>
1 2 3 4 5 6
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.5 <Transition> 1 0.5 </State>
<State> 1 </State>
</TopologyEntry>
</Topology>
"""


def make_sequence_dirs(root, ali_rspecifier, competitors=3, seed=0):
    """For sequence training on the toy data: an alignment dir (a transition model of one-state
    phones 1-6, phone k+1 = pdf k; ali.1.gz of transition-ids), a lang dir whose silence phone
    is 1, and denominator lattices (a sausage per utterance: at each frame the reference's
    transition-id and `competitors` others, with random graph costs). Returns the three dirs."""
    from hdnn.kaldi.alignments import read_pdf_alignments
    from hdnn.kaldi.binary import KaldiBinaryWriter
    from hdnn.kaldi.gmm_model import HmmTopology, TransitionModel
    from hdnn.kaldi.lattices import Lattice, write_lattices
    from hdnn.kaldi.tree import monophone_tree

    root = Path(root)
    topo = HmmTopology.from_text(TOY_TOPO)
    tm = TransitionModel.from_tree(monophone_tree([[p] for p in range(1, 7)], {p: 1 for p in range(1, 7)}), topo)
    ali_dir, lang, denlats = root / "ali", root / "lang", root / "denlats"
    for d in (ali_dir, lang / "phones", denlats):
        d.mkdir(parents=True)
    w = KaldiBinaryWriter()
    tm.write(w)
    w.save(ali_dir / "final.mdl")
    (lang / "phones" / "silence.csl").write_text("1\n")
    loop_tid = {int(tm.tid2pdf[t]): t for t in range(1, tm.num_transition_ids + 1) if tm.is_self_loop[t]}
    rng = np.random.default_rng(seed)
    tids, lats = {}, {}
    for utt, pdfs in read_pdf_alignments(ali_rspecifier):
        ref = np.array([loop_tid[int(p)] for p in pdfs], np.int32)
        T, k = len(ref), competitors + 1
        others = [rng.choice([t for t in loop_tid.values() if t != r], competitors, replace=False) for r in ref]
        tid = np.concatenate([np.r_[r, o] for r, o in zip(ref, others)]).astype(np.int32)
        src = np.repeat(np.arange(T), k)
        graph = rng.uniform(0, 1, T * k)
        lats[utt] = Lattice(T + 1, 0, src, src + 1, tid, np.zeros(T * k, np.int32), graph, np.zeros(T * k),
                            np.r_[np.full(T, np.inf), 0.0], np.r_[np.full(T, np.inf), 0.0])
        tids[utt] = ref
    write_int_vectors(f"ark:| gzip -c > {ali_dir}/ali.1.gz", sorted(tids.items()))
    write_lattices(f"ark:| gzip -c > {denlats}/lat.1.gz", sorted(lats.items()))
    return ali_dir, lang, denlats

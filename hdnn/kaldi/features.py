"""The nnet1 input pipeline: speaker CMVN, frame splicing and a global CMVN.

`FeaturePipeline` computes per utterance what nnet1's recipe feeds its networks:
`apply-cmvn --utt2spk=... scp:cmvn.scp scp:feats.scp ark:- | nnet-forward final.feature_transform`,
where final.feature_transform is `<Splice>` + `<AddShift>` + `<Rescale>`
(`write_feature_transform` writes that file for real Kaldi).
"""
from pathlib import Path

import numpy as np

from hdnn.errors import HdnnError, atomic_open, atomic_path
from hdnn.kaldi.data_dir import DataDir
from hdnn.kaldi.io import MatrixReader, check_finite


def apply_cmvn(feats, stats, norm_vars=False):
    """Normalise (T, D) feats with Kaldi CMVN stats, exactly as `apply-cmvn`.

    stats is the (1 or 2, D+1) matrix of compute-cmvn-stats: row 0 = [sum x, count],
    row 1 = [sum x^2, 0]. Returns float32.
    """
    stats = np.asarray(stats, dtype=np.float64)
    feats = np.asarray(feats, dtype=np.float32)
    dim = stats.shape[1] - 1
    if stats.ndim != 2 or stats.shape[0] not in (1, 2) or feats.shape[1] != dim:
        raise HdnnError(f"dim mismatch: cmvn stats {stats.shape}, feats {feats.shape}")
    if norm_vars and stats.shape[0] == 1:
        raise HdnnError("variance normalisation requested but the cmvn stats have no variance row")
    count = stats[0, dim]
    if count < 1.0:
        raise HdnnError(f"insufficient cmvn stats: count = {count}")
    mean = stats[0, :dim] / count
    if not norm_vars:
        return feats + (-mean).astype(np.float32)
    var = np.maximum(stats[1, :dim] / count - mean * mean, 1.0e-20)
    scale = 1.0 / np.sqrt(var)
    return feats * scale.astype(np.float32) + (-mean * scale).astype(np.float32)


def splice(feats, left=5, right=5):
    """Stack frames t-left..t+right into one row, repeating the edge frames (`splice-feats`)."""
    feats = np.asarray(feats)
    num_frames = feats.shape[0]
    if num_frames == 0:
        return np.zeros((0, feats.shape[1] * (left + right + 1)), dtype=feats.dtype)
    offsets = np.arange(-left, right + 1)
    rows = np.clip(np.arange(num_frames)[:, None] + offsets[None, :], 0, num_frames - 1)
    return feats[rows].reshape(num_frames, -1)


class GlobalCmvn:
    """Global mean/variance normalisation, y = (x + shift) * scale, like nnet1's
    `compute-cmvn-stats` + `cmvn-to-nnet` (<AddShift> then <Rescale>)."""

    def __init__(self, shift, scale):
        self.shift = np.asarray(shift, dtype=np.float32)
        self.scale = np.asarray(scale, dtype=np.float32)
        if self.shift.shape != self.scale.shape or self.shift.ndim != 1:
            raise HdnnError(f"global cmvn: shift {self.shift.shape} and scale {self.scale.shape} differ")

    @property
    def dim(self):
        return len(self.shift)

    @classmethod
    def from_stats(cls, stats, std_dev=1.0, var_floor=1e-10):
        """From a 2x(D+1) Kaldi CMVN stats matrix, as `cmvn-to-nnet` computes it."""
        stats = np.asarray(stats, dtype=np.float64)
        if stats.ndim != 2 or stats.shape[0] != 2 or stats.shape[1] < 2:
            raise HdnnError(f"global cmvn: expected 2x(D+1) stats, got {stats.shape}")
        count = stats[0, -1]
        if count <= 0:
            raise HdnnError("global cmvn: no frames in the stats")
        mean = stats[0, :-1] / count
        var = stats[1, :-1] / count - mean * mean
        var = np.where(var <= var_floor, var_floor, var)
        return cls(-mean, std_dev / np.sqrt(var))

    @classmethod
    def from_matrices(cls, matrices, **kwargs):
        """Estimate from an iterable of (T, D) arrays (e.g. spliced training features)."""
        return cls.from_stats(cmvn_stats(matrices), **kwargs)

    def apply(self, x):
        if x.shape[-1] != self.dim:
            raise HdnnError(f"global cmvn of dim {self.dim} applied to features of dim {x.shape[-1]}")
        return (x + self.shift) * self.scale

    __call__ = apply

    def save(self, path):
        """Save as .npz (arrays shift, scale), atomically."""
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, shift=self.shift, scale=self.scale)

    @classmethod
    def load(cls, path):
        try:
            with np.load(path) as npz:
                return cls(npz["shift"], npz["scale"])
        except (OSError, KeyError, ValueError) as e:
            raise HdnnError(f"{path}: not a global cmvn file: {e}") from None


def cmvn_stats(matrices):
    """Kaldi CMVN stats (2, D+1) of float64 over all rows of `matrices` (compute-cmvn-stats)."""
    stats = None
    for mat in matrices:
        mat = np.asarray(mat, dtype=np.float64)
        if stats is None:
            stats = np.zeros((2, mat.shape[1] + 1))
        stats[0, :-1] += mat.sum(axis=0)
        stats[1, :-1] += (mat * mat).sum(axis=0)
        stats[0, -1] += mat.shape[0]
    if stats is None:
        raise HdnnError("cmvn stats: no features")
    return stats


def write_feature_transform(path, input_dim, splice_width=5, global_cmvn=None):
    """Write an nnet1 text `final.feature_transform`: <Splice> [+ <AddShift> + <Rescale>].

    Real `nnet-forward`/`nnet-info` read it; applied to speaker-normalised features it
    computes what `FeaturePipeline` does after its CMVN step.
    """
    out_dim = input_dim * (2 * splice_width + 1)
    offsets = " ".join(str(o) for o in range(-splice_width, splice_width + 1))
    lines = ["<Nnet> ", f"<Splice> {out_dim} {input_dim} ", f"[ {offsets} ]", "<!EndOfComponent> "]
    if global_cmvn is not None:
        if global_cmvn.dim != out_dim:
            raise HdnnError(f"{path}: global cmvn dim {global_cmvn.dim} != spliced dim {out_dim}")
        for name, values in (("AddShift", global_cmvn.shift), ("Rescale", global_cmvn.scale)):
            vec = " ".join(repr(float(v)) for v in values)
            lines += [f"<{name}> {out_dim} {out_dim} ", f"<LearnRateCoef> 0 [ {vec} ]",
                      "<!EndOfComponent> "]
    lines.append("</Nnet> ")
    with atomic_open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


class FeaturePipeline:
    """Network input of each utterance of a data dir: speaker CMVN (utt2spk + cmvn.scp),
    then splicing of +-`splice` frames, then the optional global CMVN.

    global_cmvn: a GlobalCmvn, the path of one saved with .save(), or None.
    """

    def __init__(self, data_dir, cmvn=True, norm_vars=False, splice=5, global_cmvn=None):
        self.data = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
        if self.data.feats_scp is None:
            raise HdnnError(f"{self.data.path}/feats.scp: no such file (run make_fbank/make_mfcc first)")
        self.feats = MatrixReader(self.data.feats_scp)
        self.cmvn = None
        if cmvn:
            if self.data.cmvn_scp is None:
                raise HdnnError(f"{self.data.path}/cmvn.scp: no such file (run compute_cmvn_stats first)")
            self.cmvn = MatrixReader(self.data.cmvn_scp, dtype=np.float64)
        self.norm_vars = norm_vars
        self.splice = splice
        if isinstance(global_cmvn, (str, Path)):
            global_cmvn = GlobalCmvn.load(global_cmvn)
        self.global_cmvn = global_cmvn
        self.input_dim = self._first_dim()
        if global_cmvn is not None and global_cmvn.dim != self.dim:
            raise HdnnError(f"{self.data.path}: global cmvn dim {global_cmvn.dim} != "
                            f"spliced feature dim {self.dim}")

    def _first_dim(self):
        if not self.data.utts:
            raise HdnnError(f"{self.data.feats_scp}: no utterances")
        return self.feats[self.data.utts[0]].shape[1]

    @property
    def utts(self):
        return self.data.utts

    @property
    def dim(self):
        return self.input_dim * (2 * self.splice + 1)

    def normalized(self, utt):
        """Speaker-normalised features (T, D) of `utt`, before splicing."""
        feats = self.feats[utt]
        if feats.shape[1] != self.input_dim:
            raise HdnnError(f"{self.data.feats_scp}: utterance {utt} has dim {feats.shape[1]}, "
                            f"expected {self.input_dim}")
        if self.cmvn is None:
            return feats
        spk = self.data.utt2spk.get(utt)
        if spk is None or spk not in self.cmvn:
            raise HdnnError(f"{self.data.cmvn_scp}: no cmvn stats for utterance {utt} (speaker {spk})")
        try:
            return apply_cmvn(feats, self.cmvn[spk], self.norm_vars)
        except HdnnError as e:
            raise HdnnError(f"{self.data.cmvn_scp}: speaker {spk}, utterance {utt}: {e}") from None

    def __call__(self, utt):
        """Network input (T, dim) float32 of `utt`."""
        x = splice(self.normalized(utt), self.splice, self.splice)
        if self.global_cmvn is not None:
            x = self.global_cmvn.apply(x)
        return check_finite(x.astype(np.float32, copy=False), utt, self.data.feats_scp)

    def estimate_global_cmvn(self, max_utts=None):
        """A GlobalCmvn from the spliced, speaker-normalised features of (up to max_utts) utts."""
        utts = self.utts[:max_utts] if max_utts else self.utts
        return GlobalCmvn.from_matrices(splice(self.normalized(u), self.splice, self.splice)
                                        for u in utts)

    def write_feature_transform(self, path):
        write_feature_transform(path, self.input_dim, self.splice, self.global_cmvn)

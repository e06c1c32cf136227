"""MFCC and fbank features, CMVN statistics and delta features, as Kaldi computes them.

Mirrors compute-mfcc-feats / compute-fbank-feats (kaldi-native-fbank, options from a Kaldi
config file such as conf/mfcc.conf), compute-cmvn-stats --spk2utt, apply-cmvn and add-deltas.
Features are written as compressed Kaldi archives, `--nj` jobs in parallel, as
steps/make_mfcc.sh does: <feat-dir>/raw_<kind>_<name>.JOB.{ark,scp} and <data>/feats.scp.
"""
import logging
import zlib
from pathlib import Path

import kaldiio
import numpy as np
from kaldiio.matio import write_array

from hdnn.cli import job_logger
from hdnn.errors import HdnnError, atomic_open, atomic_path, check_writable
from hdnn.gmm.wheels import knf
from hdnn.kaldi.data_dir import read_kaldi_map, split_list, validate_data_dir
from hdnn.kaldi.features import apply_cmvn
from hdnn.kaldi.io import MatrixReader, read_matrices, write_matrices
from hdnn.stamps import claim, make_stamp, write_stamp

# Kaldi option name -> (options group, knf attribute, type), for compute-{mfcc,fbank}-feats.
_FRAME_OPTS = {
    "sample-frequency": ("samp_freq", float), "frame-shift": ("frame_shift_ms", float),
    "frame-length": ("frame_length_ms", float), "dither": ("dither", float),
    "preemphasis-coefficient": ("preemph_coeff", float), "remove-dc-offset": ("remove_dc_offset", "bool"),
    "window-type": ("window_type", str), "round-to-power-of-two": ("round_to_power_of_two", "bool"),
    "blackman-coeff": ("blackman_coeff", float), "snip-edges": ("snip_edges", "bool"),
}
_MEL_OPTS = {"num-mel-bins": ("num_bins", int), "low-freq": ("low_freq", float),
             "high-freq": ("high_freq", float), "vtln-low": ("vtln_low", float),
             "vtln-high": ("vtln_high", float)}
_TOP_OPTS = {
    "mfcc": {"num-ceps": ("num_ceps", int), "use-energy": ("use_energy", "bool"),
             "energy-floor": ("energy_floor", float), "raw-energy": ("raw_energy", "bool"),
             "cepstral-lifter": ("cepstral_lifter", float), "htk-compat": ("htk_compat", "bool")},
    "fbank": {"use-energy": ("use_energy", "bool"), "energy-floor": ("energy_floor", float),
              "raw-energy": ("raw_energy", "bool"), "htk-compat": ("htk_compat", "bool"),
              "use-log-fbank": ("use_log_fbank", "bool"), "use-power": ("use_power", "bool")},
}
# Options the tools accept that do not change the features computed here.
_IGNORED_OPTS = {"verbose", "allow-downsample", "allow-upsample", "channel", "output-format",
                 "min-duration", "subtract-mean", "vtln-warp", "utt2spk", "vtln-map"}
# Kaldi's own defaults where kaldi-native-fbank's differ.
_KALDI_DEFAULTS = {"dither": 1.0}


class FeatureConfig:
    """Options of compute-mfcc-feats / compute-fbank-feats, from a Kaldi config file.

    `kind` is 'mfcc' or 'fbank'. Dither (Kaldi's default 1.0) is added here from a random
    generator seeded by the utterance id, so that features are reproducible.
    """

    def __init__(self, kind, config_file=None, **overrides):
        if kind not in _TOP_OPTS:
            raise HdnnError(f"unknown feature kind {kind!r} (mfcc or fbank)")
        self.kind = kind
        self._args = (kind, config_file, overrides)
        self.opts = knf.MfccOptions() if kind == "mfcc" else knf.FbankOptions()
        self.dither = _KALDI_DEFAULTS["dither"]
        self.opts.frame_opts.dither = 0.0
        items = read_kaldi_config(config_file) if config_file else {}
        items.update({k.replace("_", "-"): str(v) for k, v in overrides.items()})
        for name, value in items.items():
            self._set(name, value, config_file)

    def __reduce__(self):  # knf options do not pickle: rebuild in the worker
        kind, config_file, overrides = self._args
        return (_make_config, (kind, config_file, overrides))

    def _set(self, name, value, source):
        for group, table in ((self.opts.frame_opts, _FRAME_OPTS), (self.opts.mel_opts, _MEL_OPTS),
                             (self.opts, _TOP_OPTS[self.kind])):
            if name in table:
                attr, typ = table[name]
                try:
                    parsed = _parse_bool(value) if typ == "bool" else typ(value)
                except ValueError:
                    raise HdnnError(f"{source}: bad value for --{name}: {value!r}") from None
                if name == "dither":
                    self.dither = parsed
                else:
                    setattr(group, attr, parsed)
                return
        if name not in _IGNORED_OPTS:
            raise HdnnError(f"{source}: option --{name} is not supported for {self.kind} features")

    def describe(self):
        """Every option that shapes the features, as one string (for a stamp)."""
        return f"{self.kind} {' '.join(str(self.opts).split())} dither={self.dither}"

    @property
    def sample_rate(self):
        return int(self.opts.frame_opts.samp_freq)

    @property
    def dim(self):
        if self.kind == "mfcc":
            return self.opts.num_ceps
        return self.opts.mel_opts.num_bins + int(self.opts.use_energy)

    def compute(self, samples, utt=""):
        """Features (T x dim, float32) of int16-scaled samples (1-D array)."""
        samples = np.asarray(samples, dtype=np.float32)
        if self.dither > 0:
            rng = np.random.default_rng(zlib.crc32(utt.encode()))
            samples = samples + self.dither * rng.standard_normal(len(samples), dtype=np.float32)
        extractor = knf.OnlineMfcc(self.opts) if self.kind == "mfcc" else knf.OnlineFbank(self.opts)
        extractor.accept_waveform(self.opts.frame_opts.samp_freq, samples)
        extractor.input_finished()
        n = extractor.num_frames_ready
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([extractor.get_frame(i) for i in range(n)]).astype(np.float32, copy=False)


def _make_config(kind, config_file, overrides):
    return FeatureConfig(kind, config_file, **overrides)


def _parse_bool(value):
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise ValueError(value)


def read_kaldi_config(path):
    """{option: value} of a Kaldi config file: `--name=value` lines, `#` comments."""
    path = Path(path)
    if not path.is_file():
        raise HdnnError(f"{path}: no such config file")
    items = {}
    for num, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if not line.startswith("--"):
            raise HdnnError(f"{path}:{num}: expected --option=value, got {line!r}")
        name, _, value = line[2:].partition("=")
        items[name.replace("_", "-")] = value or "true"
    return items


# ---------------------------------------------------------------- waveforms

class WaveReader:
    """Samples of the utterances of a data dir (wav.scp, with segments when present).

    Reads each recording once for a run of segments from it. Errors name wav.scp, the
    recording and the utterance.
    """

    def __init__(self, data_dir, sample_rate):
        self.data_dir = Path(data_dir)
        self.wav_scp = self.data_dir / "wav.scp"
        self.sample_rate = sample_rate
        self.wavs = read_kaldi_map(self.wav_scp)
        seg_file = self.data_dir / "segments"
        self.segments = ({u: v.split() for u, v in read_kaldi_map(seg_file).items()}
                         if seg_file.exists() else None)
        self._cached = (None, None)

    def utts(self):
        return list(self.segments) if self.segments is not None else list(self.wavs)

    def __call__(self, utt):
        if self.segments is None:
            return self._recording(utt, utt)
        reco, start, end = self.segments[utt]
        samples = self._recording(reco, utt)
        first = int(round(float(start) * self.sample_rate))
        last = len(samples) if float(end) < 0 else int(round(float(end) * self.sample_rate))
        if last > len(samples):
            # extract-segments tolerates a segment that ends a little after its recording.
            if last - len(samples) > 0.1 * self.sample_rate:
                raise HdnnError(f"{self.data_dir / 'segments'}: utterance {utt} ends at {end} s, "
                                f"after the end of recording {reco} ({len(samples) / self.sample_rate:.2f} s)")
            last = len(samples)
        return samples[first:last]

    def _recording(self, reco, utt):
        if self._cached[0] == reco:
            return self._cached[1]
        if reco not in self.wavs:
            raise HdnnError(f"{self.wav_scp}: no recording {reco} (utterance {utt})")
        where = f"{self.wav_scp}: recording {reco} (utterance {utt})"
        try:
            rate, samples = kaldiio.load_mat(self.wavs[reco])
        except FileNotFoundError as e:
            raise HdnnError(f"{where}: no such file {e.filename or self.wavs[reco]}") from None
        except Exception as e:  # soundfile/wave/pipe errors: one line naming the recording
            raise HdnnError(f"{where}: cannot read audio: {type(e).__name__}: {e}") from None
        if rate != self.sample_rate:
            raise HdnnError(f"{where}: sample rate {rate} Hz, expected {self.sample_rate} Hz "
                            "(set --sample-frequency in the config, or resample)")
        if samples.ndim != 1:
            raise HdnnError(f"{where}: {samples.shape[1]} channels; expected mono audio")
        if samples.dtype.kind == "f":
            samples = samples * 32768.0
        self._cached = (reco, samples)
        return samples


# ---------------------------------------------------------------- make_{mfcc,fbank}

def compute_job(data_dir, kind, config_file, utt_list, ark, utt2dur):
    """One parallel job of make_features: features of the utterances listed in `utt_list` into
    `ark` and its .scp (compressed), their durations into `utt2dur`. The job is skipped when
    its archive is complete and was made from the same audio, segments, utterances and options
    (its stamp, .<ark name without .ark>.stamp beside it). Returns the number of utterances."""
    ark = Path(ark)
    scp, stamp_file = ark.with_suffix(".scp"), ark.parent / f".{ark.stem}.stamp"
    config = FeatureConfig(kind, config_file)
    utts = Path(utt_list).read_text().split()
    data_dir = Path(data_dir)
    stamp = make_stamp({"audio": [data_dir / "wav.scp", data_dir / "segments"]},
                       {"features": config.describe(), "utterances": utts})
    if _complete(scp, utts, ark) and Path(utt2dur).exists() and claim(stamp_file, stamp, str(ark)):
        logging.info("%s: complete, made from the same inputs: kept", ark)
        return len(utts)
    reader = WaveReader(data_dir, config.sample_rate)
    durations = []

    def features():
        for utt in utts:
            samples = reader(utt)
            feats = config.compute(samples, utt)
            if len(feats) == 0:
                raise HdnnError(f"{reader.wav_scp}: utterance {utt} is too short for one frame")
            logging.info("%s %d frames", utt, len(feats))
            durations.append(f"{utt} {len(samples) / config.sample_rate:.3f}\n")
            yield utt, feats

    count = write_matrices(f"ark,scp:{ark},{scp}", features(), compress=True)
    with atomic_open(utt2dur) as f:
        f.write("".join(durations))
    write_stamp(stamp_file, stamp)
    logging.info("done %d utterances", count)
    return count


def make_features(data_dir, kind, config_file=None, log_dir=None, feat_dir=None, nj=4, cmd="run.pl",
                  progress=True):
    """Compute features for a data dir like steps/make_{mfcc,fbank}.sh: the utterances split in
    `nj` runs of lines (utils/split_scp.pl) listed in <log_dir>/utts_<kind>_<name>.JOB, the jobs
    (`python -m hdnn.bin.compute_feats`, see compute_job) run through `cmd` (hdnn/jobs.py) with
    logs <log_dir>/make_<kind>_<name>.JOB.log.

    Writes <feat_dir>/raw_<kind>_<name>.JOB.{ark,scp} (compressed), <data>/feats.scp,
    <data>/utt2num_frames, <data>/utt2dur and <data>/conf/<kind>.conf. Returns the number of
    utterances.
    """
    from hdnn import jobs

    data_dir = Path(data_dir)
    log_dir = Path(log_dir) if log_dir else data_dir / "log"
    feat_dir = (Path(feat_dir) if feat_dir else data_dir / "data").absolute()  # the scp files name it
    validate_data_dir(data_dir, no_feats=True, no_text=True)
    config = FeatureConfig(kind, config_file)
    utts = WaveReader(data_dir, config.sample_rate).utts()
    name = data_dir.name
    nj = min(nj, len(utts))
    parts = split_list(utts, nj, data_dir / ("segments" if (data_dir / "segments").exists() else "wav.scp"))
    check_writable(feat_dir, data_dir, log_dir)
    for job, part in enumerate(parts, 1):
        with atomic_open(log_dir / f"utts_{kind}_{name}.{job}") as f:
            f.write("".join(f"{u}\n" for u in part))
    base = feat_dir / f"raw_{kind}_{name}"
    options = [f"--kind={kind}"] + ([f"--config={config_file}"] if config_file else [])
    command = jobs.python_command("hdnn.bin.compute_feats", *options, data_dir,
                                  log_dir / f"utts_{kind}_{name}.JOB", f"{base}.JOB.ark", log_dir / "utt2dur.JOB")
    jobs.run(cmd, nj, log_dir / f"make_{kind}_{name}.JOB.log", command, f"{kind} {name}", progress)
    with atomic_open(data_dir / "feats.scp") as f:
        for job in range(1, nj + 1):
            f.write(Path(f"{base}.{job}.scp").read_text())
    with atomic_open(data_dir / "utt2num_frames") as f:
        for utt, feats in _scp_shapes(data_dir / "feats.scp"):
            f.write(f"{utt} {feats[0]}\n")
    with atomic_open(data_dir / "utt2dur") as f:
        for job in range(1, nj + 1):
            f.write((log_dir / f"utt2dur.{job}").read_text())
    if config_file:
        (data_dir / "conf").mkdir(exist_ok=True)
        with atomic_open(data_dir / "conf" / f"{kind}.conf") as f:
            f.write(Path(config_file).read_text())
    logging.info("%s: %s features for %d utterances in %s", name, kind, len(utts), feat_dir)
    return len(utts)


def _complete(scp, utts, ark):
    """Whether an earlier run wrote this job's archive for exactly these utterances."""
    if not scp.exists() or not ark.exists():
        return False
    keys = [line.split(maxsplit=1)[0] for line in scp.read_text().splitlines()]
    return keys == utts


def _scp_shapes(scp):
    """(utt, shape) for a feats.scp, reading only the headers of the matrices."""
    for utt, mat in kaldiio.load_scp_sequential(str(scp)):
        yield utt, mat.shape


# ---------------------------------------------------------------- CMVN and deltas

def compute_cmvn_stats(data_dir, log_dir=None, cmvn_dir=None):
    """Per-speaker CMVN statistics like steps/compute_cmvn_stats.sh.

    Writes <cmvn_dir>/cmvn_<name>.{ark,scp} (2 x (dim+1) double matrices, Kaldi's layout)
    and <data>/cmvn.scp. Returns the number of speakers.
    """
    data_dir = Path(data_dir)
    log_dir = Path(log_dir) if log_dir else data_dir / "log"
    cmvn_dir = (Path(cmvn_dir) if cmvn_dir else data_dir / "data").absolute()
    validate_data_dir(data_dir, no_text=True, no_wav=True)
    feats = MatrixReader(data_dir / "feats.scp")
    spk2utt = read_kaldi_map(data_dir / "spk2utt", multi=True)
    name = data_dir.name
    logger = job_logger(log_dir / f"cmvn_{name}.log")

    def stats():
        for spk, utts in spk2utt.items():
            total = sum(knf.compute_cmvn_stats(feats[u]) for u in utts)
            logger.info("%s %d utterances, %d frames", spk, len(utts), int(total[0, -1]))
            yield spk, total

    ark, scp = cmvn_dir / f"cmvn_{name}.ark", cmvn_dir / f"cmvn_{name}.scp"
    write_double_matrices(ark, scp, stats())
    with atomic_open(data_dir / "cmvn.scp") as f:
        f.write(scp.read_text())
    return len(spk2utt)


def write_double_matrices(ark, scp, items):
    """Write (key, float64 matrix) pairs to ark + scp atomically (Kaldi's `DM` matrices)."""
    with atomic_path(ark) as ark_tmp, atomic_path(scp) as scp_tmp:
        with open(ark_tmp, "wb") as f, open(scp_tmp, "w") as s:
            for key, mat in items:
                f.write(key.encode() + b" ")
                s.write(f"{key} {ark}:{f.tell()}\n")
                write_array(f, np.asarray(mat, dtype=np.float64))


def read_cmvn(data_dir):
    """{speaker: stats} from <data>/cmvn.scp."""
    path = Path(data_dir) / "cmvn.scp"
    if not path.exists():
        raise HdnnError(f"{path}: no such file (run compute_cmvn_stats first)")
    try:
        return {spk: np.asarray(m, dtype=np.float64) for spk, m in kaldiio.load_scp_sequential(str(path))}
    except Exception as e:
        raise HdnnError(f"{path}: cannot read: {type(e).__name__}: {e}") from None


def iter_cmvn_deltas(data_dir, utts=None, delta_order=2, delta_window=2, norm_vars=False):
    """(utt, features) of a data dir after apply-cmvn --utt2spk and add-deltas.

    The features of steps/train_deltas.sh and steps/decode.sh: per-speaker mean
    normalisation (hdnn.kaldi.features.apply_cmvn, the nnets' too), then deltas and
    delta-deltas (13 MFCC -> 39 dims). An error names the speaker and the utterance when there
    are no statistics or they do not fit.
    """
    data_dir = Path(data_dir)
    cmvn = read_cmvn(data_dir)
    utt2spk = read_kaldi_map(data_dir / "utt2spk")
    delta = knf.DeltaOptions()
    delta.order, delta.window = delta_order, delta_window
    if utts is None:
        source = read_matrices(f"scp:{data_dir / 'feats.scp'}")
    else:  # random access: a few utterances of a large table
        table = MatrixReader(data_dir / "feats.scp")
        source = ((u, table[u]) for u in utts if u in table)
    for utt, feats in source:
        spk = utt2spk.get(utt)
        if spk not in cmvn:
            raise HdnnError(f"{data_dir / 'cmvn.scp'}: no statistics for speaker {spk} of utterance {utt}")
        if cmvn[spk].shape[1] - 1 != feats.shape[1]:
            raise HdnnError(f"{data_dir / 'feats.scp'}: utterance {utt} has features of dim {feats.shape[1]}, "
                            f"but cmvn.scp's statistics of speaker {spk} are of dim {cmvn[spk].shape[1] - 1}")
        feats = apply_cmvn(feats, cmvn[spk], norm_vars)
        yield utt, (knf.compute_deltas(delta, feats) if delta_order > 0 else feats)


__all__ = ["FeatureConfig", "read_kaldi_config", "WaveReader", "make_features", "compute_job",
           "compute_cmvn_stats", "read_cmvn", "iter_cmvn_deltas", "write_double_matrices"]

"""Kaldi data directories: two-column maps, a `DataDir` view, validation and a tr/cv split.

A data dir holds utt2spk, spk2utt and optionally text, wav.scp, segments, feats.scp,
cmvn.scp, reco2file_and_channel, ... (https://kaldi-asr.org/doc/data_prep.html).
`validate_data_dir` applies the checks of Kaldi's utils/validate_data_dir.sh and
`subset_tr_cv` splits by speaker like utils/subset_data_dir_tr_cv.sh.
"""
import random
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path

from hdnn.errors import HdnnError, atomic_dir, atomic_open

# Files keyed by utterance, by speaker and by recording (those keyed by recording are
# keyed by utterance instead when there is no segments file).
PER_UTT_FILES = ("text", "feats.scp", "segments", "utt2dur", "utt2num_frames", "utt2uniq",
                 "utt2lang", "utt2warp", "vad.scp", "text.ctm")
PER_SPK_FILES = ("cmvn.scp", "spk2gender", "spk2warp")
PER_RECO_FILES = ("wav.scp", "reco2file_and_channel", "reco2dur")
COPIED_FILES = ("frame_shift",)
ILLEGAL_WORDS = ("<s>", "</s>", "#0")


def read_kaldi_map(path, multi=False):
    """Read a Kaldi two-column file (`key rest-of-line`) into a dict, in file order.

    With multi=True the rest of the line is split into a list of tokens (spk2utt, text).
    Raises HdnnError naming the file on a missing file, an empty line or a repeated key.
    """
    path = Path(path)
    mapping = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise HdnnError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise HdnnError(f"{path}: cannot read: {e}") from None
    for num, line in enumerate(lines, 1):
        fields = line.split(maxsplit=1)
        if not fields:
            raise HdnnError(f"{path}:{num}: empty line")
        key, rest = fields[0], (fields[1].strip() if len(fields) > 1 else "")
        if key in mapping:
            raise HdnnError(f"{path}:{num}: duplicate key {key}")
        mapping[key] = rest.split() if multi else rest
    return mapping


def write_kaldi_map(path, mapping):
    """Write `key value` lines sorted by key (C locale), atomically; list values are joined."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        for key in sorted(mapping, key=_c_key):
            value = mapping[key]
            if not isinstance(value, str):
                value = " ".join(str(v) for v in value)
            f.write(f"{key} {value}\n" if value else f"{key}\n")


def _c_key(s):
    """Sort key equal to `LC_ALL=C sort`: byte order of the UTF-8 encoding."""
    return s.encode("utf-8")


class DataDir:
    """Read-only view of a Kaldi data dir.

    `utts` is the sorted list of utterances with features (feats.scp) if present,
    else those of utt2spk.
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise HdnnError(f"{self.path}: no such data directory")
        self.utt2spk = read_kaldi_map(self.path / "utt2spk")
        spk2utt_file = self.path / "spk2utt"
        self.spk2utt = (read_kaldi_map(spk2utt_file, multi=True) if spk2utt_file.exists()
                        else utt2spk_to_spk2utt(self.utt2spk))
        text_file = self.path / "text"
        self.text = read_kaldi_map(text_file) if text_file.exists() else None
        self.feats_scp = self._optional("feats.scp")
        self.cmvn_scp = self._optional("cmvn.scp")
        keys = read_kaldi_map(self.feats_scp) if self.feats_scp else self.utt2spk
        self.utts = sorted(keys, key=_c_key)

    def _optional(self, name):
        path = self.path / name
        return path if path.exists() else None

    @property
    def num_utts(self):
        return len(self.utts)

    @property
    def speakers(self):
        return sorted(self.spk2utt, key=_c_key)

    def __repr__(self):
        return f"DataDir({str(self.path)!r}, {self.num_utts} utts, {len(self.spk2utt)} spks)"


def utt2spk_to_spk2utt(utt2spk):
    """Invert utt2spk: {spk: [utts in utt2spk order]}."""
    spk2utt = {}
    for utt, spk in utt2spk.items():
        spk2utt.setdefault(spk, []).append(utt)
    return spk2utt


# ---------------------------------------------------------------- validation

def validate_data_dir(path, no_feats=False, no_text=False, no_wav=False):
    """Check a data dir as Kaldi's utils/validate_data_dir.sh does (speaker-sorted utt2spk).

    The --no-xxx flags only waive the requirement that xxx exists; present files are checked.
    Raises HdnnError with one line naming the file and the first offending line or id.
    """
    d = Path(path)
    if not d.is_dir():
        raise HdnnError(f"{d}: no such data directory")
    for name in ("utt2spk", "spk2utt"):
        if not (d / name).is_file():
            raise HdnnError(f"{d / name}: no such file")
        if (d / name).stat().st_size == 0:
            raise HdnnError(f"{d / name}: empty file")

    utt2spk = _check_sorted_unique(d / "utt2spk", min_fields=2, max_fields=2)
    utt2spk = {k: v[0] for k, v in utt2spk.items()}
    _check_sorted_by_speaker(d / "utt2spk", utt2spk)
    spk2utt = _check_sorted_unique(d / "spk2utt", min_fields=2)
    _check_spk2utt_matches(d, utt2spk, spk2utt)
    utts, speakers = list(utt2spk), list(spk2utt)

    if (d / "text").exists():
        _check_text(d / "text", utts)
    elif not no_text:
        raise HdnnError(f"{d / 'text'}: no such file (this step needs the transcripts)")

    _check_recordings(d, utts, no_wav)

    if (d / "feats.scp").exists():
        _check_same_keys(d / "feats.scp", utts, "utterance", d / "utt2spk")
    elif not no_feats:
        raise HdnnError(f"{d / 'feats.scp'}: no such file (make the features first: make_mfcc.py or make_fbank.py)")
    for name in PER_SPK_FILES:
        if (d / name).exists():
            _check_same_keys(d / name, speakers, "speaker", d / "spk2utt")
    for name in ("utt2dur", "utt2num_frames", "utt2uniq", "utt2lang", "utt2warp", "vad.scp"):
        if (d / name).exists():
            _check_same_keys(d / name, utts, "utterance", d / "utt2spk")
    for name in ("utt2dur", "utt2num_frames"):
        if (d / name).exists():
            _check_positive_numbers(d / name, integer=name == "utt2num_frames")


def _read_rows(path):
    """Lines of `path` split on whitespace, with a clear error on a bad file."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise HdnnError(f"{path}: cannot read: {e.strerror}") from None
    if data and not data.endswith(b"\n"):
        raise HdnnError(f"{path}: last line has no newline")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise HdnnError(f"{path}:{line}: not valid UTF-8") from None
    return text.split("\n")[:-1]


def _check_sorted_unique(path, min_fields=1, max_fields=None):
    """{key: other fields} of a file whose keys must be sorted (C locale) and unique."""
    rows, prev = {}, None
    for num, line in enumerate(_read_rows(path), 1):
        fields = line.split()
        if not fields or len(fields) < min_fields or (max_fields and len(fields) > max_fields):
            raise HdnnError(f"{path}:{num}: bad line {line!r}")
        key = fields[0]
        if prev is not None and _c_key(key) <= _c_key(prev):
            what = "duplicate key" if key == prev else "not sorted (LC_ALL=C) at key"
            raise HdnnError(f"{path}:{num}: {what} {key}")
        rows[key], prev = fields[1:], key
    return rows


def _check_sorted_by_speaker(path, utt2spk):
    pairs = [(_c_key(spk), _c_key(utt)) for utt, spk in utt2spk.items()]
    for num in range(1, len(pairs)):
        if pairs[num] < pairs[num - 1]:
            utt = list(utt2spk)[num]
            raise HdnnError(f"{path}:{num + 1}: not sorted by speaker at {utt} "
                            "(make speaker-ids prefixes of utt-ids)")


def _check_spk2utt_matches(d, utt2spk, spk2utt):
    derived = utt2spk_to_spk2utt(utt2spk)
    for spk, utts in spk2utt.items():
        if derived.get(spk) != utts:
            raise HdnnError(f"{d / 'spk2utt'}: speaker {spk} does not match utt2spk")
    for spk in derived:
        if spk not in spk2utt:
            raise HdnnError(f"{d / 'spk2utt'}: speaker {spk} of utt2spk is missing")


def _check_same_keys(path, expected, what, reference):
    keys = list(_check_sorted_unique(path))
    if keys != expected:
        missing = sorted(set(expected) - set(keys), key=_c_key)
        extra = sorted(set(keys) - set(expected), key=_c_key)
        detail = f"lacks {what} {missing[0]}" if missing else f"has extra {what} {extra[0]}"
        raise HdnnError(f"{path}: {detail} ({len(keys)} vs {len(expected)} in {reference.name})")
    return keys


def _check_text(path, utts):
    for num, line in enumerate(_read_rows(path), 1):
        bad = next((c for c in line if not c.isprintable() and not c.isspace()), None)
        if bad is not None:
            name = unicodedata.name(bad, f"U+{ord(bad):04X}")
            raise HdnnError(f"{path}:{num}: non-printable character {name}")
        words = line.split()[1:]
        for word in ILLEGAL_WORDS:
            if word in words:
                raise HdnnError(f"{path}:{num}: illegal symbol {word} in {line.split()[0]}")
    _check_same_keys(path, utts, "utterance", path.parent / "utt2spk")


def _check_recordings(d, utts, no_wav):
    wav, segments = d / "wav.scp", d / "segments"
    if segments.exists() and not wav.exists():
        raise HdnnError(f"{wav}: no such file, but {segments.name} exists")
    if not wav.exists():
        if not no_wav:
            raise HdnnError(f"{wav}: no such file (if this is by design, use no_wav)")
        return
    wav_rows = _check_sorted_unique(wav, min_fields=2)
    for num, (key, rest) in enumerate(wav_rows.items(), 1):
        if len(rest) == 1 and rest[0].startswith("~"):
            raise HdnnError(f"{wav}:{num}: tilde in path of {key}")
    if segments.exists():
        seg_rows = _check_sorted_unique(segments, min_fields=4, max_fields=4)
        for num, (utt, (reco, start, end)) in enumerate(seg_rows.items(), 1):
            if not _is_number(start) or not _is_number(end) or float(end) <= float(start):
                raise HdnnError(f"{segments}:{num}: bad times for {utt}")
        _check_same_keys(segments, utts, "utterance", d / "utt2spk")
        recordings = sorted({reco for reco, _, _ in seg_rows.values()}, key=_c_key)
        _check_same_keys(wav, recordings, "recording", segments)
    else:
        recordings = _check_same_keys(wav, utts, "utterance", d / "utt2spk")
    r2fc = d / "reco2file_and_channel"
    if r2fc.exists():
        rows = _check_sorted_unique(r2fc, min_fields=3, max_fields=3)
        for num, (reco, (_, channel)) in enumerate(rows.items(), 1):
            if channel not in ("A", "B", "1"):
                raise HdnnError(f"{r2fc}:{num}: channel of {reco} is {channel}, not A or B")
        _check_same_keys(r2fc, recordings, "recording", wav)
    if (d / "reco2dur").exists():
        _check_same_keys(d / "reco2dur", recordings, "recording", wav)
        _check_positive_numbers(d / "reco2dur")


def _check_positive_numbers(path, integer=False):
    for num, line in enumerate(_read_rows(path), 1):
        fields = line.split()
        ok = len(fields) == 2 and _is_number(fields[1]) and float(fields[1]) > 0
        if ok and integer:
            ok = re.fullmatch(r"\d+", fields[1]) is not None
        if not ok:
            raise HdnnError(f"{path}:{num}: bad line {line!r}")


def _is_number(s):
    try:
        float(s)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- subsets

def subset_tr_cv(data_dir, tr_dir, cv_dir, cv_fraction=0.1, seed=777):
    """Split a data dir by speaker into training and held-out (cv) data dirs.

    Like utils/subset_data_dir_tr_cv.sh --cv-spk-percent: the speakers are shuffled with
    `seed` and the first int(cv_fraction * #speakers) go to cv. Returns (tr, cv) DataDirs.
    """
    data = DataDir(data_dir)
    speakers = data.speakers
    random.Random(seed).shuffle(speakers)
    num_cv = int(cv_fraction * len(speakers))
    if num_cv == 0 or num_cv == len(speakers):
        raise HdnnError(f"{data.path}/spk2utt: {len(speakers)} speakers and cv_fraction "
                        f"{cv_fraction} leave an empty {'cv' if num_cv == 0 else 'training'} set")
    subset_data_dir_by_speakers(data.path, tr_dir, speakers[num_cv:])
    subset_data_dir_by_speakers(data.path, cv_dir, speakers[:num_cv])
    return DataDir(tr_dir), DataDir(cv_dir)


def subset_data_dir_by_speakers(data_dir, out_dir, speakers):
    """Copy the part of a data dir spoken by `speakers` (utils/subset_data_dir.sh --spk-list)."""
    utt2spk = read_kaldi_map(Path(data_dir) / "utt2spk")
    keep = set(speakers)
    utts = [u for u, s in utt2spk.items() if s in keep]
    if not utts:
        raise HdnnError(f"{data_dir}/utt2spk: no utterances of the {len(keep)} speakers given")
    subset_data_dir(data_dir, out_dir, utts)


def subset_data_dir(data_dir, out_dir, utts):
    """Copy the part of a data dir made of the utterances `utts` (utils/subset_data_dir.sh
    --utt-list).

    Every per-utterance, per-speaker and per-recording file is filtered. The new dir is
    built beside `out_dir` and renamed onto it, so an interruption leaves no partial dir.
    """
    src, out = Path(data_dir), Path(out_dir)
    utt2spk = read_kaldi_map(src / "utt2spk")
    unknown = [u for u in utts if u not in utt2spk]
    if unknown:
        raise HdnnError(f"{src}/utt2spk: no utterance {unknown[0]} (of the {len(utts)} to keep)")
    keep_utt = set(utts)
    if not keep_utt:
        raise HdnnError(f"{src}: no utterances to keep")
    keep_spk = {utt2spk[u] for u in keep_utt}
    keep_reco = keep_utt
    if (src / "segments").exists():
        segments = read_kaldi_map(src / "segments", multi=True)
        keep_reco = {segments[u][0] for u in keep_utt if u in segments}

    with atomic_dir(out) as tmp:
        _write_filtered(src / "utt2spk", tmp / "utt2spk", keep_utt)
        write_kaldi_map(tmp / "spk2utt", utt2spk_to_spk2utt(read_kaldi_map(tmp / "utt2spk")))
        for name in PER_UTT_FILES:
            _write_filtered(src / name, tmp / name, keep_utt, missing_ok=True)
        for name in PER_SPK_FILES:
            _write_filtered(src / name, tmp / name, keep_spk, missing_ok=True)
        for name in PER_RECO_FILES:
            _write_filtered(src / name, tmp / name, keep_reco, missing_ok=True)
        for name in COPIED_FILES:
            if (src / name).exists():
                shutil.copyfile(src / name, tmp / name)


def _write_filtered(src, dst, keep, missing_ok=False):
    """Copy the lines of `src` whose first field is in `keep`, preserving their order."""
    if not src.exists():
        if missing_ok:
            return
        raise HdnnError(f"{src}: no such file")
    with open(src, encoding="utf-8") as fin, open(dst, "w", encoding="utf-8") as fout:
        for line in fin:
            fields = line.split(maxsplit=1)
            if fields and fields[0] in keep:
                fout.write(line)


def data_dir_inputs(path, text=True):
    """The files whose content a step that reads a data dir's features depends on: utt2spk,
    text (unless ``text`` is False), feats.scp and cmvn.scp and the archives they point into
    (for a stamp, hdnn/stamps.py)."""
    from hdnn.stamps import rspecifier_files

    d = Path(path)
    return [d / "utt2spk", *([d / "text"] if text else []), *rspecifier_files(f"scp:{d / 'feats.scp'}"),
            *rspecifier_files(f"scp:{d / 'cmvn.scp'}")]


# ---------------------------------------------------------------- splits for parallel jobs

def split_speakers(spk_counts, nj, where):
    """utils/split_scp.pl --utt2spk: [(speaker, #utterances)] in utt2spk order into `nj`
    contiguous groups of whole speakers with nearly equal numbers of utterances (its initial
    assignment, then moving boundary speakers while that evens out two neighbours)."""
    if nj < 1:
        raise HdnnError(f"{where}: bad number of jobs {nj}")
    if len(spk_counts) < nj:
        raise HdnnError(f"{where}: cannot split {len(spk_counts)} speakers into {nj} jobs (use a smaller --nj)")
    groups = [[] for _ in range(nj)]
    for i, item in enumerate(spk_counts):
        groups[i * nj // len(spk_counts)].append(item)
    counts = [sum(c for _, c in g) for g in groups]
    changed = True
    while changed:
        changed = False
        for j in range(nj):
            if j < nj - 1 and groups[j]:
                c = groups[j][-1][1]
                if abs((counts[j + 1] + c) - (counts[j] - c)) < abs(counts[j + 1] - counts[j]):
                    groups[j + 1].insert(0, groups[j].pop())
                    counts[j + 1] += c
                    counts[j] -= c
                    changed = True
            if j > 0 and groups[j]:
                c = groups[j][0][1]
                if abs((counts[j] - c) - (counts[j - 1] + c)) < abs(counts[j] - counts[j - 1]):
                    groups[j - 1].append(groups[j].pop(0))
                    counts[j - 1] += c
                    counts[j] -= c
                    changed = True
    return [[s for s, _ in g] for g in groups]


def split_list(items, nj, where):
    """utils/split_scp.pl without --utt2spk: `items` into `nj` contiguous parts, the first
    len(items) % nj of them one longer."""
    if not 1 <= nj <= len(items):
        raise HdnnError(f"{where}: cannot split {len(items)} lines into {nj} jobs (use a smaller --nj)")
    size, extra = divmod(len(items), nj)
    bounds = [j * size + min(j, extra) for j in range(nj + 1)]
    return [items[bounds[j]:bounds[j + 1]] for j in range(nj)]


def split_utts(data_dir, nj, per_utt=False):
    """The utterances of each of `nj` jobs, as utils/split_data.sh splits a data dir: whole
    speakers per job (utils/split_scp.pl --utt2spk), or with ``per_utt`` contiguous runs of
    utt2spk's lines (the first jobs one line longer)."""
    path = Path(data_dir) / "utt2spk"
    utt2spk = read_kaldi_map(path)
    utts = list(utt2spk)
    if per_utt:
        return split_list(utts, nj, path)
    spk2utt = utt2spk_to_spk2utt(utt2spk)
    groups = split_speakers([(s, len(u)) for s, u in spk2utt.items()], nj, path)
    return [[u for s in g for u in spk2utt[s]] for g in groups]


def split_data(data_dir, nj, per_utt=False):
    """utils/split_data.sh: <data>/split<nj>/{1..nj} (split<nj>utt with ``per_utt``), each a data
    dir of its job's utterances. A job dir is rewritten only when its content would change, so
    steps running on an existing split are not disturbed. Returns the split dir."""
    data_dir = Path(data_dir)
    parts = split_utts(data_dir, nj, per_utt)
    split = data_dir / f"split{nj}{'utt' if per_utt else ''}"
    for job, utts in enumerate(parts, 1):
        target = split / str(job)
        with tempfile.TemporaryDirectory(dir=data_dir, prefix=".split.") as tmp:
            fresh = Path(tmp) / "d"
            subset_data_dir(data_dir, fresh, utts)
            if not _same_files(fresh, target):
                subset_data_dir(data_dir, target, utts)
    return split


def _same_files(a, b):
    """Whether dirs a and b hold the same files with the same bytes."""
    if not b.is_dir():
        return False
    names = sorted(p.name for p in a.iterdir())
    if names != sorted(p.name for p in b.iterdir()):
        return False
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)

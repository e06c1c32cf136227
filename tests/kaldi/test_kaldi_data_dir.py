"""Data dirs: maps, DataDir, validate_data_dir (also against Kaldi's script) and subset_tr_cv."""
import subprocess
from pathlib import Path

import pytest

from tests.kaldi.kaldi_data import SPEAKERS, make_data_dir, write_lines
from hdnn.errors import HdnnError
from hdnn.kaldi.binaries import kaldi_env
from hdnn.kaldi.data_dir import DataDir, read_kaldi_map, subset_tr_cv, validate_data_dir, write_kaldi_map


def test_map_round_trip_sorted_in_c_order(tmp_path):
    path = tmp_path / "text"
    write_kaldi_map(path, {"b": "TWO WORDS", "B": ["X", "Y"], "a": ""})
    assert path.read_text() == "B X Y\na\nb TWO WORDS\n"
    assert read_kaldi_map(path) == {"B": "X Y", "a": "", "b": "TWO WORDS"}
    assert read_kaldi_map(path, multi=True)["b"] == ["TWO", "WORDS"]
    assert [p.name for p in tmp_path.iterdir()] == ["text"]


def test_map_errors_name_file_and_line(tmp_path):
    path = tmp_path / "utt2spk"
    write_lines(path, ["u1 s1", "u1 s2"])
    with pytest.raises(HdnnError, match=r"utt2spk:2: duplicate key u1"):
        read_kaldi_map(path)
    with pytest.raises(HdnnError, match="no such file"):
        read_kaldi_map(tmp_path / "missing")


def test_data_dir_view(data_dir):
    d = DataDir(data_dir)
    assert d.num_utts == 2 * len(SPEAKERS) == len(d.utts)
    assert d.utts == sorted(d.utt2spk)
    assert sorted(d.spk2utt) == sorted(SPEAKERS)
    assert all(d.utt2spk[u] == s for s, utts in d.spk2utt.items() for u in utts)
    assert d.text[d.utts[0]].startswith("HELLO")
    assert d.feats_scp == data_dir / "feats.scp" and d.cmvn_scp == data_dir / "cmvn.scp"
    validate_data_dir(data_dir)


def _replace(name, old, new):
    def edit(d):
        text = (d / name).read_text()
        assert old in text
        (d / name).write_text(text.replace(old, new, 1))
    return edit


def _drop_line(name, index):
    def edit(d):
        lines = (d / name).read_text().splitlines(keepends=True)
        del lines[index]
        (d / name).write_text("".join(lines))
    return edit


def _swap_lines(name):
    def edit(d):
        lines = (d / name).read_text().splitlines(keepends=True)
        lines[0], lines[1] = lines[1], lines[0]
        (d / name).write_text("".join(lines))
    return edit


def _duplicate_line(name):
    def edit(d):
        lines = (d / name).read_text().splitlines(keepends=True)
        (d / name).write_text("".join(lines[:1] + lines))
    return edit


def _rename_speaker(d):
    """A speaker id that is not a prefix of its utterance ids breaks the speaker order."""
    new = "ZZZ999"
    lines = [line.split() for line in (d / "utt2spk").read_text().splitlines()]
    write_lines(d / "utt2spk", [f"{u} {new if s == SPEAKERS[0] else s}" for u, s in lines])
    for name in ("spk2utt", "cmvn.scp"):
        lines = [line.split(maxsplit=1) for line in (d / name).read_text().splitlines()]
        lines = sorted([new if k == SPEAKERS[0] else k, rest] for k, rest in lines)
        write_lines(d / name, [f"{k} {rest}" for k, rest in lines])


BROKEN = {
    "no_utt2spk": (lambda d: (d / "utt2spk").unlink(), "utt2spk"),
    "empty_spk2utt": (lambda d: (d / "spk2utt").write_text(""), "spk2utt"),
    "unsorted_utt2spk": (_swap_lines("utt2spk"), "utt2spk"),
    "utt2spk_not_by_speaker": (_rename_speaker, "utt2spk"),
    "spk2utt_mismatch": (_replace("spk2utt", f"{SPEAKERS[1]}_", "XXX_"), "spk2utt"),
    "text_duplicate": (_duplicate_line("text"), "text"),
    "text_missing_utt": (_drop_line("text", 2), "text"),
    "text_illegal_symbol": (_replace("text", "HELLO", "<s>"), "text"),
    "text_non_printable": (_replace("text", "WORLD", "WOR\x07LD"), "text"),
    "no_text": (lambda d: (d / "text").unlink(), "text"),
    "feats_extra_utt": (lambda d: (d / "feats.scp").write_text(
        (d / "feats.scp").read_text() + "ZZZ_extra feats.ark:0\n"), "feats.scp"),
    "feats_no_newline": (lambda d: (d / "feats.scp").write_text((d / "feats.scp").read_text()[:-1]), "feats.scp"),
    "no_feats": (lambda d: (d / "feats.scp").unlink(), "feats.scp"),
    "cmvn_missing_speaker": (_drop_line("cmvn.scp", 1), "cmvn.scp"),
    "segments_bad_times": (_replace("segments", "1.0 2.5", "3.0 2.5"), "segments"),
    "segments_missing_utt": (_drop_line("segments", 0), "segments"),
    "wav_missing_recording": (_drop_line("wav.scp", 0), "wav.scp"),
    "no_wav": (lambda d: (d / "wav.scp").unlink(), "wav.scp"),
    "reco2file_bad_channel": (_replace("reco2file_and_channel", " A\n", " C\n"), "reco2file_and_channel"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_dir_names_the_file(tmp_path, case):
    edit, name = BROKEN[case]
    d = make_data_dir(tmp_path / "data")
    edit(d)
    with pytest.raises(HdnnError) as err:
        validate_data_dir(d)
    message = str(err.value)
    assert f"{d}/{name}" in message and "\n" not in message


def test_no_flags_waive_only_missing_files(tmp_path):
    d = make_data_dir(tmp_path / "data")
    for name in ("feats.scp", "text", "wav.scp", "segments", "reco2file_and_channel"):
        (d / name).unlink()
    validate_data_dir(d, no_feats=True, no_text=True, no_wav=True)


def _kaldi_validates(d, *flags):
    p = subprocess.run(["utils/validate_data_dir.sh", *flags, str(d)], cwd="/opt/kaldi/egs/wsj/s5",
                       env=kaldi_env(), capture_output=True, text=True)
    return "Successfully validated" in p.stdout


@pytest.mark.kaldi
def test_verdicts_agree_with_kaldi_validate_data_dir(kaldi, tmp_path):
    good = make_data_dir(tmp_path / "good")
    assert _kaldi_validates(good)
    for case, (edit, _) in BROKEN.items():
        d = make_data_dir(tmp_path / case)
        edit(d)
        assert not _kaldi_validates(d), f"Kaldi accepts {case}"


def test_subset_tr_cv_splits_by_speaker(tmp_path):
    speakers = [f"S{i:03d}" for i in range(10)]
    src = make_data_dir(tmp_path / "all", speakers=speakers, utts_per_spk=3)
    tr, cv = subset_tr_cv(src, tmp_path / "tr", tmp_path / "cv", cv_fraction=0.2, seed=7)
    validate_data_dir(tr.path)
    validate_data_dir(cv.path)
    assert len(cv.spk2utt) == 2 and len(tr.spk2utt) == 8
    assert not set(tr.spk2utt) & set(cv.spk2utt)
    assert sorted(tr.utts + cv.utts) == DataDir(src).utts
    assert set(cv.text) == set(cv.utts)
    assert len((cv.path / "cmvn.scp").read_text().splitlines()) == 2
    # wav.scp keeps exactly the recordings the kept segments use
    recos = {line.split()[1] for line in (cv.path / "segments").read_text().splitlines()}
    assert set(read_kaldi_map(cv.path / "wav.scp")) == recos
    again = subset_tr_cv(src, tmp_path / "tr2", tmp_path / "cv2", cv_fraction=0.2, seed=7)[1]
    assert again.utts == cv.utts


def test_subset_tr_cv_empty_split_is_an_error(tmp_path):
    src = make_data_dir(tmp_path / "all", speakers=SPEAKERS[:3])
    with pytest.raises(HdnnError, match="empty cv set"):
        subset_tr_cv(src, tmp_path / "tr", tmp_path / "cv", cv_fraction=0.1)
    assert not (tmp_path / "tr").exists() and not (tmp_path / "cv").exists()


def test_validate_step(tmp_path):
    import sys

    step = Path(__file__).resolve().parents[2] / "steps_py" / "validate_data_dir.py"
    d = make_data_dir(tmp_path / "data")
    ok = subprocess.run([sys.executable, str(step), str(d)], capture_output=True, text=True)
    assert ok.returncode == 0 and "8 utterances, 4 speakers" in ok.stdout
    (d / "feats.scp").unlink()
    bad = subprocess.run([sys.executable, str(step), str(d)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1] == \
        f"validate_data_dir.py: error: {d}/feats.scp: no such file (make the features first: make_mfcc.py or make_fbank.py)"
    assert subprocess.run([sys.executable, str(step), "--no-feats", str(d)]).returncode == 0


def _subset_files(d):
    return {p.name: p.read_text() for p in sorted(Path(d).iterdir()) if p.is_file()}


@pytest.mark.kaldi
def test_subset_step_writes_what_kaldis_subset_data_dir_writes(kaldi, tmp_path):
    import sys

    step = Path(__file__).resolve().parents[2] / "steps_py" / "subset_data_dir.py"
    src = make_data_dir(tmp_path / "all", speakers=SPEAKERS, utts_per_spk=3)
    utts = DataDir(src).utts[1:5]
    (tmp_path / "list").write_text("".join(f"{u}\n" for u in utts))
    ours = subprocess.run([sys.executable, str(step), "--utt-list", tmp_path / "list", src, tmp_path / "ours"],
                          capture_output=True, text=True)
    assert ours.returncode == 0, ours.stderr
    p = subprocess.run(["utils/subset_data_dir.sh", "--utt-list", str(tmp_path / "list"), str(src),
                        str(tmp_path / "kaldi")], cwd=Path(kaldi) / "egs/wsj/s5", env=kaldi_env(),
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    kaldi_files = _subset_files(tmp_path / "kaldi")
    ours_files = _subset_files(tmp_path / "ours")
    for name, text in ours_files.items():
        assert kaldi_files.get(name) == text, name
    assert DataDir(tmp_path / "ours").utts == utts
    (tmp_path / "bad").write_text("nobody\n")
    bad = subprocess.run([sys.executable, str(step), "--utt-list", tmp_path / "bad", src, tmp_path / "x"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "no utterance nobody" in bad.stderr and not (tmp_path / "x").exists()

"""The generated corpus: valid Kaldi dirs, honest splits, reference timings, reruns, bad input."""
import collections
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from scipy.io import wavfile

from tests.corpus.conftest import ROOT, make_mini_ami
from hdnn.errors import HdnnError
from hdnn.kaldi.data_dir import DataDir, read_kaldi_map, validate_data_dir
from mini_ami import config, generate, speakers as spk_design

DIRS = [f"{mic}/{split}" for mic in ("ihm", "sdm1") for split in ("train", "dev", "eval")]
CMU_PHONES = set("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH "
                 "UH UW V W Y Z ZH".split())


def read_ctm(path):
    ctm = collections.defaultdict(list)
    for line in open(path):
        utt, chan, start, dur, label = line.split()
        ctm[utt].append((float(start), float(dur), label))
    return ctm


def plan_of(data_root):
    return json.loads((data_root.parent / "corpus" / "corpus.json").read_text())


# ---------------------------------------------------------------- the ci corpus

def test_ci_data_dirs_are_valid(ci_corpus):
    for d in DIRS:
        validate_data_dir(ci_corpus / d, no_feats=True)
        data = DataDir(ci_corpus / d)
        assert data.num_utts > 20
        segments = read_kaldi_map(ci_corpus / d / "segments", multi=True)
        for reco, path in read_kaldi_map(ci_corpus / d / "wav.scp").items():
            sr, audio = wavfile.read(path)
            assert sr == 16000 and audio.dtype == np.int16
        for utt, (reco, start, end) in segments.items():
            assert utt.startswith(data.utt2spk[utt] + "_AMI_") and 0 <= float(start) < float(end)
    minutes = sum(float(e) - float(s) for _, s, e in
                  (v for d in DIRS[:3] for v in read_kaldi_map(ci_corpus / d / "segments", multi=True).values())) / 60
    assert 5 < minutes < 10, minutes  # ~7 min of speech plus segment padding


def test_ci_dict_dir(ci_corpus):
    dict_dir = ci_corpus / "local" / "dict"
    lexicon = (dict_dir / "lexicon.txt").read_text().splitlines()
    assert "<UNK> SPN" in lexicon and len(lexicon) == len(set(lexicon))
    assert lexicon == sorted(lexicon, key=str.encode)
    phones = set((dict_dir / "nonsilence_phones.txt").read_text().split())
    assert phones == CMU_PHONES
    assert {p for line in lexicon[1:] for p in line.split()[1:]} <= phones
    assert (dict_dir / "silence_phones.txt").read_text().split() == ["SIL", "SPN"]
    assert (dict_dir / "optional_silence.txt").read_text().split() == ["SIL"]
    words = {line.split()[0] for line in lexicon}
    train_words = {w for t in read_kaldi_map(ci_corpus / "ihm/train/text").values() for w in t.split()}
    assert train_words <= words


def test_ci_untranscribed_meetings_are_training_speakers_without_transcripts(ci_corpus):
    plan = plan_of(ci_corpus)
    assert plan["config"]["untranscribed"] == 1
    train_spk = set(read_kaldi_map(ci_corpus / "ihm/train/spk2utt"))
    lm = set((ci_corpus / "local" / "lm_train.txt").read_text().splitlines())
    said = {}
    for m in plan["meetings"]:
        if m["split"] == "untranscribed":
            ann = json.loads((ci_corpus.parent / "corpus" / "amicorpus" / m["id"] / f"{m['id']}.json").read_text())
            said.update({u["start_cs"]: u["words"] for u in ann["utterances"]})
    assert len(said) > 20 and set(said.values()) <= lm  # the training text pool, as the training meetings
    for mic in ("ihm", "sdm1"):
        d = ci_corpus / mic / "untranscribed"
        validate_data_dir(d, no_feats=True, no_text=True)
        assert not (d / "text").exists() and not (d / "ref_words.ctm").exists()
        assert set(read_kaldi_map(d / "spk2utt")) <= train_spk
        recos = {r.split("_")[1] for r in read_kaldi_map(d / "wav.scp")}
        assert recos == {m["id"] for m in plan["meetings"] if m["split"] == "untranscribed"}
        assert len(recos) == plan["config"]["untranscribed"] * sum(m["split"] == "train" for m in plan["meetings"])
        assert not recos & set(read_kaldi_map(ci_corpus / mic / "train/wav.scp"))


def test_ihm_and_sdm_segments_are_parallel(ci_corpus):
    """Same ids up to the channel, same times: SDM models can use headset alignments."""
    from mini_ami import data_prep

    for split in ("train", "dev", "eval", "untranscribed"):
        ihm = read_kaldi_map(ci_corpus / f"ihm/{split}/segments", multi=True)
        sdm = read_kaldi_map(ci_corpus / f"sdm1/{split}/segments", multi=True)
        as_sdm = {re.sub(r"_H0\d_", "_SDM_", u): v[1:] for u, v in ihm.items()}
        assert as_sdm == {u: v[1:] for u, v in sdm.items()}, split
    plan, annotations = data_prep.load_corpus(ci_corpus.parent / "corpus")
    rows = {mic: data_prep.utterances(ci_corpus.parent / "corpus", plan, annotations, mic, "dev")
            for mic in data_prep.MICS}
    rows["sdm1"][3]["end"] += 0.01
    with pytest.raises(HdnnError, match=f"dev: utterances {rows['ihm'][3]['utt']} and .* cover different times"):
        data_prep.check_parallel(rows, "dev")
    del rows["sdm1"][3]
    with pytest.raises(HdnnError, match=f"dev: utterance {rows['ihm'][3]['utt']} has no parallel utterance"):
        data_prep.check_parallel(rows, "dev")


def test_untranscribed_meetings_leave_the_others_unchanged():
    base = generate.plan_corpus(config.CorpusConfig(size="demo", untranscribed=0))
    plan = generate.plan_corpus(config.CorpusConfig(size="demo"))
    assert plan["speakers"] == base["speakers"]
    assert plan["meetings"][:len(base["meetings"])] == base["meetings"]
    extra = plan["meetings"][len(base["meetings"]):]
    assert len(extra) == 4 * 16 and len({m["id"] for m in plan["meetings"]}) == len(plan["meetings"])
    # in the order of their ids, every team meets in turn (a prefix is a balanced subset)
    assert [m["id"] for m in extra] == sorted(m["id"] for m in extra)
    assert len({m["speakers"][0] for m in extra[:10]}) == 10
    teams = {tuple(m["speakers"]) for m in base["meetings"] if m["split"] == "train"}
    assert {m["split"] for m in extra} == {"untranscribed"} and {tuple(m["speakers"]) for m in extra} == teams
    with pytest.raises(HdnnError, match="untranscribed must be a whole number"):
        config.CorpusConfig(size="ci", untranscribed=-1)


@pytest.mark.kaldi
def test_ci_passes_kaldis_validators(ci_corpus, kaldi):
    utils = kaldi / "egs" / "wsj" / "s5" / "utils"
    env = dict(os.environ, LC_ALL="C", PATH=f"{utils}:{os.environ['PATH']}")
    for d in DIRS + ["ihm/untranscribed", "sdm1/untranscribed"]:
        no_text = ["--no-text"] if d.endswith("untranscribed") else []
        p = subprocess.run([str(utils / "validate_data_dir.sh"), "--no-feats", *no_text, str(ci_corpus / d)],
                           cwd=utils.parent, env=env, capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run([str(utils / "validate_dict_dir.pl"), str(ci_corpus / "local" / "dict")],
                       cwd=utils.parent, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_splits_have_disjoint_speakers_and_held_out_voices(ci_corpus):
    spk = {s: set(read_kaldi_map(ci_corpus / f"ihm/{s}/spk2utt")) for s in ("train", "dev", "eval")}
    assert not (spk["train"] & spk["dev"]) and not (spk["train"] & spk["eval"]) and not (spk["dev"] & spk["eval"])
    for mic in ("ihm", "sdm1"):
        for s in spk:
            assert set(read_kaldi_map(ci_corpus / f"{mic}/{s}/spk2utt")) == spk[s]
    plan = plan_of(ci_corpus)
    voices = {s: {x["base_voice"] for x in plan["speakers"][s]} for s in spk}
    held = plan["config"]["holdout_voices"]
    assert not voices["train"] & (voices["dev"] | voices["eval"])
    assert all(any(fnmatch.fnmatchcase(v, p) for p in held) for v in voices["dev"] | voices["eval"])
    assert not any(fnmatch.fnmatchcase(v, p) for v in voices["train"] for p in held)


def test_dev_eval_sentences_are_not_in_lm_text(ci_corpus):
    lm = set((ci_corpus / "local" / "lm_train.txt").read_text().splitlines())
    assert len(lm) > 10000
    train = set(read_kaldi_map(ci_corpus / "ihm/train/text").values())
    assert train <= lm
    for s in ("dev", "eval"):
        assert not set(read_kaldi_map(ci_corpus / f"ihm/{s}/text").values()) & lm


def test_oov_counts(ci_corpus):
    words = {line.split()[0] for line in (ci_corpus / "local/dict/lexicon.txt").read_text().splitlines()}
    counted = {}
    for line in (ci_corpus / "local" / "oov_counts.txt").read_text().splitlines():
        split, n, w = line.split()
        counted[split, w] = int(n)
    for s in ("train", "dev", "eval"):
        oov = collections.Counter(w for t in read_kaldi_map(ci_corpus / f"ihm/{s}/text").values()
                                  for w in t.split() if w not in words)
        assert {w: n for (split, w), n in counted.items() if split == s} == dict(oov)


def test_reference_ctms_fit_the_segments(ci_corpus):
    plan = plan_of(ci_corpus)
    espeak_speakers = {x["id"] for v in plan["speakers"].values() for x in v if x["engine"] == "espeak"}
    for d in DIRS:
        segments = read_kaldi_map(ci_corpus / d / "segments", multi=True)
        text = read_kaldi_map(ci_corpus / d / "text")
        utt2spk = read_kaldi_map(ci_corpus / d / "utt2spk")
        phones, words = read_ctm(ci_corpus / d / "ref_phones.ctm"), read_ctm(ci_corpus / d / "ref_words.ctm")
        assert set(phones) == set(words) == {u for u in segments if utt2spk[u] in espeak_speakers}
        labels = collections.Counter(p for ph in phones.values() for _, _, p in ph)
        assert sum(n for p, n in labels.items() if p in CMU_PHONES) > 0.99 * sum(labels.values())
        for utt, ph in phones.items():
            length = float(segments[utt][2]) - float(segments[utt][1])
            starts = [s for s, _, _ in ph]
            assert starts == sorted(starts) and all(dur > 0 for _, dur, _ in ph)
            assert 0.1 < ph[0][0] and ph[-1][0] + ph[-1][1] < length - 0.1  # the padding
            spoken = [w for _, _, w in words[utt]]
            it = iter(text[utt].split())
            assert all(w in it for w in spoken) and len(spoken) >= 0.9 * len(text[utt].split())


def test_reference_timings_match_the_audio(ci_corpus):
    """The speech/silence pattern of the phone CTM lines up with the headset audio's energy."""
    segments = read_kaldi_map(ci_corpus / "ihm/train/segments", multi=True)
    wavs = read_kaldi_map(ci_corpus / "ihm/train/wav.scp")
    lags = []
    for utt, ph in list(read_ctm(ci_corpus / "ihm/train/ref_phones.ctm").items())[:30]:
        reco, start, end = segments[utt]
        x = wavfile.read(wavs[reco])[1][int(float(start) * 16000):int(float(end) * 16000)].astype(float)
        energy = 10 * np.log10(np.mean(x[: len(x) // 160 * 160].reshape(-1, 160) ** 2, axis=1) + 1)
        mask = np.zeros(len(energy))
        for s, d, _ in ph:
            mask[int(round(s * 100)):int(round((s + d) * 100))] = 1
        corr = [np.dot(np.roll(mask, lag), energy - energy.mean()) for lag in range(-20, 21)]
        lags.append(int(np.argmax(corr)) - 20)
    assert np.median(np.abs(lags)) <= 2, lags  # within 20 ms


# ---------------------------------------------------------------- plans (speakers and meetings, no audio)

@pytest.mark.parametrize("size", sorted(config.SIZES))
def test_every_planned_speaker_talks_in_a_meeting(size):
    plan = generate.plan_corpus(config.CorpusConfig(size=size))
    for split, speakers in plan["speakers"].items():
        talking = {s for m in plan["meetings"] if m["split"] == split for s in m["speakers"]}
        assert talking == {s["id"] for s in speakers}, split


def test_demo_test_sets_use_varied_held_out_voices():
    cfg = config.CorpusConfig(size="demo")
    pools = spk_design.voice_pools(cfg)
    train_pool = {v for vs in pools["train"].values() for v in vs}
    plan = generate.plan_corpus(cfg)
    for split in ("dev", "eval"):
        held_pool = {v for vs in pools[split].values() for v in vs}
        assert not held_pool & train_pool and len(pools[split]["flite"]) >= 2
        voices = collections.Counter(s["base_voice"] for s in plan["speakers"][split])
        assert set(voices) <= held_pool
        assert len([v for v in voices if v.startswith("flite:")]) >= 2, voices
        accents = {v.split(":")[1].split("+")[0] for v in voices if v.startswith("espeak:")}
        assert len(accents) >= 2 and len(voices) >= 0.75 * sum(voices.values()), voices


# ---------------------------------------------------------------- reruns

def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and "log" not in p.parts}


def test_same_seed_gives_identical_bytes(tiny_corpus, tmp_path):
    corpus, data = tiny_corpus
    make_mini_ami("--size", "tiny", "--seed", "3", "--nj", "1", tmp_path / "corpus", tmp_path / "data")
    assert _files(corpus) == _files(tmp_path / "corpus")
    ours = {k: v.replace(str(tmp_path).encode(), str(corpus.parent).encode()) for k, v in _files(tmp_path / "data").items()}
    assert ours == _files(data)


def test_resume_regenerates_only_missing_meetings_and_skips_complete(tiny_corpus, tmp_path):
    corpus, data = tiny_corpus
    shutil.copytree(corpus, tmp_path / "corpus")
    before = _files(tmp_path / "corpus")
    meeting = tmp_path / "corpus" / "amicorpus" / "IS1001a"
    shutil.rmtree(meeting)                                   # an interrupted run: one meeting missing,
    (tmp_path / "corpus" / "corpus.done").unlink()           # no completion marker,
    (tmp_path / "corpus" / "amicorpus" / ".IS1001a.tmp99").mkdir()  # a half-written temp dir
    p = make_mini_ami("--size", "tiny", "--seed", "3", tmp_path / "corpus", tmp_path / "data")
    assert "generating 1 of 4 meetings" in p.stderr
    assert _files(tmp_path / "corpus") == before
    p = make_mini_ami("--size", "tiny", "--seed", "3", tmp_path / "corpus", tmp_path / "data")
    assert "nothing to generate" in p.stderr and "nothing to do" in p.stderr


def test_refuses_a_different_corpus_unless_overwrite(tiny_corpus, tmp_path):
    corpus, _ = tiny_corpus
    shutil.copytree(corpus, tmp_path / "corpus")
    p = make_mini_ami("--size", "tiny", "--seed", "4", tmp_path / "corpus", tmp_path / "data", check=False)
    assert p.returncode == 1
    assert "holds a different corpus" in p.stderr and str(tmp_path / "corpus") in p.stderr
    assert len(p.stderr.strip().splitlines()[-1:]) == 1 and "Traceback" not in p.stderr
    make_mini_ami("--size", "tiny", "--seed", "4", "--overwrite", tmp_path / "corpus", tmp_path / "data")
    assert json.loads((tmp_path / "corpus" / "corpus.json").read_text())["config"]["seed"] == 4


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("args, message", [
    (["--engines", "festival=1"], "unknown engine 'festival'"),
    (["--voices", "espeak:en-xx+m3,flite:slt"], "espeak-ng has no voice 'en-xx+m3'"),
    (["--voices", "flite:bob"], "flite has no voice 'bob'"),
    (["--rt60", "0.7,0.2"], "rt60_s: the range 0.7,0.2 is empty"),
])
def test_bad_knobs_give_one_clear_line(tmp_path, args, message):
    p = make_mini_ami("--size", "tiny", *args, tmp_path / "c", tmp_path / "d", check=False)
    assert p.returncode == 1 and message in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "c" / "amicorpus").exists()


def test_headset_channel_by_size():
    """demo and large have noisy headsets (sequence training needs errors to learn from), the test
    sizes clean ones; a knob set to the other size's value wins and is what the corpus stores."""
    assert config.CorpusConfig(size="demo").ihm_snr_db == (10.0, 20.0)
    assert config.CorpusConfig(size="large").crosstalk_db == (-20.0, -10.0)
    assert config.CorpusConfig(size="ci").ihm_snr_db == (30.0, 40.0)
    cfg = config.CorpusConfig(size="demo", ihm_snr_db=(30, 40), crosstalk_db=[-30, -20])
    assert json.loads(cfg.to_json())["ihm_snr_db"] == [30.0, 40.0] and cfg.crosstalk_db == (-30.0, -20.0)


def test_bad_config_file(tmp_path):
    (tmp_path / "knobs.json").write_text('{"rt60": [0.3, 0.5]}')
    p = make_mini_ami("--config", tmp_path / "knobs.json", tmp_path / "c", tmp_path / "d", check=False)
    assert p.returncode == 1 and "unknown corpus knob(s) rt60" in p.stderr


def test_missing_debian_package_names_it(tmp_path):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))  # no /usr/bin: flite is not found
    p = make_mini_ami("--size", "tiny", tmp_path / "c", tmp_path / "d", check=False, env=env)
    assert p.returncode == 1 and "sudo apt-get install flite" in p.stderr


# ---------------------------------------------------------------- real AMI path

def test_ami_data_prep_usage_and_argument_errors(tmp_path):
    script = str(ROOT / "local" / "ami_data_prep.sh")
    p = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "Usage: local/ami_data_prep.sh <AMI-dir> <mic> <data-root>" in p.stdout
    assert subprocess.run([script, "only-one"], capture_output=True, text=True).returncode == 1
    env = dict(os.environ, KALDI_ROOT=str(tmp_path))
    p = subprocess.run([script, str(tmp_path), "ihm", str(tmp_path / "d")], capture_output=True, text=True, env=env)
    assert p.returncode == 1 and "set KALDI_ROOT to a Kaldi checkout with egs/ami/s5b" in p.stderr
    (tmp_path / "egs/ami/s5b/local").mkdir(parents=True)
    (tmp_path / "egs/ami/s5b/local/ami_ihm_data_prep.sh").touch()
    p = subprocess.run([script, str(tmp_path), "mdm8", str(tmp_path / "d")], capture_output=True, text=True, env=env)
    assert p.returncode == 1 and "mic must be ihm or sdm1" in p.stderr


def test_prepare_dict_for_existing_data_dirs(ci_corpus, tmp_path):
    p = subprocess.run([sys.executable, str(ROOT / "local" / "prepare_dict.py"), str(tmp_path),
                        str(ci_corpus / "ihm" / "train")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    lexicon = (tmp_path / "local/dict/lexicon.txt").read_text().splitlines()
    train_words = {w for t in read_kaldi_map(ci_corpus / "ihm/train/text").values() for w in t.split()}
    assert {line.split()[0] for line in lexicon} == train_words | {"<UNK>"}
    assert (tmp_path / "local/lm_train.txt").read_text().splitlines() == sorted(
        set(read_kaldi_map(ci_corpus / "ihm/train/text").values()), key=str.encode)

"""Generation half: synthesise a corpus of meetings into <corpus-dir>, like downloading AMI.

Layout:
  corpus.json                      the generation parameters, speakers and meeting list
  corpus.done                      completion marker (the parameters again)
  text/<split>.<source>.txt        the sentence pools of each split (LM text comes from train)
  amicorpus/<mid>/audio/<mid>.Headset-<k>.wav, <mid>.Array1-01.wav   16 kHz 16-bit audio
  amicorpus/<mid>/<mid>.json       the transcript: segments, words, reference phone/word times

Each meeting is written into a temporary directory and renamed into place, so an interrupted
run leaves only complete meetings, and a rerun generates just the missing ones.
"""
import json
import logging
import math
import multiprocessing
import os
import shutil
import string
from pathlib import Path

import numpy as np
from scipy.fft import next_fast_len
from scipy.io import wavfile
from tqdm import tqdm

from hdnn.errors import HdnnError, atomic_open
from mini_ami import acoustics, lexicon, speakers as spk, text

CORPUS_JSON, DONE = "corpus.json", "corpus.done"
MEETING_PREFIX = {"train": "ES2", "dev": "IS1", "eval": "TS3", "untranscribed": "EN2"}
UNTRANSCRIBED = "untranscribed"   # the split of the meetings without transcripts in the data dirs
TEXT_SPLIT = {UNTRANSCRIBED: "train"}  # whose text pool a split's meetings draw from
TALKERS = 4
PAD_S = 0.15          # segment padding around the speech
SAME_TALKER_GAP_S = 0.3
LEAD_IN_S, TAIL_S = 0.5, 1.0


def plan_corpus(cfg):
    """Speakers per split and meetings (AMI-style: a team of 4 has sessions a, b, c, ...)."""
    rng = np.random.default_rng([cfg.seed, 0])
    speakers = spk.design_speakers(cfg, rng)
    meetings = []
    # untranscribed meetings come last, so that adding them changes no other meeting (their seeds
    # follow the meeting's index); the training teams meet again, in other sessions
    counts = [(split, split, cfg.meetings[split]) for split in text.SPLITS]
    for split, spk_split, count in counts + [(UNTRANSCRIBED, "train", cfg.untranscribed_meetings)]:
        teams = [speakers[spk_split][i:i + TALKERS] for i in range(0, len(speakers[spk_split]), TALKERS)]
        for m in range(count):
            team, session = m % len(teams), m // len(teams)
            # untranscribed: the session number before the team letter, so that the first N meetings
            # in the order of their ids are N meetings of all teams in turn (the recipe takes a prefix)
            mid = (f"{team + 1:03d}{_letters(session)}" if split != UNTRANSCRIBED
                   else f"{session + 1:03d}{_letters(team)}")
            meetings.append({"id": MEETING_PREFIX[split] + mid, "split": split,
                             "speakers": [s["id"] for s in teams[team]]})
    return {"config": json.loads(cfg.to_json()), "speakers": speakers, "meetings": meetings}


def _letters(n):
    """a, b, ..., z, then aa, ab, ... (AMI's session letters)"""
    letters = string.ascii_lowercase
    return letters[n] if n < len(letters) else _letters(n // len(letters) - 1) + letters[n % len(letters)]


# ---------------------------------------------------------------- one meeting

def converse(talkers, pools, cfg, rng, target_s):
    """Turns until target_s seconds of speech: [(channel, start s, audio, phones, words, source)]."""
    k = len(talkers)
    weights = rng.dirichlet(np.full(k, 4.0))
    sources = [s for s in sorted(cfg.text_mix) if cfg.text_mix[s] > 0 and pools.get(s)]
    if not sources:
        raise HdnnError(f"no sentences for text mix {cfg.text_mix}")
    mix = np.array([cfg.text_mix[s] for s in sources], float)
    mix /= mix.sum()
    backchannels = pools.get(text.BACKCHANNEL, [])
    free = np.zeros(k)
    clock, speech, prev, utts = LEAD_IN_S, 0.0, -1, []

    def say(ch, start, source):
        words = pools[source][rng.integers(len(pools[source]))].split()
        audio, phones = spk.speak(talkers[ch], words, rng)
        utts.append((ch, start, audio, phones, words, source))
        free[ch] = start + len(audio) / spk.SAMPLE_RATE
        return len(audio) / spk.SAMPLE_RATE

    while speech < target_s:
        ch = int(rng.choice(k, p=weights))
        if ch == prev:
            ch = int(rng.choice(k, p=weights))
        gap = float(np.clip(rng.normal(cfg.gap_mean_s, cfg.gap_std_s), *cfg.gap_range_s))
        start = max(clock + gap, free[ch] + SAME_TALKER_GAP_S, LEAD_IN_S)
        dur = say(ch, start, sources[rng.choice(len(sources), p=mix)])
        speech += dur
        clock, prev = start + dur, ch
        if backchannels and rng.random() < cfg.backchannel_prob:
            listener = int(rng.choice([j for j in range(k) if j != ch]))
            at = start + rng.uniform(0.3, 0.9) * dur
            if at >= free[listener] + SAME_TALKER_GAP_S:
                speech += say(listener, at, text.BACKCHANNEL)
    return utts


def _segment(start, dur, n_samples):
    """Centisecond segment bounds around speech at [start, start + dur)."""
    last = n_samples * 100 // spk.SAMPLE_RATE
    return max(0, math.floor((start - PAD_S) * 100)), min(last, math.ceil((start + dur + PAD_S) * 100))


def _timed(phones, words, offset):
    """Phone and word intervals in meeting time (3 decimals)."""
    ph = [[round(s + offset, 3), round(e + offset, 3), p] for s, e, p, _ in phones]
    by_word = {}
    for s, e, _, w in phones:
        lo, hi = by_word.get(w, (s, e))
        by_word[w] = (min(lo, s), max(hi, e))
    wd = [[round(by_word[w][0] + offset, 3), round(by_word[w][1] + offset, 3), words[w]] for w in sorted(by_word)]
    return ph, wd


def render_meeting(meeting, talkers, pools, cfg, rng):
    """Audio channels and the transcript record of one meeting."""
    utts = converse(talkers, pools, cfg, rng, cfg.speech_per_meeting_s)
    end = max(start + len(audio) / spk.SAMPLE_RATE for _, start, audio, *_ in utts)
    n = next_fast_len(int((end + TAIL_S) * spk.SAMPLE_RATE))
    tracks = np.zeros((len(talkers), n))
    active = np.zeros(n, bool)
    records = []
    for ch, start, audio, phones, words, source in sorted(utts, key=lambda u: (u[1], u[0])):
        s0 = int(round(start * spk.SAMPLE_RATE))
        tracks[ch, s0:s0 + len(audio)] += audio
        active[s0:s0 + len(audio)] = True
        t0 = s0 / spk.SAMPLE_RATE
        dur = len(audio) / spk.SAMPLE_RATE
        seg = _segment(t0, dur, n)
        rec = {"channel": ch, "speaker": talkers[ch]["id"], "start_cs": seg[0], "end_cs": seg[1],
               "speech": [round(t0, 3), round(t0 + dur, 3)], "words": " ".join(words), "source": source}
        if phones is not None:
            phones = [(max(s, 0.0), min(e, dur), p, w) for s, e, p, w in phones if min(e, dur) > max(s, 0.0)]
            rec["phones"], rec["word_times"] = _timed(phones, words, t0)
        records.append(rec)
    levels = [t["level_db"] for t in talkers]
    ihm, ihm_info = acoustics.ihm_channels(tracks, levels, rng, cfg)
    sdm, sdm_info = acoustics.sdm_channel(tracks, active, rng, cfg)
    annotation = {"meeting": meeting["id"], "split": meeting["split"], "duration_s": round(n / spk.SAMPLE_RATE, 3),
                  "speakers": [t["id"] for t in talkers], "ihm": ihm_info, "sdm": sdm_info,
                  "utterances": records}
    return ihm, sdm, annotation


def _int16(x):
    return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)


def write_meeting(corpus_dir, meeting, ihm, sdm, annotation):
    """Write a meeting's audio and transcript into a temporary dir, then rename it into place."""
    mid = meeting["id"]
    final = corpus_dir / "amicorpus" / mid
    tmp = corpus_dir / "amicorpus" / f".{mid}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "audio").mkdir(parents=True)
    for k, channel in enumerate(ihm):
        wavfile.write(tmp / "audio" / f"{mid}.Headset-{k}.wav", spk.SAMPLE_RATE, _int16(channel))
    wavfile.write(tmp / "audio" / f"{mid}.Array1-01.wav", spk.SAMPLE_RATE, _int16(sdm))
    (tmp / f"{mid}.json").write_text(json.dumps(annotation, sort_keys=True, indent=1) + "\n")
    os.rename(tmp, final)


_WORKER = {}  # set before forking the worker pool: corpus dir, config, plan, text pools


def make_meeting(index):
    """Worker: render and write meeting number `index` of the plan."""
    w = _WORKER
    meeting = w["plan"]["meetings"][index]
    talkers = [w["speakers"][s] for s in meeting["speakers"]]
    rng = np.random.default_rng([w["cfg"].seed, 1, index])
    ihm, sdm, annotation = render_meeting(meeting, talkers, w["pools"][TEXT_SPLIT.get(meeting["split"], meeting["split"])], w["cfg"], rng)
    write_meeting(w["corpus_dir"], meeting, ihm, sdm, annotation)
    return meeting["id"]


# ---------------------------------------------------------------- the corpus

def _owned(corpus_dir):
    return [corpus_dir / n for n in (CORPUS_JSON, DONE, "text", "amicorpus", "log")]


def check_corpus_dir(corpus_dir, plan, overwrite):
    """Refuse a dir that holds something else, unless overwrite (then clear what we own)."""
    stored = None
    if (corpus_dir / CORPUS_JSON).exists():
        stored = json.loads((corpus_dir / CORPUS_JSON).read_text())["config"]
    elif corpus_dir.exists() and any(p.name != "log" for p in corpus_dir.iterdir()):
        stored = "not a mini-AMI corpus"
    if stored is None or stored == plan["config"]:
        return
    if not overwrite:
        what = stored if isinstance(stored, str) else f"size {stored['size']}, seed {stored['seed']}, other knobs"
        raise HdnnError(f"{corpus_dir} holds a different corpus ({what}): "
                        f"remove it or pass --overwrite to replace it")
    logging.info("--overwrite: replacing the corpus in %s", corpus_dir)
    for path in _owned(corpus_dir):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def load_pools(corpus_dir):
    """The text pools of each split: built from the sources once, then read from text/."""
    tdir = corpus_dir / "text"
    sources = text.SOURCES + (text.BACKCHANNEL,)
    paths = {(s, src): tdir / f"{s}.{src}.txt" for s in text.SPLITS for src in sources}
    if not all(p.exists() for p in paths.values()):
        vocab = set(lexicon.cmudict_lexicon())
        pools = text.build_pools(vocab, sources)
        for (s, src), path in paths.items():
            with atomic_open(path) as f:
                f.write("".join(line + "\n" for line in pools[s][src]))
    return {s: {src: paths[s, src].read_text().splitlines() for src in sources} for s in text.SPLITS}


def generate(corpus_dir, cfg, nj=2, overwrite=False):
    """Generate (or complete) the corpus in corpus_dir; returns the plan."""
    corpus_dir = Path(corpus_dir).resolve()
    plan = plan_corpus(cfg)
    check_corpus_dir(corpus_dir, plan, overwrite)
    params = json.dumps(plan["config"], sort_keys=True)
    done = corpus_dir / DONE
    if done.exists() and done.read_text().strip() == params:
        logging.info("%s is complete (%d meetings): nothing to generate", corpus_dir, len(plan["meetings"]))
        return plan
    (corpus_dir / "amicorpus").mkdir(parents=True, exist_ok=True)
    with atomic_open(corpus_dir / CORPUS_JSON) as f:
        f.write(json.dumps(plan, sort_keys=True, indent=1) + "\n")
    for stale in (corpus_dir / "amicorpus").glob(".*.tmp*"):
        shutil.rmtree(stale, ignore_errors=True)
    todo = [i for i, m in enumerate(plan["meetings"]) if not (corpus_dir / "amicorpus" / m["id"]).exists()]
    logging.info("generating %d of %d meetings into %s with %d jobs",
                 len(todo), len(plan["meetings"]), corpus_dir, nj)
    _WORKER.update(corpus_dir=corpus_dir, cfg=cfg, plan=plan, pools=load_pools(corpus_dir),
                   speakers={s["id"]: s for split in plan["speakers"].values() for s in split})
    lexicon.cmudict_lexicon()  # loaded once here, shared by the forked workers
    # One fresh process per meeting: libespeak-ng carries state from one utterance to the next
    # (its output for the same input drifts), so a meeting is reproducible only when its
    # synthesis starts from a freshly initialised library, whatever the scheduling.
    with multiprocessing.get_context("fork").Pool(max(1, min(nj, len(todo))), maxtasksperchild=1) as pool:
        for _ in tqdm(pool.imap_unordered(make_meeting, todo), total=len(todo), desc="meetings", unit="mtg",
                      disable=None):
            pass
    with atomic_open(done) as f:
        f.write(params + "\n")
    return plan

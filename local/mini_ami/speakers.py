"""Speakers: design (engine, base voice, rate, pitch, vocal-tract warp, level) and speech.

A base voice is `espeak:<accent>+<variant>` or `flite:<voice>`. Base voices matching the
config's holdout patterns are used only by dev/eval speakers, so those voices are unseen in
training. The vocal-tract warp alpha works like VTLP: audio synthesised at sample rate sr is
read as if it had rate sr*alpha and resampled to 16 kHz, which scales formants and F0 by
alpha; the synthesis rate is pre-scaled so the speaking rate stays as designed.
"""
import fnmatch
from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

from hdnn.errors import HdnnError
from mini_ami import lexicon
from mini_ami import phones as phone_map
from mini_ami import synth

SAMPLE_RATE = 16000
ESPEAK_ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                  "en-029", "en-us-nyc")
ESPEAK_VARIANTS = {
    "M": ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "adam", "david", "edward", "john", "max",
          "Michael", "paul", "robert", "Andy", "travis", "Lee", "Hugo", "klatt", "klatt2", "klatt3"),
    "F": ("f1", "f2", "f3", "f4", "f5", "linda", "steph", "Annie", "belinda", "aunty", "anika", "Andrea",
          "Alicia", "klatt4"),
}
FLITE_VOICES = {"kal16": "M", "awb": "M", "rms": "M", "slt": "F"}
ENGINES = ("espeak", "flite")
WARP = {"M": (0.90, 1.06), "F": (0.96, 1.12)}


def known_base_voices():
    """{base voice: sex} of every voice the generator knows."""
    voices = {f"espeak:{a}+{v}": sex for a in ESPEAK_ACCENTS for sex, vs in ESPEAK_VARIANTS.items() for v in vs}
    voices.update({f"flite:{v}": sex for v, sex in FLITE_VOICES.items()})
    return voices


def check_base_voice(name):
    """Raise a clear error for an unknown engine or voice; returns (engine, voice)."""
    engine, _, voice = name.partition(":")
    if engine not in ENGINES:
        raise HdnnError(f"unknown engine {engine!r} in voice {name!r} (known engines: {', '.join(ENGINES)})")
    if engine == "espeak":
        accent, _, variant = voice.partition("+")
        if not synth.espeak_voice_exists(accent, variant or "m1"):
            raise HdnnError(f"espeak-ng has no voice {voice!r} (accents: {', '.join(ESPEAK_ACCENTS)}; "
                            f"variants: see espeak-ng --voices=variant)")
    elif voice not in synth.flite_voices():
        raise HdnnError(f"flite has no voice {voice!r} (it has: {', '.join(synth.flite_voices())})")
    return engine, voice


def voice_pools(cfg):
    """{split: {engine: [base voices]}}: train gets the voices not held out, dev/eval the rest."""
    known = known_base_voices()
    for engine in cfg.engines:
        if engine not in ENGINES:
            raise HdnnError(f"unknown engine {engine!r} (known: {', '.join(ENGINES)})")
    voices = cfg.voices if cfg.voices is not None else sorted(known)
    for name in voices:
        check_base_voice(name)
    voices = [v for v in voices if v.split(":")[0] in cfg.engines and cfg.engines[v.split(":")[0]] > 0]
    held = [v for v in voices if any(fnmatch.fnmatchcase(v, p) for p in cfg.holdout_voices)]
    seen = [v for v in voices if v not in held]
    pools = {"train": seen, "dev": held or seen, "eval": held or seen}
    for split, vs in pools.items():
        if not vs:
            raise HdnnError(f"no base voices left for {split} (voices {cfg.voices}, holdout {cfg.holdout_voices})")
    return {split: {e: [v for v in vs if v.startswith(e + ":")] for e in ENGINES} for split, vs in pools.items()}


def design_speakers(cfg, rng):
    """{split: [speaker dicts]} with AMI-style ids (sex, site, native flag, number) unique overall."""
    known = known_base_voices()
    pools = voice_pools(cfg)
    total = sum(cfg.speakers.values())
    numbers = rng.choice(np.arange(1, 1000), size=total, replace=False)
    speakers, n = {}, 0
    for split, count in cfg.speakers.items():
        queues = {}
        speakers[split] = []
        for _ in range(count):
            sex = str(rng.choice(["F", "M"]))
            choices = [(e, sex) for e in ENGINES if any(known.get(v) == sex for v in pools[split][e])]
            choices = choices or [(e, None) for e in ENGINES if pools[split][e]]
            weights = np.array([cfg.engines.get(e, 0) for e, _ in choices], float)
            key = choices[rng.choice(len(choices), p=weights / weights.sum())]
            if not queues.get(key):  # each base voice once before any repeats
                queues[key] = list(rng.permutation([v for v in pools[split][key[0]] if key[1] in (None, known.get(v))]))
            base = str(queues[key].pop())
            sex = known.get(base, "M")
            spk_id = f"{sex}{rng.choice(list('EIT'))}{rng.choice(list('EO'))}{numbers[n]:03d}"
            speakers[split].append(_speaker_params(spk_id, base, sex, rng))
            n += 1
    return speakers


def _speaker_params(spk_id, base, sex, rng):
    engine, voice = base.split(":", 1)
    s = {"id": spk_id, "sex": sex, "base_voice": base, "engine": engine, "voice": voice,
         "warp": round(float(rng.uniform(*WARP[sex])), 3), "level_db": round(float(rng.uniform(-26, -20)), 2)}
    if engine == "espeak":
        s.update(rate=round(float(rng.uniform(140, 185))), pitch=round(float(rng.uniform(25, 70))),
                 pitch_range=round(float(rng.uniform(30, 80))))
    else:
        f0 = (90, 135) if sex == "M" else (160, 220)
        s.update(stretch=round(float(rng.uniform(0.85, 1.2)), 3), f0=round(float(rng.uniform(*f0)), 1),
                 f0_std=round(float(rng.uniform(10, 30)), 1))
    return s


def _warp_resample(audio, sr, alpha):
    """Resample audio read at sr*alpha to 16 kHz; returns the audio and the time scale used."""
    ratio = Fraction(SAMPLE_RATE / (sr * alpha)).limit_denominator(100)
    out = resample_poly(audio.astype(np.float32), ratio.numerator, ratio.denominator)
    return out.astype(np.float32), float(ratio) / SAMPLE_RATE  # seconds per native sample


def _speech_bounds(audio, floor_db=-45.0, frame=160):
    """First and last sample of the frames within floor_db of the loudest frame."""
    n = len(audio) // frame
    if n == 0:
        return 0, len(audio)
    energy = 10 * np.log10(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    active = np.flatnonzero(energy > energy.max() + floor_db)
    return max(active[0] - 1, 0) * frame, min((active[-1] + 2) * frame, len(audio))


def speak(speaker, words, rng):
    """Synthesise `words` as `speaker` with small per-utterance variation.

    Returns 16 kHz float32 audio at the speaker's level (trimmed to speech) and, for espeak,
    phones [(start s, end s, CMU phone, word index)] relative to the returned audio, else None.
    """
    alpha = speaker["warp"]
    jitter = 1 + rng.uniform(-0.06, 0.06)
    if speaker["engine"] == "espeak":
        native, phones = synth.espeak().synth(
            words, speaker["voice"], speaker["rate"] * jitter / alpha,
            speaker["pitch"] + rng.uniform(-6, 6), speaker["pitch_range"])
        sr = synth.espeak().sample_rate
    else:
        native, sr = synth.flite(words, speaker["voice"], speaker["stretch"] * alpha / jitter,
                                 speaker["f0"] * (1 + rng.uniform(-0.06, 0.06)), speaker["f0_std"])
        phones = None
    audio, sec_per_sample = _warp_resample(native, sr, alpha)
    start, end = _speech_bounds(audio)
    audio = audio[start:end]
    level = 10 ** ((speaker["level_db"] + rng.uniform(-1.5, 1.5)) / 20)
    audio *= level / (np.sqrt(np.mean(audio**2)) + 1e-9)
    if phones is not None:
        offset = start / SAMPLE_RATE
        cmu = lexicon.cmudict_lexicon()
        phones = phone_map.spread_merged_words(phone_map.to_cmu(phones), [len(cmu[w][0]) for w in words])
        phones = [(s * sec_per_sample - offset, e * sec_per_sample - offset, p, w) for s, e, p, w in phones]
    return audio, phones

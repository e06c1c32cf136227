"""A tiny espeak-ng corpus with the synthesiser's own phoneme timings, for alignment tests.

libespeak-ng (through ctypes) reports a PHONEME event at the start of every phoneme, so each
utterance comes with its reference phone boundaries. The lexicon is espeak's own phonemisation
(`espeak-ng -x`), so the forced alignments can be compared phone by phone.
"""
import ctypes
import ctypes.util
import random
import subprocess
import wave
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

WORDS = ("the a one two three four five six seven eight nine ten zero yes no red green blue black "
         "white big small cat dog house tree car road water fire light dark good bad time day night "
         "morning evening happy sad fast slow open close start stop left right up down many few "
         "people city country table chair window door book paper pen phone music play stay go come "
         "see look find give take make think know want need help work talk walk run jump sit "
         "stand meeting project design remote control button screen battery price market idea "
         "plan team leader user friendly simple nice colour shape size").split()
VOICES = ("en-us+m3", "en-us+f2", "en-us+m7", "en-us+f4", "en+m1", "en-us+f5")
_RATE = 22050
_EVENT_PHONEME, _EVENT_WORD = 7, 1


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


class Espeak:
    """Synchronous libespeak-ng synthesis returning (samples at 22.05 kHz, phoneme events)."""

    def __init__(self):
        self.lib = ctypes.CDLL(ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1")
        self.rate = self.lib.espeak_Initialize(2, 0, None, 1)  # SYNCHRONOUS, PHONEME_EVENTS
        self._chunks, self._events = [], []
        self._cb = _CALLBACK(self._collect)
        self.lib.espeak_SetSynthCallback(self._cb)

    def _collect(self, wav, n, events):
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != 0:
            e = events[i]
            if e.type == _EVENT_PHONEME:
                self._events.append((e.audio_position / 1000.0, e.id.decode("latin-1")))
            i += 1
        return 0

    def synth(self, text, voice, rate):
        self._chunks, self._events = [], []
        self.lib.espeak_SetVoiceByName(voice.encode())
        self.lib.espeak_SetParameter(1, rate, 0)
        data = text.encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio, list(self._events)


def normalise_phone(p):
    """Kirshenbaum phoneme of espeak -> our phone symbol (no stress, no variant digit)."""
    p = p.strip("'`,%=#")
    if len(p) > 1 and p[-1].isdigit() and p != "3:":
        p = p[:-1]
    return p


def lexicon(words):
    """{word: [phones]} from `espeak-ng -x` (US English)."""
    out = subprocess.run(["espeak-ng", "-q", "-x", "--sep= ", "-v", "en-us"], input="\n".join(words),
                         capture_output=True, text=True, check=True).stdout.split("\n")
    lex = {}
    for word, line in zip(words, [l for l in out if l.strip()]):
        lex[word.upper()] = [q for q in (normalise_phone(p) for p in line.split()) if q]
    return lex


def make_corpus(out_dir, num_utts=60, seed=0, num_speakers=6):
    """Write an espeak corpus: <out>/data/{wav.scp,text,utt2spk,spk2utt}, <out>/dict/, and
    <out>/timings.txt (`utt start-seconds phone ...` per reference phone, pauses excluded).
    Returns the out dir."""
    out = Path(out_dir)
    (out / "wav").mkdir(parents=True, exist_ok=True)
    (out / "data").mkdir(exist_ok=True)
    (out / "dict").mkdir(exist_ok=True)
    rng = random.Random(seed)
    lex = lexicon(WORDS)
    es = Espeak()
    wav_scp, text, utt2spk, timings = [], [], [], []
    for n in range(num_utts):
        spk = f"spk{n % num_speakers}"
        voice = VOICES[n % num_speakers % len(VOICES)]
        words = rng.sample(WORDS, rng.randint(4, 9))
        utt = f"{spk}_u{n:04d}"
        audio, events = es.synth(" ".join(words), voice, rng.randint(140, 175))
        pad = np.zeros(int(0.25 * es.rate), np.int16)  # leading/trailing silence
        audio = np.concatenate([pad, audio, pad])
        audio16 = resample_poly(audio.astype(np.float64), 320, 441)
        path = out / "wav" / f"{utt}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(np.clip(audio16, -32768, 32767).astype(np.int16).tobytes())
        wav_scp.append(f"{utt} {path.absolute()}")
        text.append(f"{utt} {' '.join(w.upper() for w in words)}")
        utt2spk.append(f"{utt} {spk}")
        phones = [(t + 0.25, normalise_phone(p)) for t, p in events]
        phones = [(t, p) for t, p in phones if p and not p.startswith("_")]
        ref = [p for w in words for p in lex[w.upper()]]
        if [p for _, p in phones] == ref:  # keep only utterances spoken as the lexicon says
            timings.append(f"{utt} " + " ".join(f"{t:.3f} {p}" for t, p in phones))
    _write_lines(out / "data" / "wav.scp", wav_scp)
    _write_lines(out / "data" / "text", text)
    _write_lines(out / "data" / "utt2spk", utt2spk)
    spk2utt = {}
    for line in sorted(utt2spk):
        u, s = line.split()
        spk2utt.setdefault(s, []).append(u)
    _write_lines(out / "data" / "spk2utt", [f"{s} {' '.join(us)}" for s, us in spk2utt.items()])
    _write_lines(out / "timings.txt", timings)
    phones = sorted({p for ps in lex.values() for p in ps})
    _write_lines(out / "dict" / "lexicon.txt",
                 ["!SIL SIL", "<UNK> SPN"] + [f"{w} {' '.join(p)}" for w, p in sorted(lex.items())])
    _write_lines(out / "dict" / "nonsilence_phones.txt", phones)
    _write_lines(out / "dict" / "silence_phones.txt", ["SIL", "SPN"])
    _write_lines(out / "dict" / "optional_silence.txt", ["SIL"])
    _write_lines(out / "dict" / "extra_questions.txt", [])
    return out


def read_timings(path):
    """{utt: [(start seconds, phone)]} from timings.txt."""
    out = {}
    for line in Path(path).read_text().splitlines():
        f = line.split()
        out[f[0]] = [(float(f[i]), f[i + 1]) for i in range(1, len(f), 2)]
    return out


def _write_lines(path, lines):
    """Write lines, sorted (as Kaldi wants its tables) except for timings.txt."""
    lines = lines if path.name == "timings.txt" else sorted(lines)
    Path(path).write_text("".join(line + "\n" for line in lines))

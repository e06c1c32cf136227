"""The synthesisers: espeak-ng through its C library (audio plus its own phoneme and word
timings) and flite through its command line (audio only).

espeak-ng is driven by ctypes with espeakINITIALIZE_PHONEME_EVENTS: each phoneme event
carries the phoneme's mnemonic name, its start sample and the text position of its word,
which gives exact reference timings for free.
"""
import ctypes
import functools
import os
import subprocess
import tempfile
from bisect import bisect_right
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from hdnn.errors import HdnnError
from mini_ami import deps

# espeak-ng's speak_lib.h (API revision 12)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED, _EVENT_PHONEME = 0, 7
_RATE, _PITCH, _RANGE = 1, 3, 4


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class Espeak:
    """One libespeak-ng instance per process (the library keeps global state)."""

    def __init__(self):
        self.lib = ctypes.CDLL(deps.espeak_library())
        self.sample_rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS)
        if self.sample_rate <= 0:
            raise HdnnError("libespeak-ng failed to initialise (is espeak-ng-data installed?)")
        self._chunks, self._events = [], []
        self._callback = _CALLBACK(self._collect)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n, events):
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            e = events[i]
            if e.type == _EVENT_PHONEME:
                self._events.append((e.sample, e.text_position, bytes(e.id.string).split(b"\0")[0].decode()))
            i += 1
        return 0

    def synth(self, words, voice, rate, pitch, pitch_range=50):
        """Audio (int16, self.sample_rate) and phones [(start, end sample, espeak name, word index)]."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise HdnnError(f"espeak-ng has no voice {voice!r}")
        for param, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range)):
            self.lib.espeak_SetParameter(param, int(round(value)), 0)
        text = " ".join(w.lower() for w in words).encode()
        self._chunks, self._events = [], []
        self.lib.espeak_Synth(text, len(text) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio, _phones_of(self._events, words, len(audio))


def _phones_of(events, words, n_samples):
    """Phone intervals from phoneme events: a phone ends where the next event (phone or
    pause) starts; pauses ('_', '_:', ...) are dropped; each phone belongs to the word
    whose text starts at or before its text position (1-based character offsets)."""
    starts = np.cumsum([0] + [len(w) + 1 for w in words[:-1]]) + 1
    phones = []
    for i, (sample, pos, name) in enumerate(events):
        end = events[i + 1][0] if i + 1 < len(events) else n_samples
        if name.startswith("_") or end <= sample:
            continue
        phones.append((sample, end, name, max(bisect_right(starts, pos) - 1, 0)))
    return phones


@functools.lru_cache(maxsize=None)
def espeak():
    return Espeak()


@functools.lru_cache(maxsize=None)
def flite_voices():
    out = subprocess.run([deps.flite_binary(), "-lv"], capture_output=True, text=True).stdout
    return tuple(out.split(":", 1)[-1].split())


def flite(words, voice, stretch, f0_mean, f0_std=None):
    """Audio (int16) and its sample rate from the flite command line."""
    with tempfile.TemporaryDirectory(prefix="flite") as tmp:
        wav = os.path.join(tmp, "out.wav")
        cmd = [deps.flite_binary(), "-voice", voice, "-t", " ".join(w.lower() for w in words), "-o", wav,
               "--setf", f"duration_stretch={stretch:.4f}", "--setf", f"int_f0_target_mean={f0_mean:.2f}"]
        if f0_std is not None:
            cmd += ["--setf", f"int_f0_target_stddev={f0_std:.2f}"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0 or not Path(wav).exists():
            raise HdnnError(f"flite failed for voice {voice!r}: {p.stderr.strip()[:200]}")
        sr, audio = wavfile.read(wav)
    return audio.astype(np.int16), sr


@functools.lru_cache(maxsize=None)
def espeak_accents():
    """Lower-case names of espeak-ng's language voices (the files under espeak-ng-data/lang)."""
    return frozenset(p.name.lower() for p in (deps.espeak_data_dir() / "lang").rglob("*") if p.is_file())


def espeak_voice_exists(accent, variant):
    return accent.lower() in espeak_accents() and (deps.espeak_data_dir() / "voices" / "!v" / variant).is_file()

"""Corpus sizes and difficulty knobs. Every field can be set from a JSON file
(`--config knobs.json`, keys as below) or by the flags of local/make_mini_ami.py;
the whole config is stored with the corpus, so a corpus knows how it was made."""
import dataclasses
import json
from dataclasses import dataclass, field

from hdnn.errors import HdnnError

# speakers (train, dev, eval), meetings (train, dev, eval), seconds of speech per meeting
SIZES = {
    "tiny": ((4, 4, 4), (1, 1, 1), 15),        # for tests: a few seconds to generate
    "ci": ((12, 4, 4), (5, 1, 1), 60),         # ~7 min of speech
    "demo": ((40, 20, 20), (16, 10, 10), 180),  # ~44 min train, ~6k words per test set
    "large": ((80, 16, 16), (80, 12, 12), 200),  # ~5.8 h, ~8k words per test set
}

# untranscribed meetings, as a multiple of the training meetings (training speakers, training-pool
# text, no transcript in the data dir): audio for teacher-student training
UNTRANSCRIBED = {"tiny": 1, "ci": 1, "demo": 4, "large": 1}

# headset noise SNR and crosstalk level in dB (LO, HI) by size: the sizes that tests build keep clean
# headsets; demo and large have noisy ones, so that a word decoder is in doubt about training
# utterances too (on clean headsets sequence training had no errors to learn from; local/README.md)
IHM_CHANNEL = {"tiny": ((30.0, 40.0), (-30.0, -20.0)), "ci": ((30.0, 40.0), (-30.0, -20.0)),
               "demo": ((10.0, 20.0), (-20.0, -10.0)), "large": ((10.0, 20.0), (-20.0, -10.0))}

DEFAULT_HOLDOUT = ("espeak:en-029+*", "espeak:en-gb-x-gbcwmd+*", "espeak:*+m7", "espeak:*+f4", "flite:awb",
                   "flite:rms")


@dataclass
class CorpusConfig:
    size: str = "demo"
    seed: int = 0
    # speakers: engine weights, base voices (None: all known), base voices kept for dev/eval only
    engines: dict = field(default_factory=lambda: {"espeak": 0.6, "flite": 0.4})
    voices: list = None
    holdout_voices: list = field(default_factory=lambda: list(DEFAULT_HOLDOUT))
    # text: share of each source among turns; chance that a listener backchannels
    text_mix: dict = field(default_factory=lambda: {"meeting": 0.5, "fortunes": 0.3, "wordnet": 0.15,
                                                    "chatterbot": 0.05})
    backchannel_prob: float = 0.2
    # turn-taking: gap between turns ~ N(mean, std) clipped to range; negative gaps overlap
    gap_mean_s: float = 0.15
    gap_std_s: float = 0.6
    gap_range_s: tuple = (-1.2, 1.5)
    # headset channels: noise and crosstalk from the other talkers (None: the size's IHM_CHANNEL)
    ihm_snr_db: tuple = None
    crosstalk_db: tuple = None
    # distant microphone: room reverberation and noise
    rt60_s: tuple = (0.25, 0.7)
    sdm_snr_db: tuple = (5.0, 20.0)
    # lexicon words: those of the training text ("train") or of all splits ("all")
    lexicon_vocab: str = "train"
    # untranscribed meetings per training meeting (None: the size's UNTRANSCRIBED)
    untranscribed: int = None

    def __post_init__(self):
        if self.size not in SIZES:
            raise HdnnError(f"unknown size {self.size!r} (known: {', '.join(SIZES)})")
        snr, crosstalk = IHM_CHANNEL[self.size]
        self.ihm_snr_db = snr if self.ihm_snr_db is None else self.ihm_snr_db
        self.crosstalk_db = crosstalk if self.crosstalk_db is None else self.crosstalk_db
        for name in ("gap_range_s", "ihm_snr_db", "crosstalk_db", "rt60_s", "sdm_snr_db"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise HdnnError(f"{name}: the range {lo},{hi} is empty")
            setattr(self, name, (float(lo), float(hi)))
        if self.lexicon_vocab not in ("train", "all"):
            raise HdnnError(f"lexicon_vocab must be train or all, not {self.lexicon_vocab!r}")
        if self.untranscribed is None:
            self.untranscribed = UNTRANSCRIBED[self.size]
        if not isinstance(self.untranscribed, int) or self.untranscribed < 0:
            raise HdnnError(f"untranscribed must be a whole number >= 0, not {self.untranscribed!r}")
        for name in ("engines", "text_mix"):
            weights = getattr(self, name)
            if not weights or min(weights.values()) < 0 or sum(weights.values()) <= 0:
                raise HdnnError(f"{name}: weights must be >= 0 with a positive sum, got {weights}")

    @property
    def speakers(self):
        return dict(zip(("train", "dev", "eval"), SIZES[self.size][0]))

    @property
    def meetings(self):
        return dict(zip(("train", "dev", "eval"), SIZES[self.size][1]))

    @property
    def untranscribed_meetings(self):
        return self.untranscribed * self.meetings["train"]

    @property
    def speech_per_meeting_s(self):
        return SIZES[self.size][2]

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json_file(cls, path, **overrides):
        """The knobs of a JSON file, then `overrides` (unknown keys are an error)."""
        try:
            with open(path, encoding="utf-8") as f:
                knobs = json.load(f)
        except (OSError, ValueError) as e:
            raise HdnnError(f"{path}: cannot read the corpus config: {e}") from e
        return cls.from_dict({**knobs, **overrides}, source=path)

    @classmethod
    def from_dict(cls, knobs, source="config"):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(knobs) - known)
        if unknown:
            raise HdnnError(f"{source}: unknown corpus knob(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**knobs)

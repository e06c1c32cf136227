"""Sentence sources, normalisation, and the hash split of sentences into train/dev/eval.

Sources (all offline): Debian `fortunes` (+`fortunes-min`), WordNet usage examples
(Debian `wordnet-base`), chatterbot-corpus dialogue turns (PyPI), and a built-in
grammar of design-meeting talk with disfluencies, plus backchannels ("YEAH", "MHM").
A sentence is kept when it has 3-20 words and every word is in CMUdict; its md5 decides
its split, so a dev/eval sentence never occurs in training text.
"""
import hashlib
import re
from pathlib import Path

import numpy as np

from hdnn.errors import HdnnError

from mini_ami import deps, meeting_talk

SPLITS = ("train", "dev", "eval")
SOURCES = ("meeting", "fortunes", "wordnet", "chatterbot")
BACKCHANNEL = "backchannel"
MIN_WORDS, MAX_WORDS = 3, 20
SKIP_FORTUNE_FILES = {"ascii-art", "translate-me"}

_ONES = ("ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE THIRTEEN FOURTEEN "
         "FIFTEEN SIXTEEN SEVENTEEN EIGHTEEN NINETEEN").split()
_TENS = "_ _ TWENTY THIRTY FORTY FIFTY SIXTY SEVENTY EIGHTY NINETY".split()


def number_words(n):
    """Cardinal number in words, 0 <= n < 10**6: 342 -> THREE HUNDRED FORTY TWO."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " HUNDRED" + ("" if n % 100 == 0 else " " + number_words(n % 100))
    return number_words(n // 1000) + " THOUSAND" + ("" if n % 1000 == 0 else " " + number_words(n % 1000))


def normalise(sentence, vocab, min_words=MIN_WORDS, max_words=MAX_WORDS):
    """Upper-case words, digits spelled out, punctuation removed; None unless every word
    is in `vocab` (a set of upper-case words) and the length is in range."""
    s = sentence.replace("\u2019", "'")
    s = re.sub(r"\d{1,6}", lambda m: f" {number_words(int(m.group()))} ", s)
    s = re.sub(r"[^A-Z' -]", " ", s.upper())
    words = []
    for token in s.split():
        parts = [token] if token in vocab else token.split("-")
        words += [p.strip("'") for p in parts if p.strip("'")]
    if not min_words <= len(words) <= max_words:
        return None
    if any(w not in vocab for w in words) or sum(len(w) == 1 and w not in "AI" for w in words) > 1:
        return None
    return " ".join(words)


def split_of(sentence, shares=(0.9, 0.05, 0.05)):
    """train/dev/eval by the md5 of the sentence: stable across runs and seeds."""
    h = int(hashlib.md5(sentence.encode()).hexdigest()[:8], 16) / 16**8
    return SPLITS[0] if h < shares[0] else SPLITS[1] if h < shares[0] + shares[1] else SPLITS[2]


def fortune_sentences(directory=deps.FORTUNES_DIR):
    """Sentences of the (non-offensive) fortune cookie files."""
    directory = deps.fortunes_dir(directory)
    for path in sorted(directory.iterdir()):
        if path.suffix or not path.is_file() or path.name in SKIP_FORTUNE_FILES:
            continue
        for cookie in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            lines = [ln for ln in cookie.splitlines() if not ln.strip().startswith("--")]
            body = " ".join(ln.strip() for ln in lines)
            if sum(c.isalpha() or c.isspace() for c in body) < 0.85 * max(len(body), 1):
                continue  # drawings, tables, code
            yield from re.split(r"(?<=[.!?;:])\s+", body)


def wordnet_sentences(directory=deps.WORDNET_DIR):
    """The quoted usage examples in WordNet's glosses."""
    directory = deps.wordnet_dir(directory)
    for pos in ("noun", "verb", "adj", "adv"):
        with open(directory / f"data.{pos}", encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.startswith(" ") and " | " in line:
                    yield from re.findall(r'"([^"]+)"', line.split(" | ", 1)[1])


def chatterbot_sentences():
    """Dialogue turns of chatterbot-corpus's English YAML files (plain list items)."""
    try:
        import chatterbot_corpus
    except ImportError as e:
        raise HdnnError("chatterbot-corpus is not installed: pip install -e '.[corpus]' "
                             "(or run tools/setup.sh)") from e
    for path in sorted((Path(chatterbot_corpus.__file__).parent / "data" / "english").glob("*.yml")):
        for line in path.read_text(encoding="utf-8").splitlines():
            m = re.match(r"^\s*(?:- )+(.+)$", line)
            if m:
                yield m.group(1).strip().strip("'\"")


def raw_sentences(source, fortunes_dir=deps.FORTUNES_DIR, wordnet_dir=deps.WORDNET_DIR):
    if source == "fortunes":
        return fortune_sentences(fortunes_dir)
    if source == "wordnet":
        return wordnet_sentences(wordnet_dir)
    if source == "chatterbot":
        return chatterbot_sentences()
    if source == "meeting":
        return meeting_talk.utterances(np.random.default_rng(0), 20000)
    if source == BACKCHANNEL:
        return meeting_talk.backchannels()
    raise HdnnError(f"unknown text source {source!r} (known: {', '.join(SOURCES)})")


def build_pools(vocab, sources=SOURCES + (BACKCHANNEL,), **dirs):
    """{split: {source: sorted unique sentences}} of the normalised sentences."""
    pools = {split: {} for split in SPLITS}
    for source in sources:
        min_words = 1 if source == BACKCHANNEL else MIN_WORDS
        kept = {normalise(s, vocab, min_words=min_words) for s in raw_sentences(source, **dirs)}
        kept.discard(None)
        for split in SPLITS:
            pools[split][source] = []
        for s in sorted(kept):
            pools[split_of(s)][source].append(s)
    return pools

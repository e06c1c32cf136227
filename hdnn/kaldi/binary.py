"""Kaldi's binary serialisation of basic types, as in kaldi/src/base/io-funcs.h.

A Kaldi binary object file starts with ``\\0B``; then, in order:
  token          the text followed by one space (``<DiagGMM> ``)
  int32/uint32   one size byte (4, or -4 for unsigned) then 4 little-endian bytes
  float/double   one size byte (4 or 8) then the IEEE value
  bool           ``T`` or ``F``
  int vector     the element size byte, an int32 count, then the raw elements
  Vector         token ``FV``/``DV``, an int32 (with its size byte) dim, then the raw data
  Matrix         token ``FM``/``DM``, int32 rows, int32 cols, then the data row by row

Pure Python and numpy: used for trees, models and posteriors alike.
"""
import struct
from pathlib import Path

import numpy as np

from hdnn.errors import HdnnError, atomic_open

BINARY_HEADER = b"\0B"

_INT_TYPES = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}


class KaldiBinaryReader:
    """Reads Kaldi binary basic types from a byte buffer; errors name `source` and the offset."""

    def __init__(self, data, source="<bytes>", pos=0):
        self.data = bytes(data)
        self.source = str(source)
        self.pos = pos

    @classmethod
    def open(cls, path):
        """A reader over a Kaldi binary object file, positioned after the ``\\0B`` header."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise HdnnError(f"{path}: cannot read: {e.strerror}") from None
        if not data.startswith(BINARY_HEADER):
            raise HdnnError(f"{path}: not a Kaldi binary file (no \\0B header; text mode is not supported)")
        return cls(data, path, len(BINARY_HEADER))

    def error(self, what):
        return HdnnError(f"{self.source}: {what} at byte {self.pos}")

    def _take(self, n):
        if self.pos + n > len(self.data):
            raise self.error(f"unexpected end of file reading {n} bytes")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def at_end(self):
        return self.pos >= len(self.data)

    def peek_char(self):
        """The next character, without consuming it ('' at end of file)."""
        return chr(self.data[self.pos]) if self.pos < len(self.data) else ""

    def peek_token(self):
        """The next token, without consuming it."""
        end = self.data.find(b" ", self.pos)
        return self.data[self.pos:end].decode("latin-1") if end >= 0 else ""

    def token(self):
        end = self.data.find(b" ", self.pos)
        if end < 0:
            raise self.error("unexpected end of file reading a token")
        tok = self.data[self.pos:end].decode("latin-1")
        self.pos = end + 1
        return tok

    def expect(self, token):
        got = self.token()
        if got != token:
            self.pos -= len(got) + 1
            raise self.error(f"expected token {token!r}, got {got!r}")

    def _int(self, signed):
        size = struct.unpack("b", self._take(1))[0]
        if size != (4 if signed else -4):
            self.pos -= 1
            kind = "int32" if signed else "uint32"
            raise self.error(f"expected {kind} (size byte {4 if signed else -4}), got size byte {size}")
        return struct.unpack("<i" if signed else "<I", self._take(4))[0]

    def int32(self):
        return self._int(signed=True)

    def uint32(self):
        return self._int(signed=False)

    def float(self):
        """A float or double basic type (Kaldi reads either into a BaseFloat)."""
        size = self._take(1)[0]
        if size == 4:
            return struct.unpack("<f", self._take(4))[0]
        if size == 8:
            return struct.unpack("<d", self._take(8))[0]
        self.pos -= 1
        raise self.error(f"expected float or double (size byte 4 or 8), got {size}")

    def bool(self):
        c = self._take(1)
        if c not in (b"T", b"F"):
            self.pos -= 1
            raise self.error(f"expected bool T or F, got {c!r}")
        return c == b"T"

    def int_vector(self):
        """std::vector<int32> (or another integer width) as a numpy array."""
        size = self._take(1)[0]
        if size not in _INT_TYPES:
            self.pos -= 1
            raise self.error(f"bad integer-vector element size {size}")
        n = struct.unpack("<i", self._take(4))[0]
        if n < 0:
            raise self.error(f"negative integer-vector length {n}")
        dtype = np.dtype(_INT_TYPES[size]).newbyteorder("<")
        return np.frombuffer(self._take(n * size), dtype=dtype).astype(_INT_TYPES[size])

    def vector(self):
        """Kaldi Vector<float> (FV) or Vector<double> (DV) as a numpy array of that type."""
        tok = self.token()
        dtype = {"FV": "<f4", "DV": "<f8"}.get(tok)
        if dtype is None:
            raise self.error(f"expected a vector (FV or DV), got {tok!r}")
        n = self.int32()
        return np.frombuffer(self._take(n * int(dtype[-1])), dtype=dtype).copy()

    def matrix(self):
        """Kaldi Matrix<float> (FM) or Matrix<double> (DM) as a 2-D numpy array."""
        tok = self.token()
        dtype = {"FM": "<f4", "DM": "<f8"}.get(tok)
        if dtype is None:
            raise self.error(f"expected a matrix (FM or DM), got {tok!r}")
        rows, cols = self.int32(), self.int32()
        data = self._take(rows * cols * int(dtype[-1]))
        return np.frombuffer(data, dtype=dtype).reshape(rows, cols).copy()


class KaldiBinaryWriter:
    """Builds Kaldi binary output in memory; `getvalue()` or `save(path)` (atomic) at the end."""

    def __init__(self, header=True):
        self.parts = [BINARY_HEADER] if header else []

    def getvalue(self):
        return b"".join(self.parts)

    def save(self, path):
        with atomic_open(path, "wb") as f:
            f.write(self.getvalue())

    def token(self, token):
        if not token or any(c.isspace() for c in token):
            raise ValueError(f"invalid Kaldi token {token!r}")
        self.parts.append(token.encode("latin-1") + b" ")

    def int32(self, v):
        self.parts.append(struct.pack("<bi", 4, int(v)))

    def uint32(self, v):
        self.parts.append(struct.pack("<bI", -4, int(v)))

    def float(self, v):
        self.parts.append(struct.pack("<bf", 4, float(v)))

    def double(self, v):
        self.parts.append(struct.pack("<bd", 8, float(v)))

    def bool(self, v):
        self.parts.append(b"T" if v else b"F")

    def int_vector(self, v, dtype=np.int32):
        a = np.ascontiguousarray(v, dtype=np.dtype(dtype).newbyteorder("<"))
        self.parts.append(struct.pack("<bi", a.itemsize, a.size) + a.tobytes())

    def vector(self, v, dtype=np.float32):
        a = np.ascontiguousarray(v, dtype=np.dtype(dtype).newbyteorder("<"))
        self.token("FV" if a.itemsize == 4 else "DV")
        self.int32(a.size)
        self.parts.append(a.tobytes())

    def matrix(self, m, dtype=np.float32):
        a = np.ascontiguousarray(m, dtype=np.dtype(dtype).newbyteorder("<"))
        if a.ndim != 2:
            raise ValueError(f"matrix must be 2-D, got shape {a.shape}")
        self.token("FM" if a.itemsize == 4 else "DM")
        self.int32(a.shape[0])
        self.int32(a.shape[1])
        self.parts.append(a.tobytes())


def read_kaldi_matrix(path):
    """A Kaldi binary Matrix file (e.g. an LDA/MLLT transform `final.mat`) as a numpy array."""
    r = KaldiBinaryReader.open(path)
    m = r.matrix()
    if not r.at_end():
        raise r.error("trailing data after the matrix")
    return m


def write_kaldi_matrix(path, m, dtype=np.float32):
    """Write a Kaldi binary Matrix file, atomically."""
    w = KaldiBinaryWriter()
    w.matrix(m, dtype=dtype)
    w.save(path)

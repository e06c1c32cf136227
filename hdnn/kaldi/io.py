"""Kaldi tables (archives and scp files) of matrices and int vectors, on kaldiio.

rspecifiers: `scp:feats.scp`, `ark:feats.ark`, `ark:-`, `ark:copy-feats scp:x.scp ark:- |`,
or a bare `*.scp` / `*.ark` path. wspecifiers: `ark,scp:a.ark,a.scp`, `ark:a.ark`, `ark:-`,
`ark:| cmd`, with `t` for text (`ark,t:-`). Archive and scp files are written atomically;
pipe commands run with the Kaldi binaries on PATH when a Kaldi build is present.
"""
import contextlib
import os
import re
import struct
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import kaldiio
import numpy as np
from kaldiio.matio import read_token, write_array, write_array_ascii

from hdnn.errors import HdnnError, atomic_path
from hdnn.kaldi.binaries import kaldi_env, kaldi_root

# Kaldi's CompressionMethod kAutomaticMethod, which `copy-feats --compress=true` uses.
COMPRESS_AUTO = 1
BINARY_HEADER = b"\0B"
_INT_PAIR = np.dtype([("size", "u1"), ("value", "<i4")])


# ---------------------------------------------------------------- specifiers

def parse_rspecifier(rspecifier):
    """(kind, target) of an rspecifier; kind is 'scp' or 'ark'. Options (p, o, s, cs) are ignored."""
    rspecifier = str(rspecifier)
    if not re.match(r"[a-z,]+:", rspecifier):
        for kind in ("scp", "ark"):
            if rspecifier.endswith("." + kind):
                return kind, rspecifier
        raise HdnnError(f"{rspecifier}: not an rspecifier (expected scp:FILE, ark:FILE or *.scp/*.ark)")
    opts, target = rspecifier.split(":", 1)
    kinds = set(opts.split(",")) & {"scp", "ark"}
    if len(kinds) != 1:
        raise HdnnError(f"{rspecifier}: an rspecifier needs exactly one of scp: or ark:")
    return kinds.pop(), target.strip()


def parse_wspecifier(wspecifier):
    """(ark target, scp path or None, text?) of a wspecifier such as `ark,scp:a.ark,a.scp`."""
    wspecifier = str(wspecifier)
    opts, sep, targets = wspecifier.partition(":")
    opts = set(opts.split(","))
    if not sep or "ark" not in opts or not opts <= {"ark", "scp", "t", "b", "f"}:
        raise HdnnError(f"{wspecifier}: not a wspecifier (expected ark:FILE or ark,scp:A.ark,A.scp)")
    if "scp" in opts:
        ark, _, scp = targets.partition(",")
        if not ark.strip() or not scp.strip():
            raise HdnnError(f"{wspecifier}: ark,scp needs two files: ark,scp:A.ark,A.scp")
        return ark.strip(), scp.strip(), "t" in opts
    return targets.strip(), None, "t" in opts


def _is_stream(target):
    return target == "-" or target.endswith("|") or target.startswith("|")


# ---------------------------------------------------------------- streams

@contextlib.contextmanager
def open_input(target):
    """A binary stream of `target`: a file, `-` (stdin) or `cmd |`.

    A failing pipe command raises HdnnError with its last line of stderr.
    """
    if target == "-":
        yield sys.stdin.buffer
    elif target.endswith("|"):
        with _pipe(target[:-1], "r") as proc:
            yield proc.stdout
    else:
        try:
            f = open(target, "rb")
        except OSError as e:
            raise HdnnError(f"{target}: cannot open: {e.strerror}") from None
        with f:
            yield f


@contextlib.contextmanager
def open_output(target):
    """A binary stream to `target`: `-` (stdout) or `| cmd` (files: see write_table)."""
    if target == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
    else:
        with _pipe(target.lstrip("|"), "w") as proc:
            yield proc.stdin


@contextlib.contextmanager
def _pipe(cmd, mode):
    """Run a shell command as a pipe (Kaldi binaries on PATH when built); check its exit.

    A failing command is reported in place of the read error it causes; a reader that
    stops early just ends the command.
    """
    env = kaldi_env() if kaldi_root() else None
    with tempfile.TemporaryFile() as err:
        io_kw = {"stdout": subprocess.PIPE} if mode == "r" else {"stdin": subprocess.PIPE}
        proc = subprocess.Popen(cmd, shell=True, stderr=err, env=env, **io_kw)
        stream = proc.stdout if mode == "r" else proc.stdin
        failure = None
        try:
            yield proc
        except GeneratorExit:
            stream.close()
            proc.terminate()
            proc.wait()
            raise
        except Exception as e:
            failure = e
        stream.close()
        code = proc.wait()
        if code != 0:
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines()
            raise HdnnError(f"pipe '{cmd.strip()}' failed (exit {code}): {lines[-1] if lines else ''}")
        if failure is not None:
            raise failure


@contextlib.contextmanager
def table_errors(source):
    """Turn the errors of reading a table into one HdnnError line naming `source`."""
    try:
        yield
    except HdnnError:
        raise
    except FileNotFoundError as e:
        raise HdnnError(f"{source}: no such file {e.filename or ''}".rstrip()) from None
    except UnicodeDecodeError:
        raise HdnnError(f"{source}: cannot read: not a Kaldi table, or corrupt (a key or binary marker "
                        f"is not text)") from None
    except (OSError, ValueError, AssertionError, struct.error, EOFError, IndexError,
            RuntimeError, KeyError, TypeError) as e:
        detail = " ".join(f"{type(e).__name__}: {e}".split()).rstrip(": ")
        raise HdnnError(f"{source}: cannot read: truncated or corrupt ({detail})") from None


def _check_readable(kind, target):
    if not _is_stream(target) and not os.path.isfile(target):
        raise HdnnError(f"{target}: no such {kind} file")


# ---------------------------------------------------------------- generic tables

def read_table(rspecifier, read_value):
    """Iterate (key, value) over a Kaldi table; `read_value(f, key, source)` reads one
    value from a binary stream positioned just after `key `."""
    kind, target = parse_rspecifier(rspecifier)
    _check_readable(kind, target)
    return _iter_table(kind, target, rspecifier, read_value)


def _iter_table(kind, target, source, read_value):
    with table_errors(source):
        if kind == "ark":
            with open_input(target) as f:
                while (key := read_token(f)) is not None:
                    yield key, read_value(f, key, source)
            return
        with open(target, encoding="utf-8") as scp, contextlib.ExitStack() as open_ark:
            ark_path, f = None, None
            for num, line in enumerate(scp, 1):
                key, _, rxfile = line.strip().partition(" ")
                if not rxfile:
                    raise HdnnError(f"{target}:{num}: bad scp line {line.strip()!r}")
                match = re.fullmatch(r"(.*):(\d+)", rxfile.strip())
                path, offset = (match[1], int(match[2])) if match else (rxfile.strip(), 0)
                if path != ark_path or _is_stream(path):
                    open_ark.close()
                    ark_path, f = path, open_ark.enter_context(open_input(path))
                if offset or not _is_stream(path):
                    f.seek(offset)
                yield key, read_value(f, key, f"{target} ({key})")


def write_table(wspecifier, items, write_value, write_text=None):
    """Write (key, value) pairs as a Kaldi table; returns how many were written.

    `write_value(f, value)` writes one value in binary (after `key `), `write_text(f, value)`
    in text mode (`ark,t:`). Files (ark and scp) are written under temporary names and
    renamed at the end, so a failure leaves no partial output.
    """
    ark, scp, text = parse_wspecifier(wspecifier)
    if text and write_text is None:
        raise HdnnError(f"{wspecifier}: this type cannot be written as text")
    write = write_text if text else write_value
    if _is_stream(ark):
        if scp:
            raise HdnnError(f"{wspecifier}: a scp needs an archive file, not a pipe")
        with open_output(ark) as f:
            return _write_entries(f, items, write, None)
    # the archive is renamed into place before the scp that points into it
    with atomic_path(scp) if scp else contextlib.nullcontext() as scp_tmp, atomic_path(ark) as ark_tmp:
        with open(ark_tmp, "wb") as f, \
                open(scp_tmp, "w", encoding="utf-8") if scp else contextlib.nullcontext() as scp_f:
            return _write_entries(f, items, write, scp_f and (scp_f, ark))


def _write_entries(f, items, write, scp):
    """Write `key value` entries; with scp=(file, ark name) also `key ark:offset` lines."""
    count = 0
    for key, value in items:
        if not key or any(c.isspace() for c in key):
            raise HdnnError(f"bad key {key!r}: keys must be non-empty and without spaces")
        f.write(key.encode("utf-8") + b" ")
        if scp:
            scp[0].write(f"{key} {scp[1]}:{f.tell()}\n")
        write(f, value)
        count += 1
    return count


# ---------------------------------------------------------------- matrices

def check_finite(mat, utt, source):
    """Return `mat`; raise HdnnError naming `source` and `utt` if it holds NaN or Inf."""
    if not np.all(np.isfinite(mat)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(mat))[0])
        raise HdnnError(f"{source}: utterance {utt} has NaN/Inf at {bad}")
    return mat


def _read_matrix(f, utt, source, dtype=np.float32):
    mat = np.asarray(kaldiio.matio.read_kaldi(f))
    if mat.ndim != 2 or mat.dtype.kind != "f":
        raise HdnnError(f"{source}: utterance {utt} is not a float matrix ({mat.dtype} {mat.shape})")
    return mat.astype(dtype, copy=False)


def read_matrices(rspecifier, check=True, dtype=np.float32):
    """Iterate (utt, 2-D array of `dtype`) over a table of matrices (compressed ones too).

    check=True raises HdnnError on NaN/Inf, naming the table and utterance.
    """

    def read_value(f, utt, source):
        mat = _read_matrix(f, utt, source, dtype)
        return check_finite(mat, utt, source) if check else mat

    return read_table(rspecifier, read_value)


class MatrixReader:
    """Random access to the matrices of a scp file: reader[utt], utt in reader, len, keys().

    dtype=np.float64 keeps double matrices such as CMVN stats exact.
    """

    def __init__(self, scp_path, check=True, dtype=np.float32):
        self.scp_path = Path(str(scp_path).removeprefix("scp:"))
        _check_readable("scp", str(self.scp_path))
        self.check, self.dtype = check, dtype
        with table_errors(self.scp_path):
            self._table = kaldiio.load_scp(str(self.scp_path))

    def __getitem__(self, utt):
        if utt not in self._table:
            raise HdnnError(f"{self.scp_path}: no utterance {utt}")
        source = f"{self.scp_path} ({utt})"
        with table_errors(source), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # kaldiio warns before re-raising
            mat = np.asarray(self._table[utt])
        if mat.ndim != 2 or mat.dtype.kind != "f":
            raise HdnnError(f"{source}: utterance {utt} is not a float matrix ({mat.dtype} {mat.shape})")
        mat = mat.astype(self.dtype, copy=False)
        return check_finite(mat, utt, self.scp_path) if self.check else mat

    def __contains__(self, utt):
        return utt in self._table

    def __len__(self):
        return len(self._table)

    def __iter__(self):
        return iter(self._table)

    def keys(self):
        return self._table.keys()


def write_matrices(wspecifier, items, compress=False):
    """Write (utt, 2-D array) pairs as float32 Kaldi matrices; returns the count.

    `ark,scp:a.ark,a.scp` writes both files atomically; `ark:-` writes a binary archive
    to stdout for a Kaldi pipe. compress=True compresses like `copy-feats --compress=true`.
    """
    method = COMPRESS_AUTO if compress else None

    def as_matrix(mat):
        mat = np.asarray(mat, dtype=np.float32)
        if mat.ndim != 2:
            raise HdnnError(f"{wspecifier}: expected a matrix, got shape {mat.shape}")
        return mat

    def write_value(f, mat):
        write_array(f, as_matrix(mat), compression_method=method)

    def write_text(f, mat):
        write_array_ascii(f, as_matrix(mat))

    return write_table(wspecifier, items, write_value, None if compress else write_text)


# ---------------------------------------------------------------- int vectors

def read_binary_header(f):
    """After a key: consume and return the binary header `\\0B`, or return the start of a
    text value (b"\\n" alone for an empty one) for the caller to complete with readline()."""
    head = f.read(1)
    return head if head in (b"\n", b"") else head + f.read(1)


def read_int_vector(f, key, source):
    """One Kaldi int32 vector from a stream: binary (`\\0B\\4 <n> (\\4 <int32>)*`) or a text line."""
    head = read_binary_header(f)
    if head == BINARY_HEADER:
        size, n = f.read(1), f.read(4)
        if size != b"\4" or len(n) != 4:
            raise HdnnError(f"{source}: {key} is not an int32 vector")
        n = struct.unpack("<i", n)[0]
        data = f.read(_INT_PAIR.itemsize * n)
        if n < 0 or len(data) != _INT_PAIR.itemsize * n:
            raise HdnnError(f"{source}: {key} is truncated")
        return np.frombuffer(data, dtype=_INT_PAIR)["value"].astype(np.int32)
    line = (head if head.endswith(b"\n") else head + f.readline()).decode("utf-8")
    try:
        return np.array(line.split(), dtype=np.int32)
    except ValueError:
        raise HdnnError(f"{source}: {key} is not an int vector: {line.strip()[:40]!r}") from None


def read_int_vectors(rspecifier):
    """Iterate (utt, int32 1-D array) over a table of int vectors (binary or text)."""
    return read_table(rspecifier, read_int_vector)


def write_int_vectors(wspecifier, items):
    """Write (utt, int sequence) pairs as Kaldi int32 vectors (as ali-to-pdf writes them)."""

    def as_vector(vec):
        vec = np.asarray(vec)
        if vec.ndim != 1 or (vec.size and vec.dtype.kind not in "iu"):
            raise HdnnError(f"{wspecifier}: expected a 1-D int vector, got {vec.dtype} {vec.shape}")
        return vec

    def write_value(f, vec):
        vec = as_vector(vec)
        pairs = np.empty(len(vec), dtype=_INT_PAIR)
        pairs["size"], pairs["value"] = 4, vec
        f.write(BINARY_HEADER + b"\4" + struct.pack("<i", len(vec)) + pairs.tobytes())

    def write_text(f, vec):
        f.write(("".join(f"{int(v)} " for v in as_vector(vec)) + "\n").encode())

    return write_table(wspecifier, items, write_value, write_text)


def read_symbol_table(path):
    """{symbol: id} of a Kaldi symbol table (phones.txt, words.txt)."""
    path = Path(path)
    if not path.exists():
        raise HdnnError(f"{path}: no such file")
    table = {}
    for num, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        f = line.split()
        if len(f) != 2 or not f[1].isdigit():
            raise HdnnError(f"{path}:{num}: expected `symbol id`, got {line!r}")
        table[f[0]] = int(f[1])
    return table

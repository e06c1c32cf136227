"""The one exception type for bad input, and atomic output."""
import contextlib
import errno
import glob
import os
import shutil
import tempfile
from pathlib import Path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class HdnnError(Exception):
    """Bad input or a failed precondition. Its message is one line for the user,
    naming the file (and utterance) at fault; steps print it and exit 1."""


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside `path`; rename it onto `path` only on success.

    An interrupted or failing writer leaves no partial file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as e:
        if e.filename is None:  # a failed write (disk full) names no file: name the output
            e.filename = str(path)
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_stale_temporaries(path):
    """Remove the temporaries of `path` that a killed writer (SIGKILL, power loss) left beside it."""
    for stale in Path(path).parent.glob(f".{glob.escape(Path(path).name)}.*.tmp*"):
        with contextlib.suppress(OSError):
            if stale.is_dir():
                shutil.rmtree(stale)
            else:
                stale.unlink()


def check_writable(*dirs):
    """Create each dir and write a probe file there, so that a read-only or full file system is
    one clear error before any long work, not a traceback after it."""
    for d in dirs:
        d = Path(d)
        try:
            d.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=d, prefix=".write-probe.", suffix=".tmp") as f:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise HdnnError(f"{d}: cannot write there ({e.strerror or e})") from None


def first_line(e):
    """The first line of an exception's message, or its type's name when it has none (an
    empty file makes torch.load raise a bare EOFError)."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def describe_os_error(e):
    """One line for an OSError: the file, what went wrong, and what to do."""
    where = f"{e.filename}: " if e.filename else ""
    hint = {errno.ENOSPC: " (free some space or write the outputs elsewhere)",
            errno.EDQUOT: " (free some space or write the outputs elsewhere)",
            errno.EROFS: " (write the outputs to a writable file system)",
            errno.EACCES: " (check the permissions, or write the outputs elsewhere)"}.get(e.errno, "")
    return f"{where}{e.strerror or e}{hint}"


@contextlib.contextmanager
def atomic_open(path, mode="w", **kwargs):
    """Open a temporary file beside `path` for writing; rename it onto `path` on success."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f


@contextlib.contextmanager
def atomic_dir(path):
    """Yield an empty temporary dir beside `path`; on success it replaces `path` whole.

    An interrupted or failing build leaves `path` as it was (absent or the old version).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    build = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield build
        if path.exists():
            shutil.rmtree(path)
        os.replace(build, path)
    finally:
        shutil.rmtree(build, ignore_errors=True)

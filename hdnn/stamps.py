"""What an output was made from, so that a rerun skips work made from the same inputs and
options and redoes work made from other ones, never reusing it silently.

A stamp is a small JSON object: {"options": {name: value}, "inputs": {name: identity}}. The
identity of a file is its MD5 when it is small (models, alignments, data-dir files: the same
bytes give the same stamp wherever they lie) and its size and modification time when it is
large (log-likelihood archives, graphs: hashing them would cost more than the check should).
A directory's identity is that of its files, except logs, per-job splits, temporaries and the
subtrees named in ``exclude``. A rspecifier's inputs are its file (and, for a scp, the archives
it points into); a pipe is identified by its command only.

Steps keep a stamp beside what they make and compare it on the next run: ``changes(old, new)``
names what differs ("option beam: 8 -> 13", "input model changed"), which the step logs before
it clears the old output and redoes the work.
"""
import hashlib
import json
import logging
import re
from pathlib import Path

from hdnn.errors import HdnnError, atomic_open

log = logging.getLogger(__name__)

SMALL = 16 << 20   # files up to this size are identified by their content
_SKIP = re.compile(r"(^|/)(log|q|split\d+(utt)?)(/|$)|(^|/)\.[^/]*\.tmp[^/]*$|(^|/)\.done$|\.stamp$")


def _md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def identity(path, exclude=()):
    """A string that changes when the file or directory at ``path`` changes ("missing" when it
    does not exist). ``exclude``: paths whose subtrees do not count (a step's own outputs)."""
    p = Path(path)
    excluded = [Path(e).resolve() for e in exclude]
    if not p.exists():
        return "missing"
    if p.is_dir():
        done = p / ".done"
        if done.is_file():   # a recipe stage's dir: it changes when the stage is redone
            return f"done:{_md5(done)}:{done.stat().st_mtime_ns}"
        h = hashlib.md5()
        for rel, ident in _walk(p, p, excluded):
            h.update(f"{rel}\0{ident}\n".encode())
        return "dir:" + h.hexdigest()
    st = p.stat()
    if st.st_size <= SMALL:
        return "md5:" + _md5(p)
    return f"size:{st.st_size},mtime:{st.st_mtime_ns}"


def _walk(top, d, excluded):
    """(relative path, identity) of the files under d, in sorted order; a subdir holding its own
    .done (another stage's output) counts by its .done, and excluded subtrees not at all."""
    for q in sorted(d.iterdir()):
        rel = q.relative_to(top).as_posix()
        if _SKIP.search(rel) or q.resolve() in excluded:
            continue
        if q.is_dir():
            if (q / ".done").is_file():
                yield rel, identity(q)
            else:
                yield from _walk(top, q, excluded)
        elif q.is_file():
            yield rel, identity(q)


def rspecifier_files(rspecifier):
    """The files a Kaldi rspecifier reads: its table and, for a scp, the archives it names
    (offsets stripped); [] for a pipe."""
    spec = str(rspecifier)
    kind, _, target = spec.partition(":") if re.match(r"^[a-z,]+:", spec) else ("", "", spec)
    if target.endswith("|") or target in ("-", ""):
        return []
    files = [Path(target)]
    if "scp" in kind.split(",") or (not kind and target.endswith(".scp")):
        try:
            lines = Path(target).read_text(encoding="utf-8").splitlines()
        except OSError:
            return files
        arks = {}
        for line in lines:
            parts = line.split(maxsplit=1)
            if len(parts) == 2 and not parts[1].rstrip().endswith("|"):
                arks.setdefault(re.sub(r":\d+(\[.*\])?$", "", parts[1].strip()), None)
        files += [Path(a) for a in arks]
    return files


def make_stamp(inputs, options, exclude=()):
    """{"options": ..., "inputs": ...}; ``inputs`` maps a name to a path or a list of paths
    (their identities are joined), ``options`` to JSON-able values."""
    ids = {}
    for name, paths in inputs.items():
        paths = paths if isinstance(paths, (list, tuple)) else [paths]
        ids[name] = " ".join(identity(p, exclude) for p in paths)
    return {"options": {k: _plain(v) for k, v in options.items()}, "inputs": ids}


def _plain(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def changes(old, new):
    """What differs between two stamps, one phrase each ([] when they agree; a missing or
    unreadable old stamp is one change)."""
    if not old:
        return ["no record of what the earlier output was made from"]
    out = []
    for key in sorted(set(old.get("options", {})) | set(new["options"])):
        a, b = old.get("options", {}).get(key, "<unset>"), new["options"].get(key, "<unset>")
        if a != b:
            out.append(f"option {key}: {a} -> {b}")
    for key in sorted(set(old.get("inputs", {})) | set(new["inputs"])):
        if old.get("inputs", {}).get(key) != new["inputs"].get(key):
            out.append(f"input {key} changed")
    return out


def read_stamp(path):
    """The stamp stored at ``path``, or None when there is none or it cannot be read."""
    try:
        stamp = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def write_stamp(path, stamp):
    with atomic_open(path, encoding="utf-8") as f:
        json.dump(stamp, f, indent=1, sort_keys=True)
        f.write("\n")


def claim(path, stamp, what, earlier=False):
    """Whether the output that ``path`` (a stamp file) describes was made from ``stamp``: True
    when it was (earlier work may be kept); else False, after logging what changed when there
    is a stamp or ``earlier`` work (the caller removes that work, then writes the new stamp)."""
    old = read_stamp(path)
    diff = changes(old, stamp)
    if not diff:
        return True
    if Path(path).exists() or earlier:
        log.info("%s: made from other inputs or options (%s): redoing it", what, "; ".join(diff))
    return False


def stage_stamp(out_dir, command, deps=(), settings=""):
    """The stamp of a recipe stage that made ``out_dir`` by running ``command`` (a list of
    words): the command itself, ``settings`` (options it reads from the recipe's variables),
    and the identity of every word of it that names an existing
    path, and of ``deps`` (paths the command reads without naming them), except ``out_dir``
    and what lies inside it. A `--cmd` option is left out: how the jobs run changes nothing
    they make."""
    command = _without_cmd(command)
    out = Path(out_dir).resolve()
    inputs = {}
    for word in [*command, *deps]:
        p = Path(word)
        if not word or not p.exists():
            continue
        r = p.resolve()
        if r == out or out in r.parents:
            continue
        inputs[word] = identity(p, exclude=[out])
    return {"options": {"command": " ".join(command), "settings": settings}, "inputs": inputs}


def _without_cmd(command):
    words, skip = [], False
    for word in command:
        if skip:
            skip = False
        elif word == "--cmd":
            skip = True
        elif not word.startswith("--cmd="):
            words.append(word)
    return words


def stage_state(out_dir, command, deps=(), settings=""):
    """'complete' when <out_dir>/.done records this command and the same inputs, 'not done'
    when there is no .done, else what changed. A .done of the older plain-text form (the
    command only) counts as complete when it holds the same command."""
    done = Path(out_dir) / ".done"
    try:
        text = done.read_text(encoding="utf-8")
    except FileNotFoundError:
        return "not done"
    except OSError as e:
        raise HdnnError(f"{done}: cannot read it ({e.strerror})") from None
    if not text.lstrip().startswith("{"):
        same = text.strip() in (" ".join(command), " ".join(_without_cmd(command)))
        return "complete" if same else "made by another command"
    diff = changes(read_stamp(done), stage_stamp(out_dir, command, deps, settings))
    return "complete" if not diff else "made from other inputs or options (" + "; ".join(diff) + ")"

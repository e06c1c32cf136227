"""Frame alignments: the `ali.*.gz` archives of transition-ids of a Kaldi alignment dir (read,
written byte-identically, gathered per dir) and pdf-id tables.

An alignment dir (exp/tri3_ali) holds final.mdl, tree, num_jobs and ali.{1..nj}.gz of
transition-ids. Those map to pdf-ids with real `ali-to-pdf` when a Kaldi build is present,
else with the transition model that hdnn.kaldi.gmm_model reads.
"""
import gzip
import re
import shlex
import zlib
from pathlib import Path

import numpy as np
from kaldiio.matio import read_token

from hdnn.errors import HdnnError, atomic_path
from hdnn.kaldi.binaries import kaldi_root, run_kaldi
from hdnn.kaldi.gmm_model import read_transition_model
from hdnn.kaldi.io import read_int_vector, read_int_vectors, table_errors


def write_alignments(path, items):
    """Write (utt, transition-ids) pairs as a gzipped Kaldi binary archive (ali.JOB.gz), atomically
    and byte-identically for the same alignments (no time stamp or name in the gzip header)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0) as f:
            for utt, ali in items:
                a = np.asarray(ali, dtype="<i4")
                pairs = np.empty(len(a), dtype=[("size", "u1"), ("value", "<i4")])
                pairs["size"], pairs["value"] = 4, a
                f.write(utt.encode() + b" \0B\4" + np.int32(len(a)).astype("<i4").tobytes() + pairs.tobytes())


def read_alignments(path):
    """Iterate (utt, int32 transition-ids) over an ali.JOB.gz (or plain) archive."""
    path = Path(path)
    if not path.exists():
        raise HdnnError(f"{path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    with table_errors(str(path)):
        try:
            with opener(path, "rb") as f:
                while (utt := read_token(f)) is not None:
                    yield utt, read_int_vector(f, utt, path)
        except zlib.error as e:
            raise HdnnError(f"{path}: cannot read: truncated or corrupt (zlib: {e})") from None


def num_jobs(ali_dir):
    path = Path(ali_dir) / "num_jobs"
    if not path.exists():
        raise HdnnError(f"{path}: no such file")
    return int(path.read_text().split()[0])


def read_ali_dir(ali_dir):
    """{utt: transition-ids} from all <ali_dir>/ali.JOB.gz, in utterance order (not job order,
    so that sums over them do not depend on how many jobs wrote them)."""
    out = {}
    for job in range(1, num_jobs(ali_dir) + 1):
        out.update(read_alignments(Path(ali_dir) / f"ali.{job}.gz"))
    return sort_by_utt(out)


def sort_by_utt(table):
    """`table` ({utt: ...}) in the byte order of the utterance ids, as Kaldi sorts its tables."""
    return dict(sorted(table.items(), key=lambda kv: kv[0].encode()))


def read_pdf_alignments(rspecifier):
    """Iterate (utt, int32 pdf-ids) over a table of pdf alignments (as `ali-to-pdf` writes)."""
    for utt, ali in read_int_vectors(rspecifier):
        if ali.size and ali.min() < 0:
            raise HdnnError(f"{rspecifier}: alignment of {utt} has a negative pdf-id {int(ali.min())}")
        yield utt, ali


def ali_files(ali_dir):
    """The ali.N.gz files of an alignment dir, in job order."""
    ali_dir = Path(ali_dir)
    files = sorted(ali_dir.glob("ali.*.gz"), key=lambda p: int(re.sub(r"\D", "", p.name) or 0))
    if not files:
        raise HdnnError(f"{ali_dir}: no ali.*.gz alignment files")
    return files


def model_file(ali_dir):
    mdl = Path(ali_dir) / "final.mdl"
    if not mdl.exists():
        raise HdnnError(f"{mdl}: no such file (an alignment dir needs its model)")
    return mdl


def read_ali_dir_pdfs(ali_dir, use_kaldi=None):
    """Iterate (utt, int32 pdf-ids) over the transition-id alignments of `ali_dir`.

    use_kaldi: None = real `ali-to-pdf` when a Kaldi build is present; True/False forces it.
    """
    mdl, files = model_file(ali_dir), ali_files(ali_dir)
    if use_kaldi is None:
        use_kaldi = kaldi_root() is not None
    if use_kaldi:
        return _read_with_kaldi(mdl, files)
    return _read_with_model(read_transition_model(mdl).tid2pdf, mdl, files)


def _read_with_kaldi(mdl, files):
    gunzip = "ark:gunzip -c " + " ".join(shlex.quote(str(f)) for f in files) + " |"
    return read_int_vectors(f"ark:ali-to-pdf {shlex.quote(str(mdl))} {shlex.quote(gunzip)} ark:- |")


def _read_with_model(tid2pdf, mdl, files):
    tid2pdf = np.asarray(tid2pdf)
    for path in files:
        for utt, tids in read_alignments(path):
            if tids.size and (tids.min() < 1 or tids.max() >= len(tid2pdf)):
                raise HdnnError(f"{path}: alignment of {utt} has transition-ids outside "
                                f"[1, {len(tid2pdf) - 1}] of {mdl}")
            yield utt, tid2pdf[tids]


def num_pdfs_of(ali_dir, use_kaldi=None):
    """Number of pdfs (network outputs) of the model in `ali_dir` (`hmm-info` when built)."""
    mdl = model_file(ali_dir)
    if use_kaldi is None:
        use_kaldi = kaldi_root() is not None
    if use_kaldi:
        out = run_kaldi(["hmm-info", str(mdl)]).stdout.decode()
        match = re.search(r"number of pdfs\s+(\d+)", out)
        if not match:
            raise HdnnError(f"{mdl}: hmm-info printed no 'number of pdfs'")
        return int(match[1])
    return int(read_transition_model(mdl).num_pdfs)


def alignment_files(spec):
    """The files an alignment dir (ali.*.gz + final.mdl) or a pdf-id rspecifier is read from."""
    from hdnn.stamps import rspecifier_files

    if Path(spec).is_dir():
        return sorted(Path(spec).glob("ali.*.gz")) + [Path(spec) / "final.mdl"]
    return rspecifier_files(spec)


def read_targets(spec, num_pdfs=None):
    """Pdf targets {utt: int32 ids} from an alignment dir (ali.*.gz + final.mdl) or a pdf-id
    rspecifier (as ali-to-pdf writes); returns (targets, source name, num_pdfs)."""
    if Path(spec).is_dir():
        targets, source = dict(read_ali_dir_pdfs(spec)), f"{spec}/ali.*.gz"
        num_pdfs = num_pdfs or num_pdfs_of(spec)
    else:
        targets, source = dict(read_pdf_alignments(spec)), spec
    if not targets:
        raise HdnnError(f"{source}: no alignments")
    utt, top = max(((u, int(a.max())) for u, a in targets.items() if len(a)), key=lambda x: x[1],
                   default=(None, -1))
    num_pdfs = num_pdfs or top + 1
    if top >= num_pdfs:
        raise HdnnError(f"{source}: utterance {utt} has pdf-id {top}, but there are {num_pdfs} pdfs")
    return targets, source, num_pdfs

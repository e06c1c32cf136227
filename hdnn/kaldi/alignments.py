"""Frame alignments: pdf-id tables, and the `ali.*.gz` of a Kaldi alignment dir.

An alignment dir (exp/tri3_ali) holds final.mdl, tree, num_jobs and ali.{1..nj}.gz of
transition-ids. Those map to pdf-ids with real `ali-to-pdf` when a Kaldi build is present,
else with the transition model that hdnn.kaldi.gmm_model reads.
"""
import gzip
import re
import shlex
from pathlib import Path

import numpy as np
from kaldiio.matio import read_token

from hdnn.errors import HdnnError
from hdnn.kaldi.binaries import kaldi_root, run_kaldi
from hdnn.kaldi.gmm_model import read_transition_model
from hdnn.kaldi.io import read_int_vector, read_int_vectors, table_errors


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


def _model(ali_dir):
    mdl = Path(ali_dir) / "final.mdl"
    if not mdl.exists():
        raise HdnnError(f"{mdl}: no such file (an alignment dir needs its model)")
    return mdl


def read_ali_dir(ali_dir, use_kaldi=None):
    """Iterate (utt, int32 pdf-ids) over the transition-id alignments of `ali_dir`.

    use_kaldi: None = real `ali-to-pdf` when a Kaldi build is present; True/False forces it.
    """
    mdl, files = _model(ali_dir), ali_files(ali_dir)
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
        source = str(path)
        with table_errors(source), gzip.open(path, "rb") as f:
            while (utt := read_token(f)) is not None:
                tids = read_int_vector(f, utt, source)
                if tids.size and (tids.min() < 1 or tids.max() >= len(tid2pdf)):
                    raise HdnnError(f"{source}: alignment of {utt} has transition-ids outside "
                                    f"[1, {len(tid2pdf) - 1}] of {mdl}")
                yield utt, tid2pdf[tids]


def num_pdfs_of(ali_dir, use_kaldi=None):
    """Number of pdfs (network outputs) of the model in `ali_dir` (`hmm-info` when built)."""
    mdl = _model(ali_dir)
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

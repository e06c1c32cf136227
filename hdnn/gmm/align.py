"""Forced alignment (compile-train-graphs, align-equal-compiled, gmm-align-compiled),
ali-to-pdf, ali-to-phones and phone CTMs. The ali.JOB.gz archives themselves are read and
written by hdnn.kaldi.alignments.
"""
import logging
import zlib
from dataclasses import dataclass, field

import numpy as np

from hdnn.errors import HdnnError
from hdnn.gmm.wheels import kaldifst, khg
from hdnn.kaldi.gmm_model import AmDiagGmm, DiagGmm

log = logging.getLogger(__name__)

ACOUSTIC_SCALE = 0.1
TRANSITION_SCALE = 1.0
SELF_LOOP_SCALE = 0.1


class GraphCompiler:
    """compile-train-graphs: one linear-in-words training graph per transcript, without
    transition probabilities (they are added at alignment time, as Kaldi does)."""

    def __init__(self, ctx, ktm, lang):
        opts = khg.TrainingGraphCompilerOptions()
        opts.transition_scale = 0.0
        opts.self_loop_scale = 0.0
        self.compiler = khg.TrainingGraphCompiler(trans_model=ktm, ctx_dep=ctx, lex_fst=lang.fst("L.fst"),
                                                  disambig_syms=lang.disambig, opts=opts)

    def compile(self, word_ids, utt=""):
        graph = self.compiler.compile_graph_from_text(list(word_ids))
        if graph.num_states == 0:
            raise HdnnError(f"utterance {utt}: empty training graph (words not in L.fst?)")
        return graph


def equal_align(graph, num_frames, utt):
    """align-equal-compiled: a random path of exactly `num_frames` through `graph`, or None."""
    ok, path = kaldifst.equal_align(ifst=graph, length=num_frames, rand_seed=zlib.crc32(utt.encode()) & 0x7FFFFFFF)
    if not ok:
        return None
    ok, tids, _, _ = kaldifst.get_linear_symbol_sequence(path)
    return np.asarray(tids, dtype=np.int32) if ok and len(tids) == num_frames else None


@dataclass
class AlignResult:
    """Alignments of one job and Kaldi's counters (num_done, num_retried, num_error)."""

    alignments: dict = field(default_factory=dict)
    failed: list = field(default_factory=list)
    retried: list = field(default_factory=list)
    tot_like: float = 0.0
    frames: int = 0

    def add(self, other):
        self.alignments.update(other.alignments)
        self.failed += other.failed
        self.retried += other.retried
        self.tot_like += other.tot_like
        self.frames += other.frames
        return self

    def log_problems(self, beam, retry_beam):
        for utt in self.retried:
            log.info("retried utterance %s with beam %g", utt, retry_beam)
        for utt in self.failed:
            log.warning("did not successfully align utterance %s (beam %g, retry beam %g): skipped",
                        utt, beam, retry_beam)

    def summary(self):
        like = self.tot_like / max(self.frames, 1)
        return (f"done {len(self.alignments)}, retried {len(self.retried)}, failed {len(self.failed)}; "
                f"average log-likelihood per frame {like:.3f} over {self.frames} frames")


def boost_silence(am, tm, silence_phones, boost):
    """gmm-boost-silence: scale the weights of the silence phones' pdfs (not renormalised)."""
    if boost == 1.0:
        return am
    rows = np.isin(tm.tuples[:, 0], list(silence_phones))
    sil_pdfs = set(np.unique(tm.tuples[rows, 2:]).tolist())
    return AmDiagGmm([DiagGmm(g.weights * boost, g.means_invvars, g.inv_vars) if p in sil_pdfs else g
                      for p, g in enumerate(am.pdfs)])


def mapped_decodable(tid_cols):
    """The decodable of align-compiled-mapped / latgen-faster-mapped: a matrix of pdf
    log-likelihoods (an nnet's) mapped to transition-id columns and scaled as Kaldi does."""
    def decodable(loglikes):
        return khg.DecodableCtc(np.ascontiguousarray(ACOUSTIC_SCALE * loglikes[:, tid_cols], dtype=np.float32))
    return decodable


def align_utterances(ktm, kam, graphs, feats, beam=10.0, retry_beam=40.0, careful=False, decodable=None):
    """gmm-align-compiled over {utt: graph} and {utt: features}: Viterbi alignments; with
    `decodable` (features -> a khg decodable, e.g. mapped_decodable), align-compiled-mapped.

    An utterance failing at `beam` is retried at `retry_beam`, then skipped and counted
    (in the result's `retried` and `failed` lists).
    """
    config = khg.AlignConfig()
    config.beam, config.retry_beam, config.careful = beam, retry_beam, careful
    result = AlignResult()
    for utt, graph in graphs.items():
        x = np.ascontiguousarray(feats[utt], dtype=np.float32)
        g = graph.copy()
        khg.add_transition_probs(trans_model=ktm, disambig_syms=[], transition_scale=TRANSITION_SCALE,
                                 self_loop_scale=SELF_LOOP_SCALE, fst=g)
        if decodable is None:
            dec = khg.DecodableAmDiagGmmScaled(am=kam, tm=ktm, feats=x, scale=ACOUSTIC_SCALE)
        else:
            dec = decodable(x)
        done, err, retried, like, frames, ali, _ = khg.align_utterance_wrapper(
            config=config, utt=utt, acoustic_scale=ACOUSTIC_SCALE, fst=g, decodable=dec, num_done=0,
            num_error=0, num_retried=0, tot_like=0.0, frame_count=0)
        if retried:
            result.retried.append(utt)
        if not done or err or len(ali) != len(x):
            result.failed.append(utt)
            continue
        result.alignments[utt] = np.asarray(ali, dtype=np.int32)
        result.tot_like += like
        result.frames += frames
    return result


# ---------------------------------------------------------------- ali-to-pdf / ali-to-phones

def split_to_phones(tm, ali):
    """[(phone, start frame, num frames)] of an alignment (SplitToPhones for reordered graphs)."""
    ali = np.asarray(ali)
    if len(ali) == 0:
        return []
    starts = np.flatnonzero(tm.phone_starts(ali))
    ends = np.append(starts[1:], len(ali))
    return [(int(tm.tid2phone[ali[s]]), int(s), int(e - s)) for s, e in zip(starts, ends)]


def ali_to_pdf(tm, ali, utt=None, model=None):
    """pdf-ids of an alignment's transition-ids; an alignment with a transition-id the model
    does not have is an HdnnError naming the utterance and the model."""
    ali = np.asarray(ali)
    if len(ali) and (ali.min() < 1 or ali.max() >= len(tm.tid2pdf)):
        bad = int(ali.max() if ali.max() >= len(tm.tid2pdf) else ali.min())
        raise HdnnError(f"utterance {utt}: transition-id {bad} is not one of the {len(tm.tid2pdf) - 1} of "
                        f"{model or 'the model'} (alignments made with another model?)")
    return tm.tid2pdf[ali]


def ali_to_phones(tm, ali, per_frame=False):
    """The phone sequence of an alignment, or the phone of every frame."""
    if per_frame:
        return tm.tid2phone[np.asarray(ali)]
    return np.array([p for p, _, _ in split_to_phones(tm, ali)], dtype=np.int32)


def phone_ctm_lines(tm, utt, ali, frame_shift=0.01, phone_table=None):
    """CTM lines `utt 1 start duration phone` (ali-to-phones --ctm-output)."""
    lines = []
    for phone, start, length in split_to_phones(tm, ali):
        name = phone_table[phone] if phone_table else str(phone)
        lines.append(f"{utt} 1 {start * frame_shift:.2f} {length * frame_shift:.2f} {name}")
    return lines

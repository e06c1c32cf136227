"""Triphone training on delta features, as Kaldi's steps/train_deltas.sh: tree statistics,
phone clustering, tree building, gmm-init-model, convert-ali, then Viterbi EM."""
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path


from hdnn.errors import HdnnError
from hdnn.gmm.mixup import mix_up
from hdnn.gmm.model import GmmSystem
from hdnn.gmm.mono import read_int_lines
from hdnn.gmm.train import (TrainingData, Trainer, claim_gmm_dir, resume_point, run_em, set_jobs,
                            write_job_alignments)
from hdnn.gmm.tree_build import (TreeBuilder, acc_tree_stats, cluster_phones, convert_alignment,
                                 init_model, read_roots)
from hdnn.kaldi.alignments import num_jobs, read_ali_dir
from hdnn.kaldi.gmm_model import HmmTopology

log = logging.getLogger(__name__)


@dataclass
class DeltasConfig:
    """The configuration section of steps/train_deltas.sh."""

    num_iters: int = 35
    max_iter_inc: int = 25
    realign_iters: tuple = (10, 20, 30)
    beam: float = 10.0
    retry_beam: float = 40.0
    careful: bool = False
    boost_silence: float = 1.0
    power: float = 0.25
    cluster_thresh: float = -1.0
    context_width: int = 3
    central_position: int = 1


def build_tree(data, lang, ali_system, alignments, num_leaves, cfg):
    """acc-tree-stats, cluster-phones (+ extra questions), compile-questions and build-tree.
    Returns (tree, tree statistics)."""
    utts = [u for u in alignments if u in data.feats]
    ci_phones = [p for line in read_int_lines(lang.dir / "phones" / "context_indep.int") for p in line]
    stats = acc_tree_stats(ali_system.tm, [data.feats[u] for u in utts], [alignments[u] for u in utts],
                           ci_phones, cfg.context_width, cfg.central_position)
    log.info("acc-tree-stats: %d utterances, %d distinct events", len(utts), len(stats.count))
    sets = read_int_lines(lang.dir / "phones" / "sets.int")
    questions = cluster_phones(stats, sets, central_position=cfg.central_position)
    extra = lang.dir / "phones" / "extra_questions.int"
    if extra.exists():
        questions += read_int_lines(extra)
    log.info("cluster-phones: %d questions (with extra questions)", len(questions))
    topo = HmmTopology.from_text((lang.dir / "topo").read_text(), lang.dir / "topo")
    roots = read_roots(lang.dir / "phones" / "roots.int")
    builder = TreeBuilder(stats, roots, questions, topo, cfg.central_position)
    tree = builder.build(max_leaves=num_leaves, cluster_thresh=cfg.cluster_thresh)
    return tree, stats, topo


def train_deltas(num_leaves, tot_gauss, data_dir, lang_dir, ali_dir, out_dir, nj=None, config=None,
                 cmd="run.pl", progress=True):
    """steps/train_deltas.sh <num-leaves> <tot-gauss> <data> <lang> <ali-dir> <dir>.

    An interrupted run resumes from its last <x>.mdl; a finished one (final.mdl) is not redone.
    """
    cfg = config or DeltasConfig()
    out, ali_dir = Path(out_dir), Path(ali_dir)
    claim_gmm_dir(out, data_dir, lang_dir, ali_dir,
                  {"num_leaves": num_leaves, "tot_gauss": tot_gauss, "config": dataclasses.asdict(cfg)})
    start = resume_point(out)
    if start is None and (out / "final.mdl").exists():
        log.info("%s: already trained (final.mdl exists)", out)
        return GmmSystem.load(out)
    out.mkdir(parents=True, exist_ok=True)
    data = TrainingData.load(data_dir, lang_dir, nj or num_jobs(ali_dir))
    set_jobs(out, data)
    incgauss = (tot_gauss - num_leaves) // cfg.max_iter_inc
    if start is None:
        system, _ = init_triphones(data, ali_dir, out, num_leaves, cfg)
        start = 1
    else:
        system = GmmSystem.load(out, f"{start}.mdl")
        log.info("resuming from %s", out / f"{start}.mdl")
    trainer = Trainer(data, system, out, cmd, boost_silence=cfg.boost_silence, beam=cfg.beam,
                      retry_beam=cfg.retry_beam, careful=cfg.careful, model=f"{start}.mdl", progress=False)
    return run_em(trainer, out, start, cfg.num_iters, cfg.realign_iters,
                  numgauss_at=lambda x: num_leaves + incgauss * min(x - 1, cfg.max_iter_inc),
                  beam_at=lambda x: cfg.beam, power=cfg.power, desc="train_deltas", progress=progress)


def init_triphones(data, ali_dir, out, num_leaves, cfg):
    """Tree building, gmm-init-model + gmm-mixup (-> tree, 1.mdl) and convert-ali (-> ali.JOB.gz)."""
    ali_system = GmmSystem.load(ali_dir)
    old_alis = read_ali_dir(ali_dir)
    if not old_alis:
        raise HdnnError(f"{ali_dir}: no alignments in ali.*.gz")
    tree, stats, topo = build_tree(data, data.lang, ali_system, old_alis, num_leaves, cfg)
    system, occs = init_model(tree, topo, stats)
    system = system.replaced(am=mix_up(system.am, occs, num_leaves, power=1.0))  # gmm-mixup
    cache, alignments = {}, {}
    for u, ali in old_alis.items():
        alignments[u] = convert_alignment(ali_system.tm, system.tm, tree, ali, cache)
    write_job_alignments(out, data.jobs, alignments)
    log.info("convert-ali: %d alignments converted", len(alignments))
    system.save(out, "1.mdl")
    log.info("tree: %d leaves; gmm-init-model: %d Gaussians", tree.num_pdfs, system.am.num_gauss)
    return system, alignments

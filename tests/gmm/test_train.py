"""GMM training: train_mono, train_deltas and the tree building, on a small espeak corpus."""
import gzip
import logging
import os
import re
import subprocess

import numpy as np
import pytest

from hdnn.gmm.align import split_to_phones
from hdnn.kaldi.alignments import read_ali_dir
from hdnn.kaldi.gmm_model import read_gmm_model, read_transition_model
from hdnn.kaldi.tree import PDF_CLASS, read_tree


def final_like(log_file):
    """The average log-likelihood per frame of the last iteration in a training log."""
    return float(re.findall(r"avg like (-?[\d.]+)", log_file.read_text())[-1])


def split_keys(emap):
    """The keys asked by the SplitEventMaps of a tree."""
    from hdnn.kaldi.tree import SplitEventMap, TableEventMap

    if isinstance(emap, SplitEventMap):
        return {emap.key} | split_keys(emap.yes) | split_keys(emap.no)
    if isinstance(emap, TableEventMap):
        return set().union(*(split_keys(c) for c in emap.table if c is not None))
    return set()


def test_train_mono_outputs(espeak_corpus, espeak_mono):
    names = {p.name for p in espeak_mono.iterdir()}
    # other tests may add graph/ and decode_*/ beside the training outputs
    assert {"ali.1.gz", "ali.2.gz", "final.mdl", "final.occs", "log", "num_jobs", "tree"} <= names
    # no temporaries or iteration models left; .stamp records what the models were made from
    assert not [n for n in names if (n.startswith(".") and n != ".stamp") or n.endswith(".tmp") or n[0].isdigit()], names
    assert (espeak_mono / "num_jobs").read_text().strip() == "2"
    tm, am = read_gmm_model(espeak_mono / "final.mdl")
    tree = read_tree(espeak_mono / "tree")
    assert (tree.N, tree.P) == (1, 0) and am.num_pdfs == tree.num_pdfs == tm.num_pdfs
    assert tree.num_pdfs < am.num_gauss <= 500
    alis = read_ali_dir(espeak_mono)
    utts = (espeak_corpus.data / "utt2spk").read_text().split()[::2]
    assert sorted(alis) == sorted(utts)
    log = (espeak_mono / "log" / "train_mono.log").read_text()
    assert "iteration 39:" in log
    assert re.search(r"iteration 38: aligned \(beam 10\): done 120, retried \d+, failed 0", log)
    first = float(re.findall(r"avg like (-?[\d.]+)", log)[0])
    assert final_like(espeak_mono / "log" / "train_mono.log") > first + 10


def test_train_deltas_builds_a_better_triphone_system(espeak_mono, espeak_tri):
    tree = read_tree(espeak_tri / "tree")
    tm, am = read_gmm_model(espeak_tri / "final.mdl")
    mono = read_tree(espeak_mono / "tree")
    assert (tree.N, tree.P) == (3, 1)
    assert mono.num_pdfs < tree.num_pdfs <= 200 and tree.num_pdfs % 8 == 0
    assert tree.num_pdfs < am.num_gauss <= 1200 * 1.05  # SplitByCount rounds per pdf
    assert {0, 2, PDF_CLASS} <= split_keys(tree.to_pdf)  # questions on both contexts and the state
    assert final_like(espeak_tri / "log" / "train_deltas.log") > final_like(espeak_mono / "log" / "train_mono.log")
    assert len(read_ali_dir(espeak_tri)) == len(read_ali_dir(espeak_mono))


def test_convert_ali_keeps_phones_and_states(espeak_corpus, espeak_mono, espeak_tri):
    from hdnn.gmm.tree_build import convert_alignment

    old = read_transition_model(espeak_mono / "final.mdl")
    new = read_transition_model(espeak_tri / "final.mdl")
    tree = read_tree(espeak_tri / "tree")
    for utt, ali in list(read_ali_dir(espeak_mono).items())[:20]:
        conv = convert_alignment(old, new, tree, ali)
        assert np.array_equal(new.tid2phone[conv], old.tid2phone[ali])
        assert np.array_equal(new.tid2hmm_state[conv], old.tid2hmm_state[ali])
        assert np.array_equal(new.is_self_loop[conv], old.is_self_loop[ali])
        phones = [p for p, _, _ in split_to_phones(old, ali)]
        assert [p for p, _, _ in split_to_phones(new, conv)] == phones


def test_tree_building_finds_the_context_that_matters():
    """Phone 2's data depends only on its right neighbour: the first split must ask about it."""
    from hdnn.gmm.tree_build import TreeBuilder, TreeStats
    from hdnn.kaldi.gmm_model import HmmTopology
    from tests.gmm.test_formats import TOPO

    rng = np.random.default_rng(0)
    events, feats = [], []
    for left in (3, 4, 5, 6):
        for right in (3, 4, 5, 6):
            for pdf_class in range(3):
                shift = 4.0 if right in (5, 6) else 0.0
                events.append(np.tile([left, 2, right, pdf_class], (50, 1)))
                feats.append(rng.normal(shift + pdf_class, 1.0, size=(50, 3)))
    stats = TreeStats.from_frames(np.concatenate(events), np.concatenate(feats))
    roots = [([1], True, False), ([2], True, True), ([3], True, True), ([4], True, True), ([5], True, True),
             ([6], True, True)]
    questions = [[3, 4], [5, 6], [3, 5], [4, 6], [3, 4, 5, 6]]
    builder = TreeBuilder(stats, roots, questions, HmmTopology.from_text(TOPO))
    best = builder.best_split(np.arange(len(stats.count)))
    assert best[1] == 2 and set(best[2]) in ({5, 6}, {3, 4})  # key 2: the right phone
    tree = builder.build(max_leaves=12, thresh=10.0, cluster_thresh=0.0, round_num_leaves=False)
    assert tree.compute([3, 2, 5], 1) != tree.compute([3, 2, 3], 1)
    assert tree.compute([3, 2, 5], 1) == tree.compute([4, 2, 6], 1)  # the left context does not matter
    assert tree.compute([0, 2, 3], 0) != tree.compute([0, 2, 3], 2)
    assert tree.to_pdf.map({0: 3, 1: 1, 2: 4, PDF_CLASS: 2}) is not None  # unseen phone 1 still answers


def test_train_mono_resumes_after_interruption(espeak_corpus, tmp_path, monkeypatch, caplog):
    import hdnn.gmm.train as train
    from hdnn.gmm.mono import MonoConfig, train_mono

    caplog.set_level(logging.INFO)
    cfg = MonoConfig(num_iters=4, max_iter_inc=3, totgauss=200, realign_iters=(1,))  # 3 reads the old alignments
    real = train.estimate
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "estimate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_mono(espeak_corpus.data, espeak_corpus.lang, tmp_path / "mono", nj=1, config=cfg, progress=False)
    assert train.resume_point(tmp_path / "mono") == 3 and not (tmp_path / "mono" / "final.mdl").exists()
    monkeypatch.setattr(train, "estimate", real)
    # resumed with another --nj: the alignments of the one job are regrouped into two jobs' files
    system = train_mono(espeak_corpus.data, espeak_corpus.lang, tmp_path / "mono", nj=2, config=cfg,
                        progress=False)
    assert (tmp_path / "mono" / "final.mdl").exists() and train.resume_point(tmp_path / "mono") is None
    assert "resuming from" in caplog.text
    assert system.am.num_gauss > system.am.num_pdfs
    assert sorted(p.name for p in (tmp_path / "mono").glob("ali.*.gz")) == ["ali.1.gz", "ali.2.gz"]
    again = train_mono(espeak_corpus.data, espeak_corpus.lang, tmp_path / "mono", nj=2, config=cfg, progress=False)
    assert again.am.num_gauss == system.am.num_gauss and "already trained" in caplog.text
    train_mono(espeak_corpus.data, espeak_corpus.lang, tmp_path / "straight", nj=1, config=cfg, progress=False)
    assert (tmp_path / "straight" / "final.mdl").read_bytes() == (tmp_path / "mono" / "final.mdl").read_bytes()


def test_bad_inputs_give_one_line_errors(espeak_corpus, espeak_mono, tmp_path):
    from tests.gmm.fixtures import run_step

    with pytest.raises(subprocess.CalledProcessError) as e:
        run_step("train_deltas", 100, 500, espeak_corpus.data, espeak_corpus.lang, tmp_path / "nothing", tmp_path / "x")
    assert "error:" in e.value.stderr and "nothing/num_jobs: no such file" in e.value.stderr
    with pytest.raises(subprocess.CalledProcessError) as e:
        run_step("align_si", "--nj", 50, espeak_corpus.data, espeak_corpus.lang, espeak_mono, tmp_path / "ali")
    assert "cannot split 6 speakers into 50 jobs" in e.value.stderr
    bad = tmp_path / "bad_mdl"
    bad.mkdir()
    (bad / "tree").write_bytes((espeak_mono / "tree").read_bytes())
    (bad / "final.mdl").write_bytes((espeak_mono / "final.mdl").read_bytes()[:5000])
    with pytest.raises(subprocess.CalledProcessError) as e:
        run_step("align_si", "--nj", 1, espeak_corpus.data, espeak_corpus.lang, bad, tmp_path / "ali")
    assert re.search(r"final\.mdl: .* at byte \d+", e.value.stderr)
    assert not (tmp_path / "ali" / "ali.1.gz").exists()


# ---------------------------------------------------------------- real Kaldi

def _kaldi_recipe_dir(kaldi, tmp_path):
    """A scratch Kaldi recipe dir (steps, utils, path.sh) and the environment to run it in."""
    from hdnn.kaldi.binaries import kaldi_env

    for name in ("steps", "utils"):
        (tmp_path / name).symlink_to(kaldi / "egs" / "wsj" / "s5" / name)
    env = kaldi_env()
    env["PATH"] = f"{tmp_path / 'utils'}:{env['PATH']}"
    return env


@pytest.mark.kaldi
def test_kaldi_accepts_our_alignments(kaldi, espeak_corpus, espeak_mono, espeak_tri):
    from hdnn.gmm.align import ali_to_phones
    from hdnn.kaldi.binaries import run_kaldi

    for exp in (espeak_mono, espeak_tri):
        tm = read_transition_model(exp / "final.mdl")
        ours = {}
        with gzip.open(exp / "ali.1.gz") as f:
            raw = f.read()
        out = run_kaldi(["ali-to-pdf", str(exp / "final.mdl"), "ark:-", "ark,t:-"], input=raw).stdout.decode()
        phones = run_kaldi(["ali-to-phones", str(exp / "final.mdl"), "ark:-", "ark,t:-"], input=raw).stdout.decode()
        ours = {u: a for u, a in read_ali_dir(exp).items()}
        lines = out.strip().splitlines()
        assert len(lines) > 10
        for line in lines:
            utt, *pdfs = line.split()
            assert [int(p) for p in pdfs] == tm.tid2pdf[ours[utt]].tolist()
        for line in phones.strip().splitlines():
            utt, *ph = line.split()
            assert [int(p) for p in ph] == ali_to_phones(tm, ours[utt]).tolist()
        shown = run_kaldi(["show-transitions", str(espeak_corpus.lang / "phones.txt"), str(exp / "final.mdl")])
        assert shown.stdout.decode().count("Transition-state") == tm.num_transition_states


@pytest.mark.kaldi
def test_we_read_kaldi_trained_models(kaldi, espeak_corpus, tmp_path):
    """Kaldi's own steps/train_mono.sh and train_deltas.sh; their tree and final.mdl read here."""
    from hdnn.gmm.train import align_si
    from hdnn.gmm.model import load_gmm_system
    from hdnn.kaldi.gmm_model import HmmTopology, TransitionModel

    env = _kaldi_recipe_dir(kaldi, tmp_path)
    data = tmp_path / "train"
    data.mkdir()
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", "feats.scp", "cmvn.scp"):
        (data / name).write_bytes((espeak_corpus.data / name).read_bytes())
    run = lambda *cmd: subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True)  # noqa: E731
    run("steps/train_mono.sh", "--nj", "2", "--num-iters", "10", "--totgauss", "300", "--cmd", "utils/run.pl",
        "train", str(espeak_corpus.lang), "mono")
    run("steps/train_deltas.sh", "--num-iters", "5", "--realign-iters", "3", "--cmd", "utils/run.pl", "150", "600",
        "train", str(espeak_corpus.lang), "mono", "tri1")
    topo = HmmTopology.from_text((espeak_corpus.lang / "topo").read_text())
    for exp in ("mono", "tri1"):
        tree = read_tree(tmp_path / exp / "tree")
        tm, am = read_gmm_model(tmp_path / exp / "final.mdl")
        assert tm.tuples.tolist() == TransitionModel.from_tree(tree, topo).tuples.tolist()
        ctx, ktm, kam = load_gmm_system(tmp_path / exp)
        assert ctx.num_pdfs == tree.num_pdfs == kam.num_pdfs == am.num_pdfs
        assert list(ktm.transition_id_to_pdf_array())[1:] == tm.tid2pdf[1:].tolist()
    # our aligner with Kaldi's triphone model: everything aligns
    res = align_si(espeak_corpus.data, espeak_corpus.lang, tmp_path / "tri1", tmp_path / "tri1_ali", nj=2)
    assert not res.failed and len(res.alignments) == 120
    assert os.path.exists(tmp_path / "tri1_ali" / "ali.2.gz")


def test_train_mono_is_repeatable_in_one_process_whatever_nj(espeak_corpus, tmp_path):
    """Mixing-up draws from C rand(); two runs in one process (whose rand() state has moved on)
    must still write the same model, byte for byte, and so must a run with another --nj
    (each job adds its speakers' statistics to exact sums)."""
    from hdnn.gmm.mono import MonoConfig, train_mono

    cfg = MonoConfig(num_iters=5, max_iter_inc=4, totgauss=300, realign_iters=(1, 2, 3, 4))
    for name, nj in (("a", 1), ("b", 1), ("c", 3)):
        train_mono(espeak_corpus.data, espeak_corpus.lang, tmp_path / name, nj=nj, config=cfg, progress=False)
    for name in ("final.mdl", "ali.1.gz"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "c" / "final.mdl").read_bytes() == (tmp_path / "a" / "final.mdl").read_bytes()
    alis = [read_ali_dir(tmp_path / name) for name in ("a", "c")]
    assert list(alis[0]) == list(alis[1])
    assert all(np.array_equal(alis[0][u], alis[1][u]) for u in alis[0])


def test_mix_up_follows_kaldis_split_by_count():
    from hdnn.gmm.mixup import mix_up, split_targets
    from hdnn.kaldi.gmm_model import AmDiagGmm, DiagGmm

    occs = np.array([1000.0, 250.0, 45.0, 0.0])
    # min-count 20 caps each pdf below occ / 20 Gaussians, whatever the target
    assert split_targets(occs, 100, power=1.0, min_count=20.0).tolist() == [49, 12, 2, 1]
    targets = split_targets(occs, 12, power=1.0, min_count=20.0)
    assert targets.sum() == 12 and targets[0] > targets[1] > 1 and targets[3] == 1
    rng = np.random.default_rng(0)
    pdfs = [DiagGmm.from_means_vars([1.0], rng.normal(size=(1, 3)), rng.uniform(0.5, 2, size=(1, 3)))
            for _ in occs]
    am = mix_up(AmDiagGmm(pdfs), occs, 12, power=1.0)
    assert [g.num_gauss for g in am.pdfs] == targets.tolist()
    big = am.pdfs[0]
    assert np.isclose(big.weights.sum(), 1.0)
    assert np.allclose(big.inv_vars, pdfs[0].inv_vars)  # split Gaussians keep their variances
    means = big.means_invvars / big.inv_vars
    assert np.allclose(big.weights @ means, pdfs[0].means_invvars / pdfs[0].inv_vars, atol=1e-6)
    assert len(np.unique(means.round(6), axis=0)) == big.num_gauss  # every copy perturbed apart
    again = mix_up(AmDiagGmm(pdfs), occs, 12, power=1.0)
    assert all(np.array_equal(a.means_invvars, b.means_invvars) for a, b in zip(am.pdfs, again.pdfs))

"""A rerun never reuses work made from other inputs or options: it skips what was made from the
same ones and redoes the rest, naming what changed in its log."""
import json
import os
import shutil

import kaldiio
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from tests.faults.common import assert_one_line_error, run
from tests.nnet.toy import FAST

SWEEP = ("--min-lmwt", 10, "--max-lmwt", 10, "--word-ins-penalty", "0.0", "--progress", "false")


def _gmm_loglikes(espeak_corpus, espeak_mono, path, noise=0.0):
    from hdnn.gmm.decode import GmmScorer
    from hdnn.gmm.features import iter_cmvn_deltas
    from hdnn.gmm.model import GmmSystem

    scorer = GmmScorer(GmmSystem.load(espeak_mono).am)
    rng = np.random.default_rng(0)
    with threadpool_limits(limits=1):
        mats = {u: scorer(x) for u, x in iter_cmvn_deltas(espeak_corpus.data)}
    mats = {u: (m + noise * rng.standard_normal(m.shape)).astype(np.float32) for u, m in mats.items()}
    kaldiio.save_ark(str(path) + ".ark", mats, scp=str(path) + ".scp")
    return f"scp:{path}.scp"


def test_a_decode_rerun_with_new_loglikelihoods_decodes_again(espeak_corpus, espeak_mono, espeak_graph, tmp_path):
    good = _gmm_loglikes(espeak_corpus, espeak_mono, tmp_path / "good")
    noisy = _gmm_loglikes(espeak_corpus, espeak_mono, tmp_path / "noisy", noise=40.0)
    out, fresh = tmp_path / "decode", tmp_path / "fresh"
    args = (espeak_graph, espeak_corpus.data, espeak_mono)
    assert run("decode_mapped", "--nj", 2, *SWEEP, *args, noisy, fresh).returncode == 0
    assert run("decode_mapped", "--nj", 2, *SWEEP, *args, good, out).returncode == 0
    good_wer = (out / "scoring_kaldi" / "best_wer").read_text()
    job_mtime = (out / "tra" / "10_0.0.1.tra").stat().st_mtime_ns
    assert run("decode_mapped", "--nj", 2, *SWEEP, *args, good, out).returncode == 0  # same inputs: kept
    assert (out / "tra" / "10_0.0.1.tra").stat().st_mtime_ns == job_mtime
    p = run("decode_mapped", "--nj", 2, *SWEEP, *args, noisy, out)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "input log-likelihoods changed" in p.stderr
    assert (out / "tra" / "10_0.0.tra").read_text() == (fresh / "tra" / "10_0.0.tra").read_text()
    assert (out / "scoring_kaldi" / "best_wer").read_text() != good_wer


def test_a_decode_rerun_with_another_beam_or_nj_decodes_again(espeak_corpus, espeak_mono, espeak_graph, tmp_path):
    ll = _gmm_loglikes(espeak_corpus, espeak_mono, tmp_path / "ll")
    out = tmp_path / "decode"
    args = (espeak_graph, espeak_corpus.data, espeak_mono, ll, out)
    assert run("decode_mapped", "--nj", 2, *SWEEP, *args).returncode == 0
    p = run("decode_mapped", "--nj", 2, "--beam", 0.5, "--retry-beam", 1, "--max-active", 3, "--min-active", 1, *SWEEP, *args)
    assert "option beam: 13.0 -> 0.5" in p.stderr and p.returncode == 0
    stats = dict(line.split() for line in (out / "decode_stats.txt").read_text().splitlines())
    assert int(stats["retried"]) > 0  # the narrow beam was really searched with
    p = run("decode_mapped", "--nj", 3, *SWEEP, *args)
    assert "option nj: 2 -> 3" in p.stderr and p.returncode == 0
    assert (out / "tra" / "10_0.0.2.tra").read_text() != ""


def test_a_feature_rerun_with_other_options_recomputes(espeak_corpus, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(espeak_corpus.data, data, ignore=shutil.ignore_patterns("feats.scp", "cmvn.scp", "conf"))
    for bins in (40, 23):
        (tmp_path / "fbank.conf").write_text(f"--num-mel-bins={bins}\n")
        p = run("make_fbank", "--nj", 2, "--progress", "false", "--fbank-config", tmp_path / "fbank.conf",
                data, tmp_path / "log", tmp_path / "fbank")
        assert p.returncode == 0, p.stderr[-2000:]
        dims = {m.shape[1] for _, m in kaldiio.load_scp_sequential(str(data / "feats.scp"))}
        assert dims == {bins}
    assert "option features" in (tmp_path / "log" / "make_fbank_data.1.log").read_text() or "redoing" in p.stderr


def _train(data, ali, exp, *opts):
    return run("train", *FAST, "--cv-fraction", 0.25, "--model-preset", "dnn-small", *opts, data, ali, exp)


def test_a_training_rerun_with_another_splice_starts_again(toy_data, tmp_path):
    data, ali = toy_data
    exp = tmp_path / "exp"
    assert _train(data, ali, exp, "--splice", 5, "--max-epochs-this-run", 1).returncode == 0  # an unfinished run
    assert json.loads((exp / "feature_opts.json").read_text())["splice"] == 5
    p = _train(data, ali, exp, "--splice", 2, "--max-iters", 2)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "option splice: 5 -> 2" in (exp / "log" / "train.log").read_text()
    assert json.loads((exp / "feature_opts.json").read_text())["splice"] == 2
    from hdnn.nnet.models import load_model

    assert load_model(exp / "final.pt").config["input_dim"] == 5 * json.loads((exp / "feature_opts.json").read_text())["input_dim"]


def test_no_accepted_epoch_is_an_error_and_a_corrected_learning_rate_takes_effect(toy_data, tmp_path):
    data, ali = toy_data
    exp = tmp_path / "exp"
    p = _train(data, ali, exp, "--learn-rate", 1e-30)
    assert_one_line_error(p, str(exp), "no epoch lowered the CV loss")
    assert not (exp / "final.pt").exists()
    p = _train(data, ali, exp, "--learn-rate", 1e-30)  # the same command again: the same error, not "trained"
    assert_one_line_error(p, "no epoch lowered the CV loss")
    p = _train(data, ali, exp, "--learn-rate", 0.008, "--max-iters", 2)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "option learn_rate: 1e-30 -> 0.008" in (exp / "log" / "train.log").read_text()
    assert any("_lr0.008_" in f.name for f in (exp / "nnet").iterdir())


def test_more_epochs_continue_a_finished_run_as_if_asked_for_from_the_start(toy_data, tmp_path):
    data, ali = toy_data
    short, long_ = tmp_path / "short", tmp_path / "long"
    opts = ("--keep-lr-iters", 3)  # no early stop: every epoch runs
    assert _train(data, ali, short, *opts, "--max-iters", 1).returncode == 0
    assert _train(data, ali, short, *opts, "--max-iters", 2).returncode == 0
    assert _train(data, ali, long_, *opts, "--max-iters", 2).returncode == 0
    a = torch.load(short / "final.pt", weights_only=True)["state_dict"]
    b = torch.load(long_ / "final.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert len(list((short / "nnet").glob("epoch02_*"))) == 1


def test_a_recipe_stage_is_redone_when_its_inputs_or_settings_change(tmp_path):
    data, up, out = tmp_path / "data", tmp_path / "up", tmp_path / "out"
    data.mkdir()
    (data / "text").write_text("u1 a b\n")
    up.mkdir()
    (up / ".done").write_text("{}\n")

    def stage_done(action, *extra, settings="x"):
        p = run("stage_done", "--deps", up, "--settings", settings, action, out, "cmd", data, *extra)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    assert stage_done("check") == "not done"
    out.mkdir()
    stage_done("write")
    assert stage_done("check") == "complete"
    assert "option command" in stage_done("check", "--more")
    assert "option settings: x -> y" in stage_done("check", settings="y")
    (data / "text").write_text("u1 a c\n")
    assert f"input {data} changed" in stage_done("check")
    (data / "text").write_text("u1 a b\n")
    assert stage_done("check") == "complete"
    (up / ".done").write_text("{}\n")  # the upstream stage ran again
    assert f"input {up} changed" in stage_done("check")


def test_a_gmm_training_rerun_with_other_options_trains_again(espeak_corpus, tmp_path):
    out = tmp_path / "mono"
    args = ("--nj", 2, "--progress", "false", espeak_corpus.data, espeak_corpus.lang, out)
    assert run("train_mono", "--totgauss", 300, *args).returncode == 0
    first = (out / "final.mdl").read_bytes()
    p = run("train_mono", "--totgauss", 300, *args)
    assert "already trained" in p.stderr and (out / "final.mdl").read_bytes() == first
    p = run("train_mono", "--totgauss", 400, *args)
    assert p.returncode == 0 and "option config" in p.stderr, p.stderr[-2000:]
    assert (out / "final.mdl").read_bytes() != first


def test_a_graph_is_remade_when_its_lm_changes_even_if_older(espeak_corpus, espeak_graph, espeak_mono, tmp_path):
    """mkgraph.sh compares times: a G.fst copied in with an old time must still count."""
    root = espeak_mono.parent
    lang, graph = tmp_path / "lang_test", tmp_path / "graph"
    shutil.copytree(root / "lang_test", lang)
    assert run("mkgraph", lang, espeak_mono, graph).returncode == 0
    assert "up to date" in run("mkgraph", lang, espeak_mono, graph).stderr
    first = (graph / "HCLG.fst").read_bytes()
    assert run("train_lm", "--order", 1, root / "lm_train.txt", espeak_corpus.lang, tmp_path / "lm").returncode == 0
    assert run("format_lm", espeak_corpus.lang, tmp_path / "lm" / "lm_1gram.arpa.gz", "-", tmp_path / "lang1").returncode == 0
    shutil.copyfile(tmp_path / "lang1" / "G.fst", lang / "G.fst")
    os.utime(lang / "G.fst", (1, 1))  # older than HCLG.fst
    p = run("mkgraph", lang, espeak_mono, graph)
    assert p.returncode == 0 and "input G.fst changed" in p.stderr, p.stderr[-2000:]
    assert (graph / "HCLG.fst").read_bytes() != first

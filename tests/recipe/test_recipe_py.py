"""egs/ami/run.sh --backend py end to end on the ci corpus: the results table, the step logs,
reruns that skip complete steps, resumption, and clear failures."""
import hashlib
import re
import shutil
import subprocess

from tests.nnet.toy import run_step
from tests.recipe.conftest import (CURVE_POINTS, FAST, NNETS, SYSTEMS, WER_LINE, clone_for_decoding, make_recipe_dir,
                                   recipe_default, ref_words, run_recipe)

ADAPTED = ("student_adapt_unsup", "student_adapt_teacher", "student_adapt_sup")  # stage 9
SETS = ("dev", "eval")


def results_lines(recipe_dir):
    """{(system, set): regex match} of the %WER lines of RESULTS.md's first block (the protocol's:
    dev at its best, eval at dev's setting)."""
    out = {}
    block = (recipe_dir / "RESULTS.md").read_text().split("```")[1]
    for line in block.strip().splitlines():
        m = WER_LINE.fullmatch(line)
        assert m, f"not in Kaldi's format: {line}"
        out[(m.group(8), m.group(9))] = m
    return out


def test_results_md_tunes_on_dev_and_scores_eval_once_at_devs_setting(py_run):
    lines = results_lines(py_run.dir)
    utts = {dset: len((py_run.dir / f"data/ihm/{dset}/utt2spk").read_text().splitlines()) for dset in SETS}
    assert set(lines) == {(s, t) for s in SYSTEMS + ADAPTED for t in SETS}
    for (system, dset), m in lines.items():
        wer, errors, words, ins, dels, subs = float(m[1]), *map(int, m.groups()[1:6])
        assert errors == ins + dels + subs
        assert words == ref_words(py_run.dir / f"data/ihm/{dset}/text")
        assert abs(wer - 100.0 * errors / words) < 0.006
        # dev and eval are searched once, at the setting the sweep of dev_tune chose (the adapted
        # systems: at student_kd's)
        tune = py_run.dir / "exp/ihm" / (system if system not in ADAPTED else "student_kd") / "decode_dev_tune"
        sweep = {p.name: float(p.read_text().split()[1]) for p in tune.glob("wer_*")}
        assert sorted(sweep) == ["wer_10_0.0", "wer_11_0.0", "wer_9_0.0"]  # LMWT 9..11, penalty 0.0
        best = WER_LINE.search((tune / "scoring_kaldi" / "best_wer").read_text())
        assert float(best[1]) == min(sweep.values())
        assert (m[10], m[11]) == (best[10], best[11])
        assert [p.name for p in (py_run.dir / m[7]).glob("wer_*")] == [f"wer_{best[10]}_{best[11]}"]
        stats = dict(line.split() for line in (py_run.dir / m[7] / "decode_stats.txt").read_text().splitlines())
        assert stats["passes"] == "1"
        # a swept system's dev search: only the utterances dev_tune lacks, dev_tune's own
        # hypotheses at the chosen setting taken for the rest
        tra = f"tra/{best[10]}_{best[11]}.tra"
        if dset == "dev" and system not in ADAPTED:
            tuned = (tune / tra).read_text().splitlines()
            assert int(stats["reused"]) == len(tuned) and int(stats["utterances"]) + len(tuned) == utts[dset]
            assert set(tuned) < set((py_run.dir / m[7] / tra).read_text().splitlines())
        else:
            assert "reused" not in stats and int(stats["utterances"]) == utts[dset]
    # the table says where each setting was tuned
    table = {r[1]: r[-1] for r in ([c.strip() for c in line.strip("|").split("|")]
                                   for line in (py_run.dir / "RESULTS.md").read_text().splitlines())
             if r[0] == "ihm" and r[1] in SYSTEMS + ADAPTED and len(r) == 6}
    assert table == {s: f"{lines[(s, 'dev')][10]}, {lines[(s, 'dev')][11]} ({'given' if s in ADAPTED else 'dev_tune'})"
                     for s in SYSTEMS + ADAPTED}
    # dev_tune: every second utterance of each dev speaker
    spk2utt = [line.split()[1:] for line in (py_run.dir / "data/ihm/dev/spk2utt").read_text().splitlines()]
    tune_utts = [line.split()[0] for line in (py_run.dir / "data/ihm/dev_tune_fbank/utt2spk").read_text().splitlines()]
    assert sorted(tune_utts) == sorted(u for utts in spk2utt for u in utts[::2])


def test_results_md_has_the_significance_of_the_papers_comparisons(py_run):
    from hdnn.significance import compare, read_decode

    text = (py_run.dir / "RESULTS.md").read_text()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ihm |") and len(line.split("|")) == 11]
    pairs = {(r[1], r[2], r[3]) for r in rows}
    assert pairs == {(s, a, b) for s in SETS for a, b in (("teacher", "student_kd"), ("student_ce", "student_kd"),
                                                          ("teacher", "student_kd_u1x"), ("student_kd", "student_kd_u1x"),
                                                          ("student_ce", "student_kd_u1x"),
                                                          ("dnn_small", "student_ce"), ("tri", "teacher"),
                                                          *(("student_kd", x) for x in ADAPTED))}
    lines = results_lines(py_run.dir)
    for _, dset, a, b, wer_a, wer_b, p_mapsswe, p_better, verdict in rows:
        assert 0.0 <= float(p_better) <= 1.0
        assert float(wer_a) == float(lines[(a, dset)][1]) and float(wer_b) == float(lines[(b, dset)][1])
        p = 0.0 if p_mapsswe == "<0.001" else float(p_mapsswe)
        assert (p < 0.05) == (verdict != "no significant difference"), verdict
    dset, a, b = rows[0][1:4]  # the same test as steps_py/compare_wer.py on the same settings
    c = compare(*(read_decode(py_run.dir / lines[(x, dset)][7], lines[(x, dset)][10], lines[(x, dset)][11])
                  for x in (a, b)))
    assert rows[0][6] in ("<0.001", f"{c.mapsswe_p:.3f}")


def test_results_md_counts_parameters_and_records_the_command(py_run):
    text = (py_run.dir / "RESULTS.md").read_text()
    assert "run.sh --backend py --data-root" in text
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
             if line.startswith("| ihm |") and len(line.split("|")) == 8]
    # mic, system, parameters, dev, eval, setting (the adaptation curve's rows name a set instead)
    rows = {c[1]: c for c in cells if c[1] not in ("dev", "eval")}
    assert set(rows) == set(SYSTEMS + ADAPTED)
    params = {s: float(rows[s][2].split()[0].rstrip("M")) * 1e6 for s in SYSTEMS + ADAPTED}
    assert params["student_ce"] == params["student_kd"] < 0.8e6 < params["teacher"]
    assert params["dnn_small"] < 0.8e6
    for s in ADAPTED:  # the student's, plus its tied gates per speaker: 2 (64^2 + 64)
        assert params[s] == params["student_kd"] and rows[s][2].endswith("(+8.3k per speaker)")
    for png in ("wer_vs_params.png", "training_curves.png"):
        assert f"]({png})" in text and (py_run.dir / png).stat().st_size > 1000


def test_every_step_logs_to_its_exp_dir(py_run):
    exp = py_run.dir / "exp" / "ihm"
    for d, log in [("mono", "train_mono.log"), ("mono_ali", "align_si.log"), ("tri", "train_deltas.log"),
                   ("tri_ali", "align_si.log")] + [(n, "train.log") for n in NNETS]:
        assert (exp / d / "log" / log).stat().st_size > 0, f"{d}/log/{log}"
    for n in NNETS:
        assert "finished after epoch 2" in (exp / n / "log" / "train.log").read_text()
        assert (exp / n / "curves.png").exists()
    for s in ADAPTED:
        for t in SETS:
            assert "adapted gates for" in (exp / s / "log" / f"adapt.{t}_fbank.log").read_text()
    for s in SYSTEMS + ADAPTED:
        for t in SETS:
            dec = exp / s / f"decode_{t}"
            assert {p.name for p in (dec / "log").glob("decode.*.log")} >= {"decode.1.log", "decode.2.log"}
            assert (dec / "num_jobs").read_text().strip() == "2"
            assert not list(dec.glob("loglikes*")), "the py backend removes its log-likelihoods"


def test_sclite_reports_agree_with_best_wer(py_run):
    exp = py_run.dir / "exp" / "ihm"
    for s in ("tri", "student_kd"):
        for t in SETS:
            scoring = exp / s / f"decode_{t}" / "scoring_kaldi"
            m = WER_LINE.search((scoring / "best_wer").read_text())
            sys_file = scoring / "sclite" / f"best_{m[10]}_{m[11]}.sys"
            report = sys_file.read_text()
            speakers = [line.split()[0] for line in (py_run.dir / f"data/ihm/{t}/spk2utt").read_text().splitlines()]
            assert all(f"| {spk.lower()} |" in report for spk in speakers), sys_file  # per speaker
            sum_line = next(line for line in report.splitlines() if "| Sum/Avg|" in line)
            snt, wrd, corr, sub, dele, ins, err, serr = map(float, sum_line.replace("|", " ").split()[1:])
            assert wrd == int(m[3]) and round(err * wrd / 100) == int(m[2])


def snapshot(recipe_dir):
    """{path: (mtime, md5)} of every file the recipe wrote, but the results it rewrites."""
    out = {}
    for top in ("data", "exp", "mfcc", "fbank"):
        for p in sorted((recipe_dir / top).rglob("*")):
            if p.is_file() and not p.is_symlink():
                out[str(p.relative_to(recipe_dir))] = (p.stat().st_mtime_ns, hashlib.md5(p.read_bytes()).hexdigest())
    return out


def test_rerun_skips_complete_steps_and_changes_nothing(py_run, py_args):
    before = snapshot(py_run.dir)
    results = (py_run.dir / "RESULTS.md").read_text()
    rerun = run_recipe(py_run.dir, *py_args)
    assert rerun.returncode == 0, rerun.tail()
    print(f"first run {py_run.seconds:.1f} s, rerun {rerun.seconds:.1f} s")
    skipped = re.findall(r"(\S+) is complete, skipping", rerun.output)
    steps = {str(p.parent.relative_to(py_run.dir)) for p in py_run.dir.rglob(".done")}
    assert sorted(set(skipped)) == sorted(steps)  # dev_tune's subsets: checked by stages 4 and 8
    # features (and the untranscribed audio's, dev_tune's subsets and dev's rest), lang+LM, mono, tri+graph+
    # decodes (dev_tune, dev, eval), nnets (and the untranscribed subset and its student; the
    # teacher's soft targets of both), their decodes, adaptations and their decodes (dev, eval), the
    # curve's halves, unadapted point and adapted points
    assert len(steps) == 6 + 3 + 2 + 6 + 6 + 2 + 15 + 12 + 1 + 1 + CURVE_POINTS
    assert snapshot(py_run.dir) == before
    assert (py_run.dir / "RESULTS.md").read_text() == results


def test_stage_9_adapts_the_students_gates_to_each_test_speaker(py_run):
    import torch

    from hdnn.nnet.models import load_model

    exp = py_run.dir / "exp" / "ihm"
    student = load_model(exp / "student_kd" / "final.pt")
    gates = {n for n, p in student.named_parameters() if any(p is g for g in student.gate_parameters())}
    speakers = {line.split()[0] for t in SETS for line in (py_run.dir / f"data/ihm/{t}/spk2utt").open()}
    for s in ADAPTED:
        files = {p.stem: p for p in (exp / s / "spk").glob("*.pt")}
        assert set(files) == speakers
        for f in files.values():
            assert set(torch.load(f, weights_only=True)["params"]) == gates
        assert (exp / s / "final.pt").read_bytes() == (exp / "student_kd" / "final.pt").read_bytes()
    # the unsupervised targets align student_kd's own output at dev's setting
    lmwt, wip = results_lines(py_run.dir)[("student_kd", "dev")].group(10, 11)
    for t in SETS:
        hyp = exp / "student_kd" / f"decode_{t}" / "scoring_kaldi" / f"penalty_{wip}" / f"{lmwt}.txt"
        assert (exp / "student_adapt_unsup" / f"data_{t}" / "text").read_text() == hyp.read_text()
        assert "align_mapped: done" in (exp / "student_adapt_unsup" / f"ali_{t}" / "log" / "align_mapped.log").read_text()


def test_stage_9_adapts_again_after_student_kd_changed(py_run, py_args, tmp_path):
    """A rerun of stage 9 after student_kd changed adapts the new student_kd: the dir adapted from
    the old one (adapt.py refuses to mix the two) is removed first, not reused, and the run goes on."""
    from tests.recipe.conftest import check, link_nnet_system

    src = py_run.dir / "exp" / "ihm"
    recipe = clone_for_decoding(py_run.dir, tmp_path / "readapt", "student_kd")
    exp = recipe / "exp" / "ihm"
    link_nnet_system(src, exp, "teacher")
    for d in src.glob("student_kd/decode_*"):
        (exp / "student_kd" / d.name).symlink_to(d)
    shutil.copytree(src / "student_adapt_teacher", exp / "student_adapt_teacher", symlinks=True)
    # another student_kd: student_ce's weights (the same preset and features)
    (exp / "student_kd" / "final.pt").unlink()
    shutil.copyfile(src / "student_ce" / "final.pt", exp / "student_kd" / "final.pt")
    run = check(run_recipe(recipe, *py_args, "--stage", 9, "--stop-stage", 9, "--adapt-systems",
                           "student_adapt_teacher", "--adapt-curve-sets", ""))
    assert "student_adapt_teacher: adapted from another" in run.output
    adapted = exp / "student_adapt_teacher"
    assert (adapted / "final.pt").read_bytes() == (src / "student_ce" / "final.pt").read_bytes()
    speakers = {line.split()[0] for t in SETS for line in (recipe / f"data/ihm/{t}/spk2utt").open()}
    assert {p.stem for p in (adapted / "spk").glob("*.pt")} == speakers
    for f in (adapted / "spk").glob("*.pt"):
        assert f.read_bytes() != (src / "student_adapt_teacher" / "spk" / f.name).read_bytes()
    for t in SETS:
        assert (adapted / f"decode_{t}" / "scoring_kaldi" / "best_wer").is_file()


def test_interrupted_decoding_resumes_the_unfinished_job(py_run, py_args):
    dec = py_run.dir / "exp" / "ihm" / "student_kd" / "decode_dev_tune"  # the sweep
    best = (dec / "scoring_kaldi" / "best_wer").read_text()
    job1 = {p: p.stat().st_mtime_ns for p in (dec / "tra").glob("*.1.tra")}
    # as a run killed while job 2 was decoding leaves it
    for p in [dec / ".done", dec / "tra" / ".done.2", *(dec / "tra").glob("*.2.tra"), *dec.glob("wer_*")]:
        p.unlink()
    rerun = run_recipe(py_run.dir, *py_args, "--stage", 8, "--stop-stage", 8, "--nnet-systems", "student_kd")
    assert rerun.returncode == 0, rerun.tail()
    assert "student_kd/decode_eval is complete, skipping" in rerun.output
    assert {p: p.stat().st_mtime_ns for p in (dec / "tra").glob("*.1.tra")} == job1
    assert len(list((dec / "tra").glob("*.2.tra"))) == 3
    assert (dec / "scoring_kaldi" / "best_wer").read_text() == best


def test_stage_7_for_the_named_student_alone(py_run, py_args):
    """--nnet-systems student_kd at stage 7 leaves the untranscribed students out and exits 0."""
    assert list((py_run.dir / "exp" / "ihm").glob("student_kd_u*x"))  # the run has some to leave out
    rerun = run_recipe(py_run.dir, *py_args, "--stage", 7, "--stop-stage", 7, "--nnet-systems", "student_kd")
    assert rerun.returncode == 0, rerun.tail()
    assert "exp/ihm/student_kd is complete, skipping" in rerun.output, rerun.tail()


def test_missing_input_names_the_stage_to_run_first(tmp_path):
    recipe = make_recipe_dir(tmp_path / "empty")
    for stage, first in [(1, 0), (3, 1), (4, 3), (5, 4), (8, 4)]:
        run = run_recipe(recipe, "--backend", "py", "--stage", stage)
        assert run.returncode != 0
        assert f"run stage {first} first (--stage {first})" in run.tail(3), run.tail()


def test_a_failing_job_fails_the_stage_and_names_its_log(py_run, tmp_path):
    # the mono alignments' model in place of tri_ali: its pdfs do not match the nnet's outputs
    recipe = clone_for_decoding(py_run.dir, tmp_path / "bad", "student_ce", ali="mono_ali")
    run = run_recipe(recipe, "--backend", "py", *FAST, "--stage", 8, "--nnet-systems", "student_ce")
    assert run.returncode != 0
    assert re.search(r"columns, the model has \d+ pdfs \(log: exp/ihm/student_ce/decode_dev_tune/log/decode\.\d\.log\)",
                     run.output), run.tail()
    dec = recipe / "exp" / "ihm" / "student_ce" / "decode_dev_tune"
    assert not (dec / ".done").exists() and not (dec / "scoring_kaldi" / "best_wer").exists()
    assert "Stage 9" not in run.output


def test_a_failing_training_job_stops_the_recipe_after_the_job_beside_it(py_run, py_args, tmp_path):
    """Stage 6 trains student_ce and dnn_small side by side: dnn_small failing stops the recipe
    with its error and log named, after student_ce, beside it, has completed."""
    recipe = make_recipe_dir(tmp_path / "bg")
    (recipe / "data").mkdir()
    (recipe / "data" / "ihm").symlink_to(py_run.dir / "data" / "ihm")
    exp = recipe / "exp" / "ihm"
    exp.mkdir(parents=True)
    for d in ("tri_ali", "make_feats"):
        (exp / d).symlink_to(py_run.dir / "exp" / "ihm" / d)
    run = run_recipe(recipe, *py_args, "--stage", 6, "--small-dnn", "dnn-none")
    assert run.returncode != 0
    assert re.search(r"job failed: .*dnn-none.* \(log: exp/ihm/dnn_small/log/train_nnet\.log\)", run.output), run.tail()
    assert (exp / "student_ce" / ".done").is_file() and (exp / "student_ce" / "final.pt").is_file()
    assert not (exp / "dnn_small" / ".done").exists() and "Stage 7" not in run.output


def test_unknown_options_are_refused(tmp_path):
    recipe = make_recipe_dir(tmp_path / "opts")
    for args, message in [(["--stgae", "3"], "unknown option --stgae"), (["--data", "x"], "unknown option --data"),
                          (["--backend", "kaldo"], "unknown --backend kaldo"),
                          (["--nnet-jobs", "0"], "--nnet-jobs 0: a number of jobs"),
                          (["--kd-online", "yes"], "--kd-online yes: true or false"),
                          (["--smbr-denominator", "lattice"], "unknown --smbr-denominator lattice"),
                          (["--backend", "py", "--smbr-denominator", "lattices"],
                           "--smbr-denominator lattices needs KALDI_ROOT pointing at a Kaldi build")]:
        run = run_recipe(recipe, *args)
        assert run.returncode != 0 and message in run.output, run.tail()


def test_stage_9_draws_the_data_amount_curve(py_run):
    """Each eval speaker's utterances in two halves; adapted on the first, tested on the second,
    for gates, LHUC and all weights; a table and a plot in RESULTS.md."""
    curve = py_run.dir / "exp" / "ihm" / "student_adapt_curve"
    pool, test = ({line.split()[0] for line in (curve / "eval" / d / "utt2spk").open()} for d in ("pool", "test"))
    everything = {line.split()[0] for line in (py_run.dir / "data/ihm/eval_fbank/utt2spk").open()}
    assert pool and test and not pool & test and pool | test == everything
    for update in ("gates", "lhuc", "all"):
        for seconds in (10, 0):
            point = curve / f"eval_{update}_{seconds}"
            assert (point / "decode_test" / "scoring_kaldi" / "best_wer").is_file()
            assert {p.stem for p in (point / "spk").glob("*.pt")} <= {line.split()[0] for line in
                                                                   (curve / "eval" / "pool" / "spk2utt").open()}
    results = (py_run.dir / "RESULTS.md").read_text()
    assert "| ihm | eval | lhuc |" in results and (py_run.dir / "adaptation_curve.png").stat().st_size > 0


def test_untranscribed_audio_trains_a_student_with_the_teachers_labels(py_run, tmp_path, monkeypatch):
    """student_kd_u1x: student_kd's command with the first 1 x 5 untranscribed meetings; the soft
    targets are the teacher's top-20 posteriors, computed once; its row, its comparisons and the
    hours table in RESULTS.md."""
    import torch

    from hdnn.kaldi.posteriors import read_posteriors

    data, exp = py_run.dir / "data" / "ihm", py_run.dir / "exp" / "ihm"
    meetings = {line.split()[1].split("_")[1] for line in (data / "untranscribed_1x_fbank" / "segments").open()}
    assert len(meetings) == 5 and all(m.startswith("EN2") for m in meetings)
    assert not (data / "untranscribed_1x_fbank" / "text").exists()
    frames = {name: torch.load(exp / name / "checkpoint.pt", weights_only=False)["history"][1]["train"]["frames"]
              for name in ("student_kd", "student_kd_u1x")}
    assert frames["student_kd_u1x"] > 1.5 * frames["student_kd"]
    log = (exp / "student_kd_u1x" / "log" / "train.log").read_text()
    assert "utterances are of CV speakers: left out" in log and "soft targets only" in log
    # the soft targets: forward.py's top-20 posteriors of the teacher at the KD temperature, of the
    # training set and of the untranscribed subset
    run_step("forward.py", "--output", "posteriors", "--temperature", recipe_default("kd_temperature"),
             "--topk", recipe_default("kd_topk"),
             data / "untranscribed_1x_fbank", exp / "teacher", f"ark,scp:{tmp_path}/u.ark,{tmp_path}/u.scp")
    monkeypatch.chdir(py_run.dir)  # the recipe's scp files name paths relative to it
    stored = dict(read_posteriors(f"scp:{exp}/teacher_post_u1x/post.scp"))
    assert dict(read_posteriors(f"scp:{tmp_path}/u.scp")).items() <= stored.items()
    assert dict(read_posteriors(f"scp:{exp}/teacher_post/post.scp")).items() <= stored.items()
    assert "--teacher-post scp:exp/ihm/teacher_post_u1x/post.scp" in (exp / "student_kd_u1x" / ".done").read_text()
    results = (py_run.dir / "RESULTS.md").read_text()
    assert "| ihm | dev | student_kd | student_kd_u1x |" in results
    assert "| ihm | eval | student_ce | student_kd_u1x |" in results
    assert re.search(r"\| ihm \| student_kd_u1x \| 0\.\d\d \| \d+\.\d\d \| \d+\.\d\d \|", results)
    assert (py_run.dir / "untranscribed_curve.png").stat().st_size > 0


def test_sdm_nnets_train_on_headset_alignments_and_learn_from_the_headset_teacher(py_run, py_args, tmp_path,
                                                                                  monkeypatch):
    """--mic sdm1 (--use-ihm-ali true): the IHM tri model aligns the parallel headset audio under the
    SDM ids; the nnets train on it and decode with IHM's graph; student_kd learns from the IHM
    teacher's posteriors of the headset audio, student_kd_sdmt from the SDM teacher's."""
    from hdnn.kaldi.alignments import read_ali_dir
    from hdnn.kaldi.posteriors import read_posteriors

    recipe = make_recipe_dir(tmp_path / "sdm")
    for d in ("data/ihm", "data/lang", "data/lang_test", "exp/ihm"):
        (recipe / d).parent.mkdir(parents=True, exist_ok=True)
        (recipe / d).symlink_to(py_run.dir / d)
    args = [*py_args, "--mic", "sdm1", "--nnet-systems", "student_kd student_kd_sdmt", "--untranscribed-factors", "none"]
    for stages in (("0", "1"), ("5", "8")):
        run = run_recipe(recipe, *args, "--stage", stages[0], "--stop-stage", stages[1])
        assert run.returncode == 0, run.tail()
    exp = recipe / "exp" / "sdm1"
    to_sdm = lambda utt: re.sub(r"_H0\d_", "_SDM_", utt)  # noqa: E731
    ihm_ali = {to_sdm(u): a for u, a in read_ali_dir(py_run.dir / "exp/ihm/tri_ali").items()}
    sdm_ali = read_ali_dir(exp / "tri_ali_ihmdata")
    assert sdm_ali.keys() == {line.split()[0] for line in (recipe / "data/sdm1/train/utt2spk").open()}
    assert all((sdm_ali[u] == ihm_ali[u]).all() for u in sdm_ali)  # the same model on the same audio
    assert "exp/ihm/tri/graph" in (exp / "student_kd" / "decode_dev" / "log" / "decode.1.log").read_text()
    # the IHM teacher's soft targets of the headset audio, under the SDM ids
    utt = sorted(sdm_ali)[0]
    ihm_utt = next(u for u in read_ali_dir(py_run.dir / "exp/ihm/tri_ali") if to_sdm(u) == utt)
    monkeypatch.chdir(recipe)  # the recipe's scp files name paths relative to it
    post = dict(read_posteriors(f"scp:{exp}/ihm_teacher_post/post.scp"))[utt]
    assert len(post) == len(ihm_ali[utt]) and all(len(frame) == int(recipe_default("kd_topk")) for frame in post)
    run_step("forward.py", "--output", "posteriors", "--temperature", recipe_default("kd_temperature"),
             "--topk", recipe_default("kd_topk"),
             py_run.dir / "data/ihm/train_fbank", py_run.dir / "exp/ihm/teacher", f"ark,scp:{tmp_path}/p.ark,{tmp_path}/p.scp")
    assert dict(read_posteriors(f"scp:{tmp_path}/p.scp"))[ihm_utt] == post
    for sys in ("student_kd", "student_kd_sdmt"):
        assert (exp / sys / "decode_eval" / "scoring_kaldi" / "best_wer").is_file()
    assert "--teacher-post scp:exp/sdm1/ihm_teacher_post/post.scp" in (exp / "student_kd/log/train_nnet.log").read_text()
    assert "--teacher-post scp:exp/sdm1/teacher_post/post.scp" in (exp / "student_kd_sdmt/log/train_nnet.log").read_text()
    # the student's own input is the SDM audio; the teacher's was the headset audio
    feats = {d: dict(line.split() for line in (recipe / "data" / d / "feats.scp").open())
             for d in ("ihm/train_fbank", "sdm1/train_fbank", "sdm1/train_ihmdata_fbank")}
    assert feats["sdm1/train_ihmdata_fbank"][utt] == feats["ihm/train_fbank"][ihm_utt] != feats["sdm1/train_fbank"][utt]
    # a headset dir that is not parallel is one line
    bad = tmp_path / "bad"
    shutil.copytree(recipe / "data/sdm1/train", bad)
    (bad / "utt2spk").write_text("".join((bad / "utt2spk").read_text().splitlines(True)[1:]))
    p = subprocess.run([str(recipe / "local/prepare_parallel_data.sh"), str(py_run.dir / "data/ihm/train"), str(bad),
                        str(tmp_path / "out")], capture_output=True, text=True)
    assert p.returncode == 1 and "are not parallel" in p.stderr and len(p.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_tune_kd_trains_and_decodes_a_student_per_grid_point(py_run, py_args, tmp_path):
    """local/tune_kd.sh: student_kd (or student_kd_u<N>x) at each (λ, τ, learning rate, schedule,
    untranscribed amount) of the grid in a recipe dir of its own that sees the recipe's earlier
    stages, and the table of dev (the choice) and eval (at dev's setting)."""
    recipe = make_recipe_dir(tmp_path / "tune")
    for d in ("data", "exp", "fbank", "mfcc"):
        (recipe / d).symlink_to(py_run.dir / d)
    kd = py_run.dir / "exp" / "ihm" / "student_kd" / "final.pt"
    before = hashlib.md5(kd.read_bytes()).hexdigest()
    p = subprocess.run(["local/tune_kd.sh", "--lambdas", "1.0", "--temperatures", "1", "--learn-rates", "0.004",
                        "--schedules", "hf0.7=--halving-factor=0.7,--min-iters=2", "--untranscribed", "0 1",
                        "--", *py_args, "--kd-train-opts", "--end-halving-impr 0.0001 --max-iters 30"],
                       cwd=recipe, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    point = recipe / "kd_tune" / "ihm" / "l1.0_t1_lr0.004_hf0.7"
    done = (point / "exp" / "ihm" / "student_kd" / ".done").read_text()
    assert "--kd-lambda 1.0 --kd-temperature 1" in done and "teacher_post/post.scp" in done
    # run.sh --kd-train-opts (the KD students' own options), then the run's --train-opts, which the
    # rate and the schedule join
    assert ("--end-halving-impr 0.0001 --max-iters 30 --max-iters 2 --learn-rate 0.004 "
            "--halving-factor=0.7 --min-iters=2") in done
    assert (point / "exp" / "ihm" / "teacher_post" / "post.scp").is_file()
    rows = (recipe / "kd_tune" / "ihm" / "results.md").read_text().splitlines()
    for row, amount in zip(rows[2:], ("0x", "1x"), strict=True):
        assert re.fullmatch(r"\| 1\.0 \| 1 \| 0\.004 \| hf0\.7 \(`--halving-factor=0\.7 --min-iters=2`\) "
                            rf"\| {amount} \| \d+\.\d\d \| \d+\.\d\d \| \d+ \| 2 \| \d+\.\d\d % \|", row), rows
    dev = WER_LINE.search((point / "exp/ihm/student_kd/decode_dev/scoring_kaldi/best_wer").read_text())
    assert rows[2].split(" | ")[5] == dev[1]
    # the untranscribed point: that student alone (stage 7 trains what --nnet-systems names), with
    # the recipe's --untranscribed-train-opts before the point's own options
    upoint = point.with_name(point.name + "_u1x")
    assert sorted(p.name for p in (upoint / "exp/ihm").glob("student_*")) == ["student_kd_u1x"]
    assert not (point / "exp/ihm/student_kd_u1x").exists() and not (point / "exp/ihm/teacher_post_u1x").exists()
    udone = (upoint / "exp/ihm/student_kd_u1x/.done").read_text()
    assert "--untranscribed data/ihm/untranscribed_1x_fbank" in udone and "teacher_post_u1x/post.scp" in udone
    assert (f"--max-iters 30 {recipe_default('untranscribed_train_opts')} --max-iters 2 --learn-rate 0.004 ".replace("  ", " ")
            in udone)
    assert hashlib.md5(kd.read_bytes()).hexdigest() == before  # the recipe's own student untouched
    bad = subprocess.run(["local/tune_kd.sh", "--mic", "sdm1"], cwd=recipe, capture_output=True, text=True)
    assert bad.returncode == 1 and "run run.sh --mic sdm1 to stage 6 first" in bad.stderr
    bad = subprocess.run(["local/tune_kd.sh", "--schedules", "hf=--halving-factor"], cwd=recipe,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "'hf=--halving-factor'" in bad.stderr
    bad = subprocess.run(["local/tune_kd.sh", "--untranscribed", "1x"], cwd=recipe, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "--untranscribed: '1x'" in bad.stderr


def test_stage_10_sequence_trains_each_system_per_setting_of_tune_smbr(py_run, py_args, tmp_path):
    """Stage 10 with --backend py through local/tune_smbr.sh: student_kd's own alignments and a
    transition-id bigram of them (make_den_graph.py) for the denominator, made once by the first
    point and linked by the others; train_smbr.py for the sMBR, teacher-student and gates-only
    students, each in a recipe dir of its own, and their decoding; the table of dev (the choice),
    eval (at dev's setting) and p against the source."""
    import torch

    from hdnn.nnet.models import load_model

    recipe = make_recipe_dir(tmp_path / "tune_smbr")
    for d in ("data", "exp", "fbank", "mfcc"):
        (recipe / d).symlink_to(py_run.dir / d)
    systems = ("student_smbr", "student_ts_smbr", "student_gate_smbr")
    p = subprocess.run(["local/tune_smbr.sh", "--systems", " ".join(systems), "--settings", "i1=--num-iters=1",
                        "--", *py_args, "--smbr-opts", "--learn-rate 2e-5"], cwd=recipe, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    exps = [recipe / "smbr_tune" / "ihm" / f"{name}_i1" / "exp" / "ihm" for name in systems]
    first = exps[0]
    assert "align_mapped: done" in (first / "student_kd_ali" / "log" / "align_mapped.log").read_text()
    assert "states (transition-ids)" in (first / "student_kd_dengraph" / "log" / "make_den_graph.log").read_text()
    kd = load_model(py_run.dir / "exp" / "ihm" / "student_kd" / "final.pt").state_dict()
    rows = (recipe / "smbr_tune" / "ihm" / "results.md").read_text().splitlines()
    assert len(rows) == 2 + len(systems) + 1 and rows[-1].startswith("| student_kd (source) |"), rows
    num = r"\d+\.\d\d"
    for name, exp, row in zip(systems, exps, rows[2:-1], strict=True):
        for made in ("student_kd_ali", "student_kd_dengraph"):  # made by the first point alone
            assert (exp / made).is_symlink() == (exp != first) and (exp / made).resolve() == (first / made).resolve()
        # the lattice-free denominator's acoustic scale first, then the run's --smbr-opts, then the setting's
        assert re.search(r" --acoustic-scale 0\.3 .*--learn-rate 2e-5 --num-iters=1 ", (exp / name / ".done").read_text())
        curve = (exp / name / "curve.tsv").read_text().splitlines()
        assert len(curve) == 2, curve
        m = WER_LINE.fullmatch((exp / name / "decode_dev" / "scoring_kaldi" / "best_wer").read_text().strip())
        print(f"{name}: frame accuracy {curve[1].split()[3]}, dev {m[1]}")
        assert int(m[3]) == ref_words(recipe / "data/ihm/dev/text")
        assert re.fullmatch(rf"\| {name} \| i1 \(`--num-iters=1`\) \| {m[1]} \| {num} \| {m[10]} \| [\d.e-]+ "
                            r"\| [\d.e-]+ \| \d\.\d{3} → \d\.\d{3} \|", row), rows
        changed = [k for k, v in load_model(exp / name / "final.pt").state_dict().items() if not torch.equal(v, kd[k])]
        assert changed and (name != "student_gate_smbr" or all("gate" in k for k in changed))
        assert "student_kd_dengraph" in (exp / name / "log" / "train_smbr.log").read_text()
    assert "--teacher" in (exps[1] / "student_ts_smbr" / ".done").read_text()
    bad = subprocess.run(["local/tune_smbr.sh", "--systems", "student_kd_smbrt"], cwd=recipe,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "student_kd_smbrt" in bad.stderr
    bad = subprocess.run(["local/tune_smbr.sh", "--settings", "lr=--learn-rate"], cwd=recipe,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "'lr=--learn-rate'" in bad.stderr
    bad = subprocess.run(["./run.sh", *py_args, "--stage", "10", "--stop-stage", "10", "--smbr-systems",
                          "student_smbr studnet_smbr"], cwd=recipe, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "unknown sMBR system studnet_smbr" in bad.stderr
    assert not (recipe / "exp" / "ihm" / "student_smbr").exists()  # refused before any system was trained
    bad = subprocess.run(["./run.sh", *py_args, "--stage", "10", "--stop-stage", "10", "--smbr-systems",
                          "student_kd_smbrt"], cwd=recipe, capture_output=True, text=True)  # without teacher_smbr
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "exp/ihm/teacher_smbr/.done is missing" in bad.stderr

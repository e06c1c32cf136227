"""adapt.py and forward.py --spk-params: per-speaker adaptation of the gates (or LHUC, or all
weights) on a generated corpus whose speakers each distort their features in their own way."""
import shutil

import numpy as np
import pytest
import torch

from hdnn.errors import HdnnError
from hdnn.kaldi.alignments import read_pdf_alignments
from hdnn.kaldi.data_dir import read_kaldi_map, subset_tr_cv, write_kaldi_map
from hdnn.kaldi.io import read_matrices
from hdnn.nnet.adapt import SpeakerModels, adaptable_parameters
from hdnn.nnet.models import add_lhuc, load_model, model_from_preset

from tests.nnet.toy import FAST, make_data_dir, run_step

torch.set_num_threads(1)


def _subset(data, out, keep):
    """A copy of data dir `data` with only the utterances `keep(utt, index within speaker)`."""
    out.mkdir(parents=True)
    spk2utt = read_kaldi_map(data / "spk2utt", multi=True)
    utts = {u for us in spk2utt.values() for i, u in enumerate(us) if keep(u, i)}
    for name in ("feats.scp", "utt2spk", "text"):
        rows = read_kaldi_map(data / name)
        write_kaldi_map(out / name, {u: v for u, v in rows.items() if u in utts})
    write_kaldi_map(out / "spk2utt", {s: [u for u in us if u in utts] for s, us in spk2utt.items()})
    shutil.copyfile(data / "cmvn.scp", out / "cmvn.scp")
    return out


@pytest.fixture(scope="module")
def warped(tmp_path_factory):
    """A student trained on 12 speakers of a warped corpus; the other 4 speakers' first 6
    utterances to adapt on, their last 2 to test on."""
    root = tmp_path_factory.mktemp("warped")
    data, ali = make_data_dir(root, num_spk=16, utts_per_spk=8, seed=3, speaker_warp=0.6)
    speakers = sorted(read_kaldi_map(data / "spk2utt"))
    test_spk = set(speakers[-4:])
    train = _subset(data, root / "train", lambda u, i: u.split("-")[0] not in test_spk)
    tr, cv = subset_tr_cv(train, root / "tr", root / "cv", cv_fraction=0.2)
    adapt = _subset(data, root / "adapt", lambda u, i: u.split("-")[0] in test_spk and i < 6)
    test = _subset(data, root / "test", lambda u, i: u.split("-")[0] in test_spk and i >= 6)
    for d in (adapt, test):  # keep only the test speakers in spk2utt
        s2u = {s: us for s, us in read_kaldi_map(d / "spk2utt", multi=True).items() if us}
        write_kaldi_map(d / "spk2utt", s2u)
    student = root / "student"
    run_step("train.py", *FAST, "--max-iters", "6", "--model-preset", "student-small", tr.path, cv.path, ali,
             student)
    teacher = root / "teacher"
    run_step("train.py", *FAST, "--max-iters", "6", "--model-preset", "teacher-small", tr.path, cv.path, ali,
             teacher)
    return dict(root=root, ali=ali, adapt=adapt, test=test, student=student, teacher=teacher)


def _frame_errors(tmp_path, data, model_dir, ali, *opts):
    spec = f"ark,scp:{tmp_path}/post.ark,{tmp_path}/post.scp"
    run_step("forward.py", "--output", "log-posteriors", *opts, data, model_dir, spec)
    targets = dict(read_pdf_alignments(ali))
    wrong = total = 0
    for utt, logp in read_matrices(f"scp:{tmp_path}/post.scp"):
        wrong += int((logp.argmax(1) != targets[utt]).sum())
        total += len(logp)
    return wrong / total


@pytest.mark.parametrize("update,learn_rate", [("gates", 0.002), ("lhuc", 0.002), ("all", 0.0005)])
def test_adaptation_on_a_speakers_data_lowers_its_frame_error(warped, tmp_path, update, learn_rate):
    w = warped
    out = tmp_path / "adapted"
    run_step("adapt.py", "--update", update, "--learn-rate", learn_rate, w["adapt"], w["student"], w["ali"], out)
    assert sorted(p.stem for p in (out / "spk").glob("*.pt")) == sorted(read_kaldi_map(w["adapt"] / "spk2utt"))
    before = _frame_errors(tmp_path, w["test"], w["student"], w["ali"])
    after = _frame_errors(tmp_path, w["test"], out, w["ali"], "--spk-params", out / "spk")
    assert after < before - 0.01, (before, after)


def test_teacher_labelled_adaptation_needs_no_transcript(warped, tmp_path):
    w = warped
    no_text = tmp_path / "no_text"
    shutil.copytree(w["adapt"], no_text)
    (no_text / "text").unlink()
    out = tmp_path / "adapted"
    p = run_step("adapt.py", "--teacher", w["teacher"] / "final.pt", no_text, w["student"], out)
    assert "adapted gates for 4 speakers" in p.stdout
    log = (out / "log" / "adapt.no_text.log").read_text()
    assert log.count("held-out") == 4
    # on the speakers' other utterances, the adapted student agrees more with the teacher
    teacher = tmp_path / "teacher_ali.ark"
    run_step("forward.py", "--output", "log-posteriors", w["test"], w["teacher"], f"ark:{tmp_path}/t.ark")
    from hdnn.kaldi.io import write_int_vectors

    write_int_vectors(f"ark:{teacher}", ((u, m.argmax(1).astype(np.int32))
                                         for u, m in read_matrices(f"ark:{tmp_path}/t.ark")))
    before = _frame_errors(tmp_path, w["test"], w["student"], f"ark:{teacher}")
    after = _frame_errors(tmp_path, w["test"], out, f"ark:{teacher}", "--spk-params", out / "spk")
    assert after < before, (before, after)


def test_gate_adaptation_changes_only_the_gates(warped, tmp_path):
    w = warped
    out = tmp_path / "adapted"
    run_step("adapt.py", w["adapt"], w["student"], w["ali"], out)
    base = load_model(w["student"] / "final.pt")
    gate_names = {n for n, p in base.named_parameters() if any(p is g for g in base.gate_parameters())}
    models = SpeakerModels(base, w["student"] / "final.pt", out / "spk")
    changed = set()
    for spk in read_kaldi_map(w["adapt"] / "spk2utt"):
        blob = torch.load(out / "spk" / f"{spk}.pt", weights_only=True)
        assert set(blob["params"]) == gate_names
        adapted = models(spk).state_dict()
        assert set(adapted) == set(base.state_dict())
        changed |= {name for name, value in base.state_dict().items() if not torch.equal(adapted[name], value)}
    assert changed == gate_names
    # the file holds 2 (U^2 + U) numbers: the tied gates of the 64-unit student
    assert sum(t.numel() for t in blob["params"].values()) == 2 * (64 * 64 + 64)


def test_zero_lhuc_computes_what_the_model_did():
    torch.manual_seed(0)
    x = torch.randn(7, 33)
    for preset in ("student-small", "dnn-small"):
        model = model_from_preset(preset, 33, 10)
        before = model(x)
        add_lhuc(model)
        assert torch.equal(model(x), before)
        assert set(adaptable_parameters(model, "lhuc")) == {"lhuc"}
    with pytest.raises(HdnnError, match="has no gates"):
        adaptable_parameters(model_from_preset("dnn-small", 33, 10), "gates")


def test_each_utterance_gets_its_own_speakers_parameters(warped, tmp_path):
    w = warped
    out = tmp_path / "adapted"
    run_step("adapt.py", w["adapt"], w["student"], w["ali"], out)
    spec = f"ark,scp:{tmp_path}/ll.ark,{tmp_path}/ll.scp"
    run_step("forward.py", "--output", "log-posteriors", "--spk-params", out / "spk", w["test"], out, spec)
    got = dict(read_matrices(f"scp:{tmp_path}/ll.scp"))
    from hdnn.nnet.model_dir import load_feature_pipeline

    base = load_model(w["student"] / "final.pt")
    models = SpeakerModels(base, w["student"] / "final.pt", out / "spk")
    pipeline = load_feature_pipeline(w["student"], w["test"])
    utt2spk = read_kaldi_map(w["test"] / "utt2spk")
    speakers = sorted(set(utt2spk.values()))
    for utt, spk in utt2spk.items():
        x = torch.from_numpy(pipeline(utt))
        with torch.no_grad():
            own = torch.log_softmax(models(spk)(x), -1).numpy()
            other = torch.log_softmax(models(speakers[speakers.index(spk) - 1])(x), -1).numpy()
        np.testing.assert_allclose(got[utt], own, atol=1e-5)
        assert np.abs(got[utt] - other).max() > 1e-3


def test_a_missing_or_foreign_speaker_file_is_a_clear_error(warped, tmp_path):
    w = warped
    out = tmp_path / "adapted"
    run_step("adapt.py", w["adapt"], w["student"], w["ali"], out)
    # parameters adapted from another model are refused
    p = run_step("forward.py", "--spk-params", out / "spk", w["test"], w["teacher"], f"ark:{tmp_path}/b.ark",
                 check=False)
    assert p.returncode == 1 and "adapts another model" in p.stderr
    spk = sorted(read_kaldi_map(w["adapt"] / "spk2utt"))[0]
    # a damaged file
    good = (out / "spk" / f"{spk}.pt").read_bytes()
    (out / "spk" / f"{spk}.pt").write_bytes(b"junk\n")
    p = run_step("forward.py", "--spk-params", out / "spk", w["test"], out, f"ark:{tmp_path}/c.ark", check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr and "not a speaker parameter file" in p.stderr
    assert not (tmp_path / "c.ark").exists()
    (out / "spk" / f"{spk}.pt").write_bytes(good)
    (out / "spk" / f"{spk}.pt").unlink()
    p = run_step("forward.py", "--spk-params", out / "spk", w["test"], out, f"ark,scp:{tmp_path}/a.ark,{tmp_path}/a.scp",
                 check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert f"{spk}.pt: no adapted parameters for speaker {spk}" in p.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "a.ark").exists() and not (tmp_path / "a.scp").exists()


def test_a_rerun_skips_done_speakers_and_redoes_changed_options(warped, tmp_path):
    w = warped
    out = tmp_path / "adapted"
    run_step("adapt.py", w["adapt"], w["student"], w["ali"], out)
    files = sorted((out / "spk").glob("*.pt"))
    stamps = [f.stat().st_mtime_ns for f in files]
    content = [f.read_bytes() for f in files]
    run_step("adapt.py", w["adapt"], w["student"], w["ali"], out)
    assert [f.stat().st_mtime_ns for f in files] == stamps
    run_step("adapt.py", "--learn-rate", "0.001", w["adapt"], w["student"], w["ali"], out)
    assert all(f.read_bytes() != c for f, c in zip(files, content))
    # the same options again give the same bytes as the first run
    shutil.rmtree(out / "spk")
    run_step("adapt.py", w["adapt"], w["student"], w["ali"], out)
    assert [f.read_bytes() for f in files] == content


def test_bad_options_are_one_clear_line(warped, tmp_path):
    w = warped
    p = run_step("adapt.py", "--kld-rho", "1.5", w["adapt"], w["student"], w["ali"], tmp_path / "x", check=False)
    assert p.returncode == 1 and "--kld-rho 1.5" in p.stderr and "Traceback" not in p.stderr
    p = run_step("adapt.py", "--update", "gates", w["adapt"], w["teacher"], w["ali"], tmp_path / "y", check=False)
    assert p.returncode == 1 and "has no gates" in p.stderr


def test_max_seconds_adapts_on_the_first_seconds_of_each_speaker(warped, tmp_path):
    """--max-seconds 0.5: the first 50 frames of each speaker (training + held-out), no more."""
    from hdnn.nnet.adapt import read_speaker_file

    w = warped
    out = tmp_path / "short"
    run_step("adapt.py", "--max-seconds", "0.5", w["adapt"], w["student"], w["ali"], out)
    for f in (out / "spk").glob("*.pt"):
        report = read_speaker_file(f)["report"]
        assert report["frames"] + report["held_out_frames"] == 50
    full = tmp_path / "full"
    run_step("adapt.py", w["adapt"], w["student"], w["ali"], full)
    report = read_speaker_file(next((full / "spk").glob("*.pt")))["report"]
    assert report["frames"] + report["held_out_frames"] > 200


def test_a_short_minibatch_steps_by_its_frames():
    """The rate is per frame: a speaker's frames that fill no whole minibatch move the model as
    much whatever the minibatch size (a short last minibatch weighs by its frames, as a summed
    gradient does, not as a full one)."""
    from hdnn.nnet.adapt import AdaptConfig, SpeakerData, adapt_speaker

    torch.manual_seed(0)
    model = model_from_preset("student-small", 20, 30)
    g = torch.Generator().manual_seed(1)
    data = SpeakerData(inputs=torch.randn(10, 20, generator=g), hard=torch.randint(0, 30, (10,), generator=g),
                       tr=np.arange(10), cv=None)
    steps = []
    for size in (16, 64):
        config = AdaptConfig(update="all", learn_rate=0.01, max_epochs=1, kld_rho=0.0, minibatch_size=size)
        adapted, _ = adapt_speaker(model, data, config)
        steps.append({n: p - dict(model.named_parameters())[n] for n, p in adapted.items()})
    assert any(s.abs().max() > 1e-4 for s in steps[0].values())
    for name, step in steps[0].items():
        torch.testing.assert_close(step, steps[1][name], rtol=1e-4, atol=1e-7)

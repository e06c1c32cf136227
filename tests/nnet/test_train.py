"""Training end to end through steps_py/train.py on the generated data dir."""
import os
import shutil
import signal
import subprocess
import sys
import time

import kaldiio
import numpy as np
import pytest
import torch

from hdnn.errors import HdnnError
from hdnn.kaldi.data_dir import read_kaldi_map
from hdnn.kaldi.io import write_int_vectors, write_matrices
from hdnn.nnet.data import FrameTargets
from hdnn.nnet.model_dir import load_feature_pipeline
from hdnn.nnet.models import load_model, model_from_preset
from hdnn.nnet.train import Trainer, TrainConfig, train_from_dirs

from tests.nnet.toy import FAST, STEPS, make_data_dir, run_step

torch.set_num_threads(1)


def _history(exp):
    return torch.load(exp / "checkpoint.pt", weights_only=False)["history"]


def _leftovers(exp):
    """Temporary files of atomic writes that were never renamed."""
    return [p for p in exp.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]


def _same_weights(a, b):
    sa, sb = load_model(a).state_dict(), load_model(b).state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_train_student_cv_loss_falls(toy_data, tmp_path):
    data, ali = toy_data
    exp = tmp_path / "exp"
    run_step("train.py", *FAST, "--max-iters", "3", "--cv-fraction", "0.25", "--model-preset", "student-small",
             data, ali, exp)
    history = _history(exp)
    initial, best = history[0]["cv"]["loss"], min(h["cv"]["loss"] for h in history if h["accepted"])
    assert best < 0.8 * initial
    assert max(h["cv"]["accuracy"] for h in history) > 2 * (1 / 6)  # twice chance
    model = load_model(exp / "final.pt")
    assert model.config["type"] == "HDNN" and model.config["num_pdfs"] == 6
    assert model.config["input_dim"] == 5 * 11
    for name in ("curves.png", "log/train.log", "ali_train_pdf.counts", "final.feature_transform",
                 "feature_opts.json", "global_cmvn.npz"):
        assert (exp / name).stat().st_size > 0, name
    assert len(list((exp / "nnet").glob("epoch*.pt"))) == 3
    # the split is by speaker: no speaker in both
    tr_spk, cv_spk = (set(read_kaldi_map(exp / "data" / d / "spk2utt")) for d in ("tr", "cv"))
    assert tr_spk and cv_spk and not tr_spk & cv_spk
    assert not _leftovers(exp)


def test_resume_after_kill_gives_the_same_model(toy_split, tmp_path):
    tr, cv, ali = toy_split
    args = [*FAST, "--max-iters", "4", "--model-preset", "student-small", "--minibatch-size", "16", tr, cv, ali]
    run_step("train.py", *args, tmp_path / "whole")

    exp = tmp_path / "resumed"
    # a real kill mid-run: SIGKILL as soon as the initial model's CV loss has been logged
    proc = subprocess.Popen([sys.executable, str(STEPS / "train.py"), *map(str, args), str(exp)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = exp / "log" / "train.log"
    deadline = time.time() + 120
    while (not log.exists() or "initial model:" not in log.read_text()) and proc.poll() is None \
            and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (exp / "final.pt").exists(), "the run ended before it could be killed"
    assert not (exp / "checkpoint.pt").exists() or len(_history(exp)) < 5  # killed before or after epoch 0's
    (exp / ".checkpoint.pt.x1.tmp").write_bytes(b"half a checkpoint")  # as a kill during its write leaves

    run_step("train.py", *args, exp, "--max-epochs-this-run", "1")  # resumes, stops cleanly after one epoch
    assert not (exp / "final.pt").exists()
    run_step("train.py", *args, exp)
    assert [h["epoch"] for h in _history(exp)] == list(range(5))
    assert _same_weights(tmp_path / "whole" / "final.pt", exp / "final.pt")
    assert _history(exp) == _history(tmp_path / "whole")
    for name in ("final.pt", "checkpoint.pt"):  # the same bytes, not only the same numbers
        assert (exp / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    assert not _leftovers(exp)
    # a finished run restarted does nothing more
    before = (exp / "final.pt").stat().st_mtime_ns
    run_step("train.py", *args, exp)
    assert (exp / "final.pt").stat().st_mtime_ns == before


def test_ddp_two_processes(toy_split, tmp_path):
    tr, cv, ali = toy_split
    exp = tmp_path / "exp"
    run_step("train.py", *FAST, "--max-iters", "2", "--model-preset", "dnn-small", "--optimizer", "adam",
             "--learn-rate", "0.003", tr, cv, ali, exp, torchrun=2)
    history = _history(exp)
    assert history[-1]["epoch"] == 2
    assert min(h["cv"]["loss"] for h in history[1:]) < history[0]["cv"]["loss"]
    # all CV frames counted once across the two ranks
    cv_frames = sum(len(load_feature_pipeline(exp, cv)(u)) for u in read_kaldi_map(cv / "utt2spk"))
    assert history[-1]["cv"]["frames"] == cv_frames
    assert "rank 1 of 2" in (exp / "log" / "train.rank1.log").read_text()
    assert (exp / "final.pt").exists()


def test_two_nodes_train_the_model_of_two_processes_on_one(toy_split, tmp_path):
    """torchrun --nnodes 2 (two node ranks on localhost, one process each, c10d rendezvous), as a
    cluster job would start it on two machines, trains the same model, byte for byte, as the
    single-node run of two processes."""
    import socket

    from tests.nnet.toy import STEPS

    tr, cv, ali = toy_split
    args = [*FAST, "--max-iters", "2", "--model-preset", "dnn-small", "--optimizer", "adam", "--learn-rate", "0.003"]
    run_step("train.py", *args, tr, cv, ali, tmp_path / "one", torchrun=2)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # no GPU for --use-gpu optional (two ranks on one node would share GPU 0): the CPU run's bytes
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(rank),
                               "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-id", "hdnn-test",
                               "--rdzv-endpoint", f"127.0.0.1:{port}", "--max-restarts", "0",
                               str(STEPS / "train.py"), *args, "--use-gpu", "optional", tr, cv, ali, tmp_path / "two"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert all(node.returncode == 0 for node in nodes), outputs[0][-2000:] + outputs[1][-2000:]
    assert (tmp_path / "two" / "final.pt").read_bytes() == (tmp_path / "one" / "final.pt").read_bytes()
    assert "rank 1 of 2" in (tmp_path / "two" / "log" / "train.rank1.log").read_text()
    assert "training on cpu" in (tmp_path / "two" / "log" / "train.log").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_use_gpu_yes_without_a_gpu_is_one_line(toy_split, tmp_path):
    tr, cv, ali = toy_split
    p = run_step("train.py", *FAST, "--use-gpu", "yes", tr, cv, ali, tmp_path / "exp", check=False)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == ["train.py: error: --use-gpu yes: no CUDA device is visible to torch "
                                             "(use --use-gpu no or optional)"]
    assert not (tmp_path / "exp" / "final.pt").exists() and not (tmp_path / "exp" / "checkpoint.pt").exists()


def test_knowledge_distillation_from_teacher_and_stored_posteriors(teacher_dir, toy_split, tmp_path):
    tr, cv, ali = toy_split
    common = [*FAST, "--max-iters", "2", "--model-preset", "student-small", "--kd-lambda", "0.7",
              "--kd-temperature", "2"]
    on_the_fly = tmp_path / "kd"
    run_step("train.py", *common, "--teacher", teacher_dir / "final.pt", tr, cv, ali, on_the_fly)
    # the student sees the teacher's input
    assert (on_the_fly / "feature_opts.json").read_text() == (teacher_dir / "feature_opts.json").read_text()
    np.testing.assert_array_equal(np.load(on_the_fly / "global_cmvn.npz")["shift"],
                                  np.load(teacher_dir / "global_cmvn.npz")["shift"])

    post = tmp_path / "post"
    for d in (tr, cv):
        run_step("forward.py", "--output", "posteriors", "--topk", "3", "--temperature", "2", d, teacher_dir,
                 f"ark,scp:{post}_{d.name}.ark,{post}_{d.name}.scp")
    shutil.copy(f"{post}_tr.scp", f"{post}.scp")
    with open(f"{post}.scp", "a") as f:
        f.write(open(f"{post}_cv.scp").read())
    stored = tmp_path / "kd_post"
    run_step("train.py", *common, "--teacher-post", f"scp:{post}.scp", tr, cv, ali, stored)
    for exp in (on_the_fly, stored):
        h = _history(exp)
        assert min(x["cv"]["loss"] for x in h[1:]) < h[0]["cv"]["loss"]
        assert h[-1]["cv"]["xent"] != h[-1]["cv"]["loss"]  # the objective is KD, not plain CE


def _untranscribed_split(toy_split, root):
    """(tr, cv, alignments, untranscribed): tr holds one utterance of each of two speakers, with
    alignments of those two only; untranscribed holds the rest of the toy tr set, without text,
    and one utterance of a CV speaker (which training must leave out)."""
    from hdnn.kaldi.alignments import read_pdf_alignments
    from hdnn.kaldi.data_dir import subset_data_dir

    tr, cv, ali = toy_split
    utts = sorted(read_kaldi_map(tr / "utt2spk"))
    labelled = [u for u in utts if u.endswith("utt00")][:2]
    cv_utt = sorted(read_kaldi_map(cv / "utt2spk"))[0]
    subset_data_dir(tr, root / "tr", labelled)
    untranscribed = root / "untranscribed"
    subset_data_dir(tr, untranscribed, [u for u in utts if u not in labelled])
    (untranscribed / "text").unlink()
    # the CV speaker's utterance goes in with its own speaker and CMVN stats
    with open(untranscribed / "feats.scp", "a") as f:
        f.write(next(line for line in open(cv / "feats.scp") if line.startswith(cv_utt + " ")))
    for name in ("cmvn.scp", "spk2utt"):
        with open(untranscribed / name, "a") as f:
            f.write(next(line for line in open(cv / name) if line.startswith(cv_utt.split("-")[0] + " ")))
    with open(untranscribed / "utt2spk", "a") as f:
        f.write(f"{cv_utt} {cv_utt.split('-')[0]}\n")
    keep = set(labelled) | set(read_kaldi_map(cv / "utt2spk"))
    write_int_vectors(f"ark,scp:{root}/ali.ark,{root}/ali.scp", [(u, a) for u, a in read_pdf_alignments(ali)
                                                                  if u in keep])
    return root / "tr", cv, f"scp:{root}/ali.scp", untranscribed


def test_untranscribed_audio_trains_the_student_with_soft_targets_alone(teacher_dir, toy_split, tmp_path):
    tr, cv, ali, untranscribed = _untranscribed_split(toy_split, tmp_path / "data")
    common = [*FAST, "--max-iters", "3", "--model-preset", "student-small", "--kd-lambda", "0.5",
              "--teacher", teacher_dir / "final.pt"]
    run_step("train.py", *common, tr, cv, ali, tmp_path / "kd")
    p = run_step("train.py", *common, "--untranscribed", untranscribed, tr, cv, ali, tmp_path / "kd_untranscribed")
    alone, more = _history(tmp_path / "kd"), _history(tmp_path / "kd_untranscribed")
    frames = {u: len(m) for u, m in kaldiio.load_scp(str(untranscribed / "feats.scp")).items()}
    cv_utt = sorted(read_kaldi_map(cv / "utt2spk"))[0]
    # every untranscribed frame but the CV speaker's is trained on (in full minibatches of 32, as
    # nnet1: the frames short of one at the end of an epoch are not); CV is the same set
    transcribed = sum(len(m) for m in kaldiio.load_scp(str(tr / "feats.scp")).values())
    assert alone[1]["train"]["frames"] == transcribed - transcribed % 32
    n = transcribed + sum(frames.values()) - frames[cv_utt]
    assert more[1]["train"]["frames"] == n - n % 32
    assert more[0]["cv"] == alone[0]["cv"]
    assert "1 of 23 utterances are of CV speakers: left out" in (tmp_path / "kd_untranscribed/log/train.log").read_text()
    # with two transcribed utterances, the teacher's labels of the others make a better student
    best = {name: max(x["cv"]["accuracy"] for x in h[1:] if x["accepted"]) for name, h in
            (("alone", alone), ("more", more))}
    assert best["more"] > best["alone"] + 0.05, best
    # stored posteriors of the untranscribed utterances serve as well
    post = tmp_path / "post"
    for d in (tr, cv, untranscribed):
        run_step("forward.py", "--output", "posteriors", "--topk", "3", "--temperature", "1", d, teacher_dir,
                 f"ark,scp:{post}_{d.name}.ark,{post}_{d.name}.scp")
    with open(f"{post}.scp", "w") as f:
        f.write("".join(open(f"{post}_{d.name}.scp").read() for d in (tr, cv, untranscribed)))
    stored = tmp_path / "kd_untranscribed_post"
    run_step("train.py", *FAST, "--max-iters", "3", "--model-preset", "student-small", "--teacher-post",
             f"scp:{post}.scp", "--untranscribed", untranscribed, tr, cv, ali, stored)
    assert _history(stored)[1]["train"]["frames"] == more[1]["train"]["frames"]
    assert max(x["cv"]["accuracy"] for x in _history(stored)[1:]) > best["alone"] + 0.05
    assert "Traceback" not in p.stderr
    p = run_step("train.py", *FAST, "--untranscribed", untranscribed, tr, cv, ali, tmp_path / "ce", check=False)
    assert p.returncode != 0 and "--untranscribed needs a teacher" in p.stderr and not (tmp_path / "ce").exists()


def test_bad_inputs_give_one_line_errors_and_no_output(toy_split, tmp_path):
    tr, cv, ali = toy_split
    cfg = TrainConfig(max_iters=1, minibatch_size=32)

    def fails(match, *args, **kwargs):
        exp = tmp_path / f"exp_{match[:12]}"
        with pytest.raises(HdnnError, match=match) as e:
            train_from_dirs(*args, exp, "dnn-small", cfg, **kwargs)
        assert "\n" not in str(e.value)
        assert not (exp / "final.pt").exists() and not list(exp.glob("nnet/*")) and not _leftovers(exp)

    fails("nothing.scp", tr, cv, f"scp:{tmp_path}/nothing.scp")
    fails(r"no_such_dir", tr, tmp_path / "no_such_dir", ali)
    fails("not.pt: no such model file", tr, cv, ali, teacher=tmp_path / "not.pt")

    # NaN in one utterance's features: the error names the feats.scp and the utterance
    nan_dir = tmp_path / "nan_tr"
    shutil.copytree(tr, nan_dir)
    utt = read_kaldi_map(nan_dir / "feats.scp").popitem()[0]
    bad = np.full((50, 5), np.nan, dtype=np.float32)
    write_matrices(f"ark,scp:{nan_dir}/bad.ark,{nan_dir}/bad.scp", [(utt, bad)])
    lines = [l if not l.startswith(utt + " ") else open(nan_dir / "bad.scp").read().strip()
             for l in open(nan_dir / "feats.scp").read().splitlines()]
    (nan_dir / "feats.scp").write_text("\n".join(lines) + "\n")
    fails(rf"feats\.scp.*{utt}.*NaN", nan_dir, cv, ali, global_cmvn=False)

    # features of another dimension than the teacher takes
    other = make_data_dir(tmp_path / "other", num_spk=2, feat_dim=7)[0]
    teacher_exp = tmp_path / "dim_teacher"
    teacher_exp.mkdir()
    from hdnn.nnet.models import save_model
    save_model(teacher_exp / "final.pt", model_from_preset("teacher-small", 5 * 11, 6))
    fails(r"feats\.scp: network input of dim 77.*final\.pt takes dim 55", other, other, ali,
          teacher=teacher_exp / "final.pt", max_skip_fraction=1.0)

    # an empty cv split
    with pytest.raises(HdnnError, match="empty cv"):
        from hdnn.kaldi.data_dir import subset_tr_cv
        subset_tr_cv(tr, tmp_path / "t", tmp_path / "c", cv_fraction=0.01)


def test_nan_loss_is_an_error(toy_split, tmp_path):
    tr, cv, ali = toy_split
    from hdnn.kaldi.alignments import read_pdf_alignments
    from hdnn.kaldi.features import FeaturePipeline

    targets = dict(read_pdf_alignments(ali))
    sets = [FrameTargets(FeaturePipeline(d), FeaturePipeline(d).utts, targets, ali, feats_source=f"{d}/feats.scp")
            for d in (tr, cv)]
    model = model_from_preset("dnn-small", 55, 6)
    with torch.no_grad():
        model.output.bias[0] = float("inf")
    with pytest.raises(HdnnError, match=r"cv/feats\.scp: epoch 0 minibatch 0: loss is nan"):
        Trainer(tmp_path / "exp", model, *sets, TrainConfig()).train()
    assert not (tmp_path / "exp" / "checkpoint.pt").exists()


def test_train_help():
    out = subprocess.run([sys.executable, STEPS / "train.py", "--help"], capture_output=True, text=True, check=True)
    for opt in ("--teacher", "--teacher-post", "--kd-lambda", "--kd-temperature", "--cv-fraction", "--optimizer"):
        assert opt in out.stdout

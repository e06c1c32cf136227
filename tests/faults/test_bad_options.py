"""Options out of their range: one line naming the option, exit 1, before any work is done."""
import pytest

from tests.faults.common import assert_one_line_error, run
from tests.nnet.toy import FAST

TRAIN_CASES = [
    (["--cv-fraction", "0"], "--cv-fraction"),
    (["--cv-fraction", "1.5"], "--cv-fraction"),
    (["--kd-lambda", "1.5"], "--kd-lambda"),
    (["--kd-lambda", "-0.1"], "--kd-lambda"),
    (["--kd-temperature", "0"], "--kd-temperature"),
    (["--learn-rate", "0"], "--learn-rate"),
    (["--learn-rate", "-0.01"], "--learn-rate"),
    (["--learn-rate", "nan"], "--learn-rate"),
    (["--minibatch-size", "0"], "--minibatch-size"),
    (["--max-iters", "0"], "--max-iters"),
]


@pytest.mark.parametrize("opts,name", TRAIN_CASES, ids=[" ".join(c[0]) for c in TRAIN_CASES])
def test_train_refuses_an_option_out_of_range(toy_data, tmp_path, opts, name):
    data, ali = toy_data
    exp = tmp_path / "exp"
    cv = [] if "--cv-fraction" in opts else ["--cv-fraction", "0.25"]
    p = run("train", *FAST, *cv, *opts, data, ali, exp)
    assert_one_line_error(p, name)
    assert not (exp / "final.pt").exists() and not (exp / "checkpoint.pt").exists()


@pytest.mark.parametrize("opts,name", [(["--temperature", "0"], "--temperature"),
                                       (["--temperature", "-1"], "--temperature"),
                                       (["--output", "posteriors", "--topk", "0"], "--topk")])
def test_forward_refuses_an_option_out_of_range(toy_split, teacher_dir, tmp_path, opts, name):
    tr, _, _ = toy_split
    out = tmp_path / "out.ark"
    p = run("forward", *opts, tr, teacher_dir, f"ark:{out}")
    assert_one_line_error(p, name)
    assert not out.exists()


def test_a_rerun_with_the_option_corrected_equals_a_clean_run(toy_data, tmp_path):
    import torch

    data, ali = toy_data
    common = (*FAST, "--cv-fraction", "0.25", "--max-iters", "2")
    fixed, clean = tmp_path / "fixed", tmp_path / "clean"
    assert_one_line_error(run("train", *common, "--learn-rate", "0", data, ali, fixed), "--learn-rate")
    assert run("train", *common, data, ali, fixed).returncode == 0
    assert run("train", *common, data, ali, clean).returncode == 0
    a, b = (torch.load(d / "final.pt", weights_only=True)["state_dict"] for d in (fixed, clean))
    assert all(torch.equal(a[k], b[k]) for k in b)

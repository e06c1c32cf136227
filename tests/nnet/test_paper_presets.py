"""The paper-size presets through the recipe's commands: steps_py/train.py --model-preset teacher-paper
(CE), then --model-preset student-paper distilled from it (--teacher, --kd-lambda 0.5,
--kd-temperature 2), each for one epoch of a few minibatches on a handful of utterances, then
steps_py/forward.py. The data have 40-dim features (x 11 spliced frames = 440 inputs) and the
models 4000 outputs (--num-pdfs), the sizes at which tests/nnet/test_models.py pins the counts."""
import numpy as np
import pytest
import torch

from hdnn.kaldi.data_dir import read_kaldi_map
from hdnn.kaldi.io import read_matrices
from hdnn.nnet.model_dir import load_feature_pipeline
from hdnn.nnet.models import PRESETS, load_model, num_parameters

from tests.nnet.toy import make_data_dir, run_step

torch.set_num_threads(1)

FEAT_DIM, SPLICE, NUM_PDFS = 40, 5, 4000
INPUT_DIM = FEAT_DIM * (2 * SPLICE + 1)  # 440
# the recipe's options (egs/ami/run.sh train_nnet: --cv-fraction, the data dir, the targets), shrunk to one
# epoch of ~10 minibatches of 32 frames. At nnet1's per-frame learning rate 0.008 (x minibatch size), the 1-3
# steps of minibatches of 256 or 64 frames that these ~330 frames make overshoot: student-paper's CV loss rises.
COMMON = ["--max-iters", "1", "--minibatch-size", "32", "--randomizer-size", "2048", "--cv-fraction", "0.25",
          "--splice", str(SPLICE), "--num-pdfs", str(NUM_PDFS)]


@pytest.fixture(scope="module")
def paper_data(tmp_path_factory):
    """(data dir, pdf alignment rspecifier): 8 utterances of 40-dim features, 4 speakers, ~420 frames."""
    return make_data_dir(tmp_path_factory.mktemp("paper"), num_spk=4, utts_per_spk=2, feat_dim=FEAT_DIM)


@pytest.fixture(scope="module")
def paper_teacher(paper_data, tmp_path_factory):
    """The exp dir of a teacher-paper DNN trained (CE) for one epoch on ``paper_data``."""
    data, ali = paper_data
    exp = tmp_path_factory.mktemp("teacher_paper") / "exp"
    run_step("train.py", *COMMON, "--model-preset", "teacher-paper", data, ali, exp)
    return exp


def _history(exp):
    return torch.load(exp / "checkpoint.pt", weights_only=False)["history"]


def _check_trained(exp, preset: str, num_params: int):
    """final.pt of ``exp`` is the ``preset`` architecture at 440 inputs / 4000 pdfs, of ``num_params``
    parameters, and came from an accepted epoch that lowered the CV loss."""
    model = load_model(exp / "final.pt")
    assert model.config == {**PRESETS[preset], "input_dim": INPUT_DIM, "num_pdfs": NUM_PDFS}
    assert num_parameters(model) == num_params
    history = _history(exp)
    assert [h["epoch"] for h in history] == [0, 1] and history[1]["accepted"]
    assert history[1]["train"]["frames"] > 0
    assert history[1]["cv"]["loss"] < history[0]["cv"]["loss"]


def _check_forward(exp, data, tmp_path):
    """steps_py/forward.py on ``data``: one finite (frames x 4000) log-likelihood matrix per utterance."""
    spec = f"ark,scp:{tmp_path}/{exp.name}.ark,{tmp_path}/{exp.name}.scp"
    run_step("forward.py", data, exp, spec)
    loglikes = dict(read_matrices(f"scp:{tmp_path}/{exp.name}.scp"))
    pipeline = load_feature_pipeline(exp, data)
    assert sorted(loglikes) == sorted(read_kaldi_map(data / "utt2spk"))
    for utt, mat in loglikes.items():
        assert mat.shape == (len(pipeline(utt)), NUM_PDFS), utt
        assert np.isfinite(mat).all(), utt


def test_teacher_paper_trains_and_forwards(paper_teacher, paper_data, tmp_path):
    _check_trained(paper_teacher, "teacher-paper", 30_080_928)
    _check_forward(paper_teacher, paper_data[0], tmp_path)


def test_student_paper_distils_from_teacher_paper(paper_teacher, paper_data, tmp_path):
    data, ali = paper_data
    exp = tmp_path / "student_kd"
    run_step("train.py", *COMMON, "--model-preset", "student-paper", "--teacher", paper_teacher / "final.pt",
             "--kd-lambda", "0.5", "--kd-temperature", "2", data, ali, exp)
    _check_trained(exp, "student-paper", 770_592)
    cv = _history(exp)[1]["cv"]
    assert cv["xent"] != cv["loss"]  # the objective is KD, not plain CE
    # the student sees the teacher's input
    assert (exp / "feature_opts.json").read_text() == (paper_teacher / "feature_opts.json").read_text()
    _check_forward(exp, data, tmp_path)

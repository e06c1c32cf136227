import subprocess
import sys

import pytest
import torch

from hdnn.errors import HdnnError
from hdnn.nnet.losses import cross_entropy, kd_loss, soft_cross_entropy
from hdnn.nnet.models import HDNN, DNN, load_model, model_from_preset, num_parameters, save_model

from tests.conftest import ROOT

torch.set_num_threads(1)


def test_paper_presets_parameter_counts():
    teacher = model_from_preset("teacher-paper", 440, 4000)
    student = model_from_preset("student-paper", 440, 4000)
    # 440*2048+2048 + 5*(2048^2+2048) + 2048*4000+4000
    assert num_parameters(teacher) == 30_080_928
    # input 440*128+128, 10 layers 128^2+128, tied T and C 2*(128^2+128), output 128*4000+4000
    assert num_parameters(student) == 770_592 < 800_000


@pytest.mark.parametrize("args", [["--preset", "teacher-paper"], ["--preset", "student-paper"]])
def test_nnet_info_prints_parameter_count(args):
    out = subprocess.run([sys.executable, ROOT / "steps_py" / "nnet_info.py", *args, "--input-dim", "440",
                          "--num-pdfs", "4000"], capture_output=True, text=True, check=True).stdout
    last = out.strip().splitlines()[-1]
    assert last.startswith("parameters: ")
    n = int(last.split()[1])
    assert (28e6 <= n <= 32e6) if args[1] == "teacher-paper" else n < 0.8e6


def test_tied_gates_are_one_shared_set_and_get_gradients():
    tied = HDNN(20, 7, layers=4, units=16, tied_gates=True)
    untied = HDNN(20, 7, layers=4, units=16, tied_gates=False)
    assert len(tied.gate_parameters()) == 4  # W_T, b_T, W_C, b_C
    assert len(untied.gate_parameters()) == 16
    assert num_parameters(untied) - num_parameters(tied) == 3 * 2 * (16 * 16 + 16)
    gate_ids = {id(p) for p in tied.gate_parameters()}
    assert gate_ids.isdisjoint(id(p) for p in tied.non_gate_parameters())
    assert len(gate_ids) + len(tied.non_gate_parameters()) == len(list(tied.parameters()))

    # gradients reach the shared gates from every layer: the gate gradient is the sum of per-layer terms
    x, y = torch.randn(9, 20), torch.randint(0, 7, (9,))
    cross_entropy(tied(x), y).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in tied.gate_parameters())
    one_layer = HDNN(20, 7, layers=1, units=16)
    one_layer.load_state_dict({k: v for k, v in tied.state_dict().items() if not k.startswith("hidden.")
                               or k.startswith("hidden.0.")})
    cross_entropy(one_layer(x), y).backward()
    assert not torch.allclose(one_layer.transform_gates[0].weight.grad, tied.transform_gates[0].weight.grad)


def test_highway_layer_equation():
    m = HDNN(3, 2, layers=1, units=4, tied_gates=True, carry_gate=False)
    x = torch.randn(5, 3)
    h0 = torch.sigmoid(m.input(x))
    t = torch.sigmoid(m.transform_gates[0](h0))
    h1 = torch.sigmoid(m.hidden[0](h0)) * t + h0 * (1 - t)
    torch.testing.assert_close(m(x), m.output(h1))
    assert len(m.carry_gates) == 0


def test_save_load_round_trip(tmp_path):
    for model in (DNN(10, 4, layers=2, units=8, activation="relu"), HDNN(10, 4, layers=3, units=8, tied_gates=False)):
        save_model(tmp_path / "m.pt", model)
        again = load_model(tmp_path / "m.pt")
        assert again.config == model.config
        x = torch.randn(3, 10)
        torch.testing.assert_close(again(x), model(x))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary left behind
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(HdnnError, match="bad.pt"):
        load_model(tmp_path / "bad.pt")
    with pytest.raises(HdnnError, match="missing.pt"):
        load_model(tmp_path / "missing.pt")


def test_kd_loss_by_hand():
    zs = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    zt = torch.tensor([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    y = torch.tensor([1, 2])
    lam, tau = 0.3, 2.0

    def softmax(row, t):
        e = [pow(2.718281828459045, v / t) for v in row]
        return [v / sum(e) for v in e]

    import math
    hard = sum(-math.log(softmax(zs[i].tolist(), 1)[y[i]]) for i in range(2)) / 2
    soft = sum(-sum(p * math.log(q) for p, q in zip(softmax(zt[i].tolist(), tau), softmax(zs[i].tolist(), tau)))
               for i in range(2)) / 2
    kl = sum(sum(p * math.log(p / q) for p, q in zip(softmax(zt[i].tolist(), tau), softmax(zs[i].tolist(), tau)))
             for i in range(2)) / 2
    expected = (1 - lam) * hard + lam * tau ** 2 * kl
    assert kd_loss(zs, y, teacher_logits=zt, lam=lam, temperature=tau).item() == pytest.approx(expected, rel=1e-6)

    # stored sparse posteriors (ids, weights) padded with weight 0 give the same as dense ones
    p = torch.softmax(zt / tau, dim=1)
    ids = torch.tensor([[0, 2, 1, 0], [2, 1, 0, 0]])
    weights = torch.stack([p[0][ids[0]], p[1][ids[1]]])
    weights[:, 3] = 0
    sparse = kd_loss(zs, y, teacher_posteriors=(ids, weights), lam=lam, temperature=tau)
    assert sparse.item() == pytest.approx(expected, rel=1e-6)
    assert soft_cross_entropy(zs, p, tau).item() == pytest.approx(soft, rel=1e-6)
    # a student that matches its teacher has nothing left to learn from it
    assert kd_loss(zt, None, teacher_logits=zt, lam=1.0, temperature=tau).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        kd_loss(zs, y, lam=lam)

    # an untranscribed frame (hard target -1) costs its soft term alone, at full weight
    kl_frame = [sum(p * math.log(p / q) for p, q in zip(softmax(zt[i].tolist(), tau), softmax(zs[i].tolist(), tau)))
                for i in range(2)]
    hard0 = -math.log(softmax(zs[0].tolist(), 1)[y[0]])
    expected = ((1 - lam) * hard0 + lam * tau ** 2 * kl_frame[0] + tau ** 2 * kl_frame[1]) / 2
    unlabelled = torch.tensor([1, -1])
    assert kd_loss(zs, unlabelled, teacher_logits=zt, lam=lam, temperature=tau).item() == pytest.approx(expected, rel=1e-6)
    assert kd_loss(zs, unlabelled, teacher_posteriors=(ids, weights), lam=lam,
                   temperature=tau).item() == pytest.approx(expected, rel=1e-6)

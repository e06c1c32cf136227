"""Acoustic models: a plain DNN (the teacher) and a highway DNN (the small-footprint student).

Both are plain ``nn.Module`` s mapping spliced, normalised feature frames (N, input_dim) to
senone logits (N, num_pdfs); softmax / log-softmax is left to the losses and to forward.
Every model keeps the keyword arguments it was built with in ``.config``, so that
``save_model`` / ``load_model`` can rebuild it from one file.
"""
import pickle
import sys

import torch
from torch import nn

from hdnn.errors import HdnnError, atomic_path, first_line

_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
# Glorot & Bengio (2010) uniform initialisation; sigmoid units want 4x the range of tanh ones.
_INIT_GAINS = {"sigmoid": 4.0, "tanh": 5.0 / 3, "relu": 2 ** 0.5, "linear": 1.0}


def glorot_init(linear, activation):
    """Glorot-uniform weights for the unit type that follows ``linear``, zero biases. Without
    RBM pre-training, deep sigmoid nets barely move from PyTorch's default (smaller) init."""
    nn.init.xavier_uniform_(linear.weight, gain=_INIT_GAINS[activation])
    nn.init.zeros_(linear.bias)


def lhuc_scale(a):
    """LHUC amplitudes 2 sigmoid(a) in (0, 2), 1 at a = 0 (Swietojanski & Renals, 2014)."""
    return 2 * torch.sigmoid(a)


def add_lhuc(model):
    """Give ``model`` LHUC parameters (zeros: it computes what it did) and return them. They
    are not part of the architecture (``config``); speaker adaptation learns them."""
    model.lhuc = nn.Parameter(torch.zeros(model.lhuc_shape()))
    return model.lhuc


class DNN(nn.Module):
    """Feed-forward DNN: ``layers`` hidden layers of ``units`` units, then a linear senone layer."""

    def __init__(self, input_dim, num_pdfs, layers=6, units=2048, activation="sigmoid"):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise HdnnError(f"unknown activation {activation!r}; choose from {sorted(_ACTIVATIONS)}")
        self.config = dict(type="DNN", input_dim=input_dim, num_pdfs=num_pdfs, layers=layers,
                           units=units, activation=activation)
        dims = [input_dim] + [units] * layers
        self.hidden = nn.Sequential(*[m for d_in, d_out in zip(dims, dims[1:])
                                      for m in (nn.Linear(d_in, d_out), _ACTIVATIONS[activation]())])
        self.output = nn.Linear(dims[-1], num_pdfs)
        for layer in self.hidden[::2]:
            glorot_init(layer, activation)
        glorot_init(self.output, "linear")
        self.register_parameter("lhuc", None)

    def forward(self, x):
        if self.lhuc is None:
            return self.output(self.hidden(x))
        h = x
        for l in range(self.config["layers"]):
            h = self.hidden[2 * l + 1](self.hidden[2 * l](h)) * lhuc_scale(self.lhuc[l])
        return self.output(h)

    def lhuc_shape(self):
        """(scaled layers, units): the shape of the LHUC parameters (one scale per hidden unit)."""
        return self.config["layers"], self.config["units"]

    def gate_parameters(self):
        """A DNN has no gates."""
        return []

    def non_gate_parameters(self):
        return list(self.parameters())


class HDNN(nn.Module):
    """Highway DNN (Lu & Renals): an input layer sigma(W_in x + b_in) to the hidden width, then
    ``layers`` highway layers

        h_l = sigma(W_l h_{l-1} + b_l) * T(h_{l-1}) + h_{l-1} * C(h_{l-1})

    with transform gate T(h) = sigma(W_T h + b_T) and carry gate C(h) = sigma(W_C h + b_C), and a
    linear senone layer. With ``tied_gates`` one (W_T, b_T) and one (W_C, b_C) serve every layer, so
    the gates cost 2 (units^2 + units) parameters in all; otherwise each layer has its own.
    With ``carry_gate=False``, C = 1 - T (the original highway network of Srivastava et al.).
    """

    def __init__(self, input_dim, num_pdfs, layers=10, units=128, tied_gates=True, carry_gate=True):
        super().__init__()
        self.config = dict(type="HDNN", input_dim=input_dim, num_pdfs=num_pdfs, layers=layers,
                           units=units, tied_gates=tied_gates, carry_gate=carry_gate)
        self.input = nn.Linear(input_dim, units)
        self.hidden = nn.ModuleList(nn.Linear(units, units) for _ in range(layers))
        num_gate_sets = 1 if tied_gates else layers
        self.transform_gates = nn.ModuleList(nn.Linear(units, units) for _ in range(num_gate_sets))
        self.carry_gates = nn.ModuleList(nn.Linear(units, units) for _ in range(num_gate_sets if carry_gate else 0))
        self.output = nn.Linear(units, num_pdfs)
        for layer in (self.input, *self.hidden, *self.transform_gates, *self.carry_gates):
            glorot_init(layer, "sigmoid")
        glorot_init(self.output, "linear")
        self.register_parameter("lhuc", None)

    def _gates(self, l, h):
        i = 0 if self.config["tied_gates"] else l
        t = torch.sigmoid(self.transform_gates[i](h))
        c = torch.sigmoid(self.carry_gates[i](h)) if self.config["carry_gate"] else 1 - t
        return t, c

    def forward(self, x):
        h = self._lhuc(0, torch.sigmoid(self.input(x)))
        for l, layer in enumerate(self.hidden):
            t, c = self._gates(l, h)
            h = self._lhuc(l + 1, torch.sigmoid(layer(h)) * t + h * c)
        return self.output(h)

    def _lhuc(self, l, h):
        return h if self.lhuc is None else h * lhuc_scale(self.lhuc[l])

    def lhuc_shape(self):
        """(scaled layers, units): the input layer's and every highway layer's output."""
        return self.config["layers"] + 1, self.config["units"]

    def gate_parameters(self):
        """The gate weights and biases: what gate-only sMBR training and adaptation update."""
        return list(self.transform_gates.parameters()) + list(self.carry_gates.parameters())

    def non_gate_parameters(self):
        gates = {id(p) for p in self.gate_parameters()}
        return [p for p in self.parameters() if id(p) not in gates]


MODEL_TYPES = {"DNN": DNN, "HDNN": HDNN}

# Architectures by name; input_dim and num_pdfs come from the data.
PRESETS = {
    # The paper's teacher: Kaldi nnet1's AMI DNN, ~30M parameters at 440 inputs / ~4k pdfs.
    "teacher-paper": dict(type="DNN", layers=6, units=2048, activation="sigmoid"),
    # The paper's student: an HDNN of under 0.8M parameters at 440 inputs / 4k pdfs.
    "student-paper": dict(type="HDNN", layers=10, units=128, tied_gates=True, carry_gate=True),
    # Sizes for the embedded meeting corpus (minutes of speech, a few hundred pdfs).
    "teacher-small": dict(type="DNN", layers=4, units=512, activation="sigmoid"),
    "student-small": dict(type="HDNN", layers=6, units=64, tied_gates=True, carry_gate=True),
    "dnn-small": dict(type="DNN", layers=6, units=64, activation="sigmoid"),
}


def build_model(config):
    """Build a model from a config dict as kept in ``model.config``."""
    config = dict(config)
    kind = config.pop("type", None)
    if kind not in MODEL_TYPES:
        raise HdnnError(f"unknown model type {kind!r}; choose from {sorted(MODEL_TYPES)}")
    return MODEL_TYPES[kind](**config)


def model_from_preset(name, input_dim, num_pdfs, **overrides):
    """Build the preset architecture ``name`` for ``input_dim`` inputs and ``num_pdfs`` outputs."""
    if name not in PRESETS:
        raise HdnnError(f"unknown model preset {name!r}; choose from {', '.join(PRESETS)}")
    return build_model({**PRESETS[name], **overrides, "input_dim": input_dim, "num_pdfs": num_pdfs})


def num_parameters(model):
    return sum(p.numel() for p in model.parameters())


def save_torch(obj, path):
    """torch.save to ``path`` atomically, the same bytes for the same ``obj``: torch names the
    archive inside after the file it is given, so it gets a file object (named "archive")
    rather than the temporary file's name."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            torch.save(_canonical(obj), f)
    except RuntimeError as e:  # torch's writer reports a failed write (a full disk) this way
        raise HdnnError(f"{path}: cannot write it ({first_line(e)}; is the disk full?)") from None


def _canonical(obj):
    """``obj`` with every string of its dicts, lists and tuples interned: pickle writes a string
    again or refers back to it by object identity, so without this a state resumed from a file
    (whose strings are new objects) pickles to other bytes than the same state never saved."""
    if isinstance(obj, str):
        return sys.intern(obj)
    if isinstance(obj, dict) and type(obj) is dict:
        return {_canonical(k): _canonical(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(_canonical(v) for v in obj)
    return obj


def tensors_to_cpu(obj):
    """``obj`` with the tensors in its dicts and lists moved to the CPU in place (a model trained on
    a GPU is saved as one trained on the CPU; CPU tensors stay the same objects)."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in list(items):
        if isinstance(value, torch.Tensor):
            obj[key] = value.cpu()
        else:
            tensors_to_cpu(value)
    return obj


def save_model(path, model):
    """Write ``model`` (config + weights) to one file, atomically."""
    save_torch({"config": model.config, "state_dict": tensors_to_cpu(model.state_dict())}, path)


def load_model(path):
    """Rebuild a model written by ``save_model``; the error names the file when it cannot."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        model = build_model(blob["config"])
        model.load_state_dict(blob["state_dict"])
    except FileNotFoundError:
        raise HdnnError(f"{path}: no such model file") from None
    except (pickle.UnpicklingError, RuntimeError, KeyError, TypeError, ValueError, EOFError) as e:
        raise HdnnError(f"{path}: not an hdnn model file ({first_line(e)})") from None
    return model


def describe(model):
    """Lines describing the architecture, like Kaldi's nnet-info; the last is 'parameters: N'."""
    cfg = model.config
    lines = [f"model: {cfg['type']}  input-dim {cfg['input_dim']}  num-pdfs {cfg['num_pdfs']}"]
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            lines.append(f"  {name:<22} Linear {module.in_features} -> {module.out_features}"
                         f"  ({num_parameters(module)} params)")
    if cfg["type"] == "HDNN":
        sharing = "tied across all hidden layers" if cfg["tied_gates"] else "one set per hidden layer"
        carry = "sigmoid carry gate C" if cfg["carry_gate"] else "carry C = 1 - T"
        lines.append(f"  gates: transform gate T, {carry}; {sharing}; "
                     f"{sum(p.numel() for p in model.gate_parameters())} gate params")
    elif cfg["type"] == "DNN":
        lines.append(f"  activation: {cfg['activation']}")
    lines.append(f"parameters: {num_parameters(model)}")
    return lines

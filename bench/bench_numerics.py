#!/usr/bin/env python3
"""Do hdnn's numeric kernels depend on the CPU they run on?

Runs a probe of the kernels a recipe uses (kaldi-native-fbank features; numpy/OpenBLAS GMM
statistics as gmm-acc-stats-ali computes them; an HDNN student and a DNN trained for a few
SGD steps with CE and KD, with torch/MKL/ATen) in fresh processes, each under another
"machine":

  this CPU            the machine as it is (AVX-512 where it has it)
  AVX-512 hidden      the same under valgrind, whose virtual CPU has no AVX-512 (as an
                      AVX2-only CPU: every library dispatches to its AVX2 code)
  2 threads           BLAS/OpenMP/torch with two threads, as on a bigger machine

once with hdnn's pins (hdnn/numerics.py) and once without them (HDNN_NUMERICS=native). It
prints the md5 of each probe's result per machine. With the pins, every row must be the same
on every machine; without them, the rows that change show what the pins are for.

Usage: bench/bench_numerics.py [--no-valgrind]    (about 2-4 min; valgrind is slow)
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r'''
import hashlib, json
import hdnn
import numpy as np

def md5(*arrays):
    h = hashlib.md5()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:10]

out = {}
rng = np.random.default_rng(0)

import kaldi_native_fbank as knf
opts = knf.FbankOptions(); opts.frame_opts.dither = 0; opts.mel_opts.num_bins = 40
fb = knf.OnlineFbank(opts)
fb.accept_waveform(16000, (rng.standard_normal(16000) * 3000).tolist()); fb.input_finished()
out["fbank (kaldi-native-fbank)"] = md5(np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)]))

# gmm-acc-stats-ali's inner loop as hdnn.gmm.train.accumulate runs it
x = rng.standard_normal((3000, 39))
means, ivars = rng.standard_normal((16, 39)), rng.uniform(0.5, 2, (16, 39))
ll = -0.5 * (((x[:, None, :] - means) ** 2) * ivars).sum(-1) + 0.5 * np.log(ivars).sum(-1)
post = np.exp(ll - ll.max(1, keepdims=True)); post /= post.sum(1, keepdims=True)
out["GMM statistics (numpy, OpenBLAS)"] = md5(post.sum(0), post.T @ x, post.T @ (x * x), np.log(post + 1e-10).sum())

import torch
from hdnn.cli import set_torch_threads
from hdnn.nnet.losses import kd_loss
from hdnn.nnet.models import model_from_preset
set_torch_threads()
torch.manual_seed(0)
feats = torch.randn(512, 440)
targets = torch.randint(0, 300, (512,))
teacher = model_from_preset("teacher-small", 440, 300)
for preset in ("student-small", "dnn-small"):
    model = model_from_preset(preset, 440, 300)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(10):
        batch = slice(64 * (step % 8), 64 * (step % 8 + 1))
        logits = model(feats[batch])
        with torch.no_grad():
            soft = teacher(feats[batch])
        loss = kd_loss(logits, targets[batch], teacher_logits=soft, lam=0.5, temperature=2.0)
        opt.zero_grad(); loss.backward(); opt.step()
    out[f"{preset} after 10 KD steps (torch)"] = md5(*[p.detach().numpy() for p in model.parameters()])
print("PROBE " + json.dumps(out))
'''


def run_probe(env_changes, valgrind=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS_", "OMP_", "MKL_", "NPY_", "ATEN_", "ONEDNN_"))}
    env.update(env_changes)
    cmd = [sys.executable, "-c", PROBE]
    if valgrind:
        cmd = ["valgrind", "--tool=none", "-q", *cmd]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    line = next((l for l in p.stdout.splitlines() if l.startswith("PROBE ")), None)
    if line is None:
        raise SystemExit(f"probe failed ({' '.join(env_changes)}): {p.stderr.strip()[-2000:]}")
    return json.loads(line[6:])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-valgrind", action="store_true", help="skip the AVX-512-hidden machine")
    args = ap.parse_args()
    machines = [("this CPU", {}, False), ("2 threads", {"HDNN_NUM_THREADS": "2", "OMP_NUM_THREADS": "2",
                                                      "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}, False)]
    if not args.no_valgrind and shutil.which("valgrind"):
        machines.insert(1, ("AVX-512 hidden", {}, True))
    verdicts = []
    for label, extra in (("pinned (hdnn/numerics.py)", {}), ("native (HDNN_NUMERICS=native)", {"HDNN_NUMERICS": "native"})):
        results = {m: run_probe({**extra, **env}, vg) for m, env, vg in machines}
        probes = list(results[machines[0][0]])
        print(f"\n{label}\n")
        print("| probe | " + " | ".join(m for m, _, _ in machines) + " |")
        print("|---|" + "---|" * len(machines))
        for probe in probes:
            print(f"| {probe} | " + " | ".join(results[m][probe] for m, _, _ in machines) + " |")
        same = sum(len({results[m][p] for m, _, _ in machines}) == 1 for p in probes)
        verdicts.append(f"{label}: {same} of {len(probes)} probes give the same bytes on all {len(machines)} machines")
    print()
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()

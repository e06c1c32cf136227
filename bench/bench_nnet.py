#!/usr/bin/env python3
"""Benchmark of the nnet core: training and forward frames/second of the model presets,
beside the machine's float32 GEMM rate measured on a matmul of the teacher's size
(minibatch x 2048 @ 2048 x 2048). Prints a table; "of peak" is useful FLOP/s / GEMM FLOP/s,
with useful FLOPs = 2 per multiply-add of every Linear applied (x3 for training: forward,
and the two backward products).

Usage: bench/bench_nnet.py [--seconds 3] [--threads 1] [--presets teacher-paper,student-paper,...]
"""
import argparse
import time

import torch

from hdnn.nnet.losses import cross_entropy
from hdnn.nnet.models import HDNN, model_from_preset, num_parameters

PAPER_DIMS = (440, 4000)   # 40 fbank x 11 frames, ~4k senones (AMI)
SMALL_DIMS = (440, 500)    # the embedded corpus: a few hundred pdfs


def forward_flops_per_frame(model):
    """2 x multiply-adds of one frame's forward pass (shared gates count once per layer)."""
    def linear(m):
        return 2 * m.in_features * m.out_features

    if isinstance(model, HDNN):
        layers = len(model.hidden)
        per_layer = linear(model.hidden[0]) + sum(linear(g) for g in (*model.transform_gates[:1], *model.carry_gates[:1]))
        return linear(model.input) + layers * per_layer + linear(model.output)
    return sum(linear(m) for m in model.modules() if isinstance(m, torch.nn.Linear))


def timed(step, seconds):
    """Calls of step() per second, after a warm-up."""
    for _ in range(3):
        step()
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        step()
        n += 1
    return n / elapsed


def gemm_flops(minibatch, seconds):
    a, b = torch.randn(minibatch, 2048), torch.randn(2048, 2048)
    return 2 * minibatch * 2048 * 2048 * timed(lambda: a @ b, seconds)


def bench_preset(name, minibatch, forward_batch, seconds):
    input_dim, num_pdfs = PAPER_DIMS if name.endswith("-paper") else SMALL_DIMS
    torch.manual_seed(0)
    model = model_from_preset(name, input_dim, num_pdfs)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x, y = torch.randn(minibatch, input_dim), torch.randint(0, num_pdfs, (minibatch,))

    def train_step():
        opt.zero_grad(set_to_none=True)
        cross_entropy(model(x), y).backward()
        opt.step()

    train_fps = minibatch * timed(train_step, seconds)
    xf = torch.randn(forward_batch, input_dim)
    model.eval()
    with torch.no_grad():
        forward_fps = forward_batch * timed(lambda: torch.log_softmax(model(xf), -1), seconds)
    flops = forward_flops_per_frame(model)
    return dict(name=name, dims=f"{input_dim}/{num_pdfs}", params=num_parameters(model),
                train_fps=train_fps, train_flops=3 * flops * train_fps,
                forward_fps=forward_fps, forward_flops=flops * forward_fps)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--minibatch", type=int, default=256, help="training minibatch (nnet1's default)")
    p.add_argument("--forward-batch", type=int, default=1000, help="frames per forward call (one utterance)")
    p.add_argument("--presets", default="teacher-paper,student-paper,teacher-small,student-small,dnn-small")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    peak = gemm_flops(args.minibatch, args.seconds)
    print(f"torch {torch.__version__}, {args.threads} thread(s); float32 GEMM {args.minibatch}x2048 @ 2048x2048: "
          f"{peak / 1e9:.1f} GFLOP/s")
    head = (f"{'preset':<14} {'in/pdfs':>9} {'params':>11} {'train fr/s':>11} {'GFLOP/s':>8} {'of peak':>8}"
            f" {'fwd fr/s':>10} {'GFLOP/s':>8} {'of peak':>8}")
    print(head)
    print("-" * len(head))
    for name in args.presets.split(","):
        r = bench_preset(name, args.minibatch, args.forward_batch, args.seconds)
        print(f"{r['name']:<14} {r['dims']:>9} {r['params']:>11,} {r['train_fps']:>11,.0f} "
              f"{r['train_flops'] / 1e9:>8.1f} {r['train_flops'] / peak:>8.2f} {r['forward_fps']:>10,.0f} "
              f"{r['forward_flops'] / 1e9:>8.1f} {r['forward_flops'] / peak:>8.2f}")


if __name__ == "__main__":
    main()

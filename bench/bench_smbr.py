#!/usr/bin/env python3
"""Benchmark of sequence training: frames/second of one sMBR update (network forward, lattice
forward-backward in float64, backward, SGD step) on one core, per model preset, beside the
rate of a cross-entropy update on the same frames and the criterion alone. Lattices are
synthetic: a chain of frames with `--density` arcs per frame (denominator lattices of
latgen-faster-mapped at lattice-beam 7 have tens of arcs per frame once expanded).

Usage: bench/bench_smbr.py [--seconds 3] [--frames 500] [--density 30] [--presets teacher-small,student-small]
"""
import argparse

import numpy as np
import torch
import torch.nn.functional as F

from bench_nnet import timed  # this folder is on sys.path when a bench script runs
from hdnn.kaldi.lattices import Lattice
from hdnn.nnet.models import model_from_preset
from hdnn.nnet.sequence import FrameAccuracy, LatticeBatch, smbr_loss

DIMS = (440, 500)   # the embedded corpus: 40 fbank x 11 frames, a few hundred pdfs


def sausage(rng, frames, density, num_tids):
    """A lattice of `density` parallel arcs per frame, random transition-ids and graph costs."""
    src = np.repeat(np.arange(frames), density)
    tid = rng.integers(1, num_tids + 1, frames * density).astype(np.int32)
    graph = rng.uniform(0, 2, frames * density)
    zero = np.zeros(frames * density)
    final = np.r_[np.full(frames, np.inf), 0.0]
    return Lattice(frames + 1, 0, src, src + 1, tid, zero.astype(np.int32), graph, zero, final, final.copy())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--frames", type=int, default=500, help="frames per utterance (one lattice per update)")
    p.add_argument("--density", type=int, default=30, help="arcs per frame")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--presets", default="teacher-small,student-small")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    input_dim, num_pdfs = DIMS
    tid2pdf = np.r_[-1, np.repeat(np.arange(num_pdfs), 2)]
    tid2phone = np.r_[0, 1 + np.arange(2 * num_pdfs) // 6]
    lat = sausage(rng, args.frames, args.density, len(tid2pdf) - 1)
    batch = LatticeBatch([("u", lat)], [args.frames], tid2pdf)
    ref = rng.integers(1, len(tid2pdf), args.frames)
    acc = batch.accuracy(FrameAccuracy(tid2pdf, tid2phone, (1,)), ref)
    x = torch.randn(args.frames, input_dim)
    labels = torch.from_numpy(tid2pdf[ref]).long()
    y0 = torch.randn(args.frames, num_pdfs, requires_grad=True)
    crit = timed(lambda: smbr_loss(y0, batch, 0.1, acc)[0].backward(), args.seconds) * args.frames
    print(f"{args.frames} frames per lattice, {args.density} arcs per frame, {args.threads} thread(s)\n")
    print(f"criterion alone (forward-backward + gradient): {crit:,.0f} frames/s\n")
    print("| preset | CE update frames/s | sMBR update frames/s | sMBR / CE |")
    print("|---|---:|---:|---:|")
    for name in args.presets.split(","):
        model = model_from_preset(name, input_dim, num_pdfs)
        opt = torch.optim.SGD(model.parameters(), lr=1e-5)

        def ce_step():
            opt.zero_grad()
            F.cross_entropy(model(x), labels).backward()
            opt.step()

        def smbr_step():
            opt.zero_grad()
            smbr_loss(F.log_softmax(model(x), -1), batch, 0.1, acc)[0].backward()
            opt.step()

        ce = timed(ce_step, args.seconds) * args.frames
        sm = timed(smbr_step, args.seconds) * args.frames
        print(f"| {name} | {ce:,.0f} | {sm:,.0f} | {sm / ce:.2f} |")


if __name__ == "__main__":
    main()

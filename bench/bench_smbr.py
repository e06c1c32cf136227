#!/usr/bin/env python3
"""Benchmark of sequence training: frames/second of one sMBR update (network forward, the
denominator's forward-backward in float64, backward, SGD step) on one core, per model preset,
beside the rate of a cross-entropy update on the same frames and the criterion alone.

--denominator lattice (the Kaldi backend's): synthetic lattices, a chain of frames with
`--density` arcs per frame (denominator lattices of latgen-faster-mapped at lattice-beam 7 have
tens of arcs per frame once expanded). --denominator graph (the Kaldi-free backend's): a
lattice-free transition-id bigram, `--den-graph FILE` (make_den_graph.py's den_graph.npz; its
pdfs set the output size) or a random one of `--states` states and `--out-degree` arcs each
(the IHM demo's: 3,686 states, 12,875 arcs).

Usage: bench/bench_smbr.py [--seconds 3] [--frames 500] [--density 30] [--denominator lattice|graph]
                           [--den-graph FILE] [--presets teacher-small,student-small]
"""
import argparse

import numpy as np
import torch
import torch.nn.functional as F

from bench_nnet import timed  # this folder is on sys.path when a bench script runs
from hdnn.kaldi.lattices import Lattice
from hdnn.nnet.dengraph import DenGraph, den_smbr_loss
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


def random_graph(rng, states, out_degree, num_pdfs):
    """A bigram of `states` transition-ids (random pdfs) with a self-loop and `out_degree` - 1
    random successors each."""
    src = np.repeat(np.arange(states), out_degree)
    dst = np.where(np.arange(states * out_degree) % out_degree == 0, src, rng.integers(0, states, states * out_degree))
    keys = np.unique(src * states + dst)
    src, dst = keys // states, keys % states
    w = rng.uniform(0.1, 1.0, len(src))
    total = np.bincount(src, weights=w, minlength=states) + 0.1
    tids = np.arange(1, states + 1)
    return DenGraph(tids=tids, pdfs=rng.integers(0, num_pdfs, states), src=src, dst=dst,
                    logp=np.log(w / total[src]), initial=np.full(states, -np.log(states)),
                    final=np.log(0.1 / total))


def denominator(args, rng, num_pdfs, graph=None):
    """(loss(y), reference pdfs, description) of the chosen denominator (graph: a loaded
    den_graph.npz for --denominator graph, else a random one)."""
    if args.denominator == "lattice":
        tid2pdf = np.r_[-1, np.repeat(np.arange(num_pdfs), 2)]
        tid2phone = np.r_[0, 1 + np.arange(2 * num_pdfs) // 6]
        batch = LatticeBatch([("u", sausage(rng, args.frames, args.density, len(tid2pdf) - 1))], [args.frames], tid2pdf)
        ref = rng.integers(1, len(tid2pdf), args.frames)
        acc = batch.accuracy(FrameAccuracy(tid2pdf, tid2phone, (1,)), ref)
        return (lambda y: smbr_loss(y, batch, 0.1, acc)[0]), tid2pdf[ref], f"lattices of {args.density} arcs per frame"
    graph = graph if graph is not None else random_graph(rng, args.states, args.out_degree, num_pdfs)
    ref_states = rng.integers(0, graph.num_states, args.frames)
    tid2pdf = np.zeros(int(graph.tids.max()) + 1, np.int64)
    tid2pdf[graph.tids] = graph.pdfs
    tid2phone = np.r_[0, 1 + np.arange(len(tid2pdf) - 1) // 6]
    acc = graph.accuracy(FrameAccuracy(tid2pdf, tid2phone, (1,)), graph.tids[ref_states])
    return ((lambda y: den_smbr_loss(y, graph, 0.1, acc)[0]), graph.pdfs[ref_states],
            f"a lattice-free graph of {graph.num_states} states and {graph.num_arcs} arcs")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--frames", type=int, default=500, help="frames per utterance (one lattice per update)")
    p.add_argument("--density", type=int, default=30, help="arcs per frame")
    p.add_argument("--denominator", choices=("lattice", "graph"), default="lattice")
    p.add_argument("--den-graph", help="a den_graph.npz for --denominator graph (default: a random one)")
    p.add_argument("--states", type=int, default=3686, help="states of the random graph")
    p.add_argument("--out-degree", type=int, default=4, help="arcs per state of the random graph")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--presets", default="teacher-small,student-small")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    input_dim, num_pdfs = DIMS
    graph = DenGraph.load(args.den_graph) if args.den_graph else None
    if graph is not None:
        num_pdfs = int(graph.pdfs.max()) + 1
    loss, ref_pdfs, what = denominator(args, rng, num_pdfs, graph)
    x = torch.randn(args.frames, input_dim)
    labels = torch.from_numpy(np.asarray(ref_pdfs)).long()
    y0 = torch.randn(args.frames, num_pdfs, requires_grad=True)
    crit = timed(lambda: loss(y0).backward(), args.seconds) * args.frames
    print(f"{args.frames} frames per utterance, {what}, {args.threads} thread(s)\n")
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
            loss(F.log_softmax(model(x), -1)).backward()
            opt.step()

        ce = timed(ce_step, args.seconds) * args.frames
        sm = timed(smbr_step, args.seconds) * args.frames
        print(f"| {name} | {ce:,.0f} | {sm:,.0f} | {sm / ce:.2f} |")


if __name__ == "__main__":
    main()

"""Numeric kernels that give the same bytes on every machine.

The libraries under hdnn pick their kernels at run time from the CPU and the core count:
OpenBLAS (numpy, scipy) by core type and thread count, numpy's own loops (exp, log, ...) by
instruction set (AVX-512 and AVX2 versions round differently), MKL (torch's matrix products)
and ATen's vectorised kernels (softmax, reductions) and oneDNN by instruction set. Each choice
changes the last bits of a result, and training amplifies last bits into different models
and different WERs. hdnn therefore pins every one of them to one thread and to the AVX2
(x86-64-v3) code paths, which every x86-64 CPU since 2013-2015 runs: the same command then
writes the same bytes on any such CPU, whatever its vendor, its core count or its AVX-512.

The pins are environment variables read when each library loads, so they must be set before
numpy or torch is imported: `import hdnn` does it (as a default: a variable already set by the
user wins; HDNN_NUMERICS=native keeps only the thread pins, for speed at the cost of
repeatability across machines), and the recipe's path.sh exports them for every process, Kaldi's binaries included
(`shell_exports()`).
"""
import os
import platform

# One thread per process: hdnn parallelises across processes (and small matrix products
# run far slower with several threads on few cores). OpenBLAS also blocks its sums by thread.
THREADS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# The instruction-set pins (x86-64 only; other machines keep their libraries' defaults).
X86_64 = {
    "OPENBLAS_CORETYPE": "Haswell",            # OpenBLAS's AVX2 kernels, not SkylakeX/Zen ones
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # numpy's loops: AVX2 at most
    "MKL_CBWR": "AVX2,STRICT",                 # MKL's conditional numerical reproducibility
    "ATEN_CPU_CAPABILITY": "avx2",             # ATen's vectorised kernels
    "ONEDNN_MAX_CPU_ISA": "AVX2",              # oneDNN (mkldnn) kernels
}


def pins():
    """{variable: value} of every pin for this machine."""
    out = dict(THREADS)
    if os.environ.get("HDNN_NUMERICS") == "native":
        return out
    if platform.machine().lower() in ("x86_64", "amd64"):
        out.update(X86_64)
    return out


def apply(environ=os.environ):
    """Set each pin that is not set already; returns the pins that were set here."""
    set_here = {}
    for name, value in pins().items():
        if name not in environ:
            environ[name] = set_here[name] = value
    return set_here


def shell_exports():
    """`export NAME=value` lines (a value already in the environment is kept)."""
    return "".join(f"export {n}='{os.environ.get(n, v)}'\n" for n, v in pins().items())

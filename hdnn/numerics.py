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


class ExactSum:
    """A sum of float64 arrays that does not depend on the order or grouping of its terms, so
    that statistics summed by `nj` parallel jobs (each over its speakers) and then over the
    jobs are the same bytes for any `nj`. Each term is rounded, element by element, to a
    multiple of 2**-32 and held exactly as two int64 arrays (`hi` units of 2**20 and `lo`
    units of 2**-32, 0 <= lo < 2**52); integer addition is associative. The rounding of a
    term (at most 2**-33 absolute) is a function of that term alone."""

    HI, LO, LO_BITS = 2.0 ** 20, 2.0 ** -32, 52

    def __init__(self, shape=(), hi=None, lo=None):
        import numpy as np

        self.hi = np.zeros(shape, np.int64) if hi is None else np.asarray(hi, np.int64)
        self.lo = np.zeros(shape, np.int64) if lo is None else np.asarray(lo, np.int64)

    def add(self, values):
        """Add a term (an array of this sum's shape, or a number for a scalar sum)."""
        import numpy as np

        v = np.asarray(values, np.float64)
        if not np.isfinite(v).all():
            raise ValueError("ExactSum: a term is not finite")
        hi = np.floor(v / self.HI)
        self.hi = self.hi + hi.astype(np.int64)
        self.lo = self.lo + np.rint((v - hi * self.HI) / self.LO).astype(np.int64)
        self._carry()
        return self

    def merge(self, other):
        """Add another ExactSum (e.g. a job's)."""
        self.hi = self.hi + other.hi
        self.lo = self.lo + other.lo
        self._carry()
        return self

    def _carry(self):
        carry = self.lo >> self.LO_BITS
        self.hi = self.hi + carry
        self.lo = self.lo - (carry << self.LO_BITS)

    def value(self):
        """The sum as float64 (one rounding, of hi + lo)."""
        return self.hi * self.HI + self.lo * self.LO

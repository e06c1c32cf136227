"""The one place that imports the Kaldi wheels, in the only order that works.

kaldi-hmm-gmm 1.1.4 and kaldifst must share OpenFst 1.7 types: kaldifst 1.8.x makes every
FST argument a TypeError, and importing kaldifst (or kaldi_decoder) before kaldi_hmm_gmm
deadlocks. kaldi_decoder is never imported in a process that uses these.
"""
import sys

for _early in ("kaldifst", "kaldilm"):
    if _early in sys.modules and "kaldi_hmm_gmm" not in sys.modules:
        raise ImportError(f"{_early} was imported before kaldi_hmm_gmm (that deadlocks); import hdnn.gmm.wheels first")
if "kaldi_decoder" in sys.modules:
    raise ImportError("kaldi_decoder cannot share a process with kaldi_hmm_gmm")

import kaldi_hmm_gmm as khg  # noqa: E402  (must come first)
import kaldifst  # noqa: E402
import kaldi_native_fbank as knf  # noqa: E402
import kaldilm  # noqa: E402

if not getattr(kaldifst, "__version__", "1.7.").startswith("1.7."):
    raise ImportError(
        f"kaldifst {kaldifst.__version__} is incompatible with kaldi-hmm-gmm; "
        "install kaldifst==1.7.17 (tools/setup.sh does)"
    )

__all__ = ["khg", "kaldifst", "knf", "kaldilm"]

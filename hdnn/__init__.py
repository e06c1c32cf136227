"""hdnn: highway-DNN acoustic models for Kaldi, trained by knowledge distillation.

Layers (dependencies point downwards only):
  hdnn.kaldi  Kaldi file formats and data dirs (numpy + kaldiio; no torch, no wheels)
  hdnn.nnet   PyTorch models, losses, training, priors, forward (never imports the GMM/FST wheels)
  hdnn.gmm    Kaldi-free GMM-HMM front half on the Kaldi pip wheels (never imports torch)
"""

import os

# Small matrix products run tens of times slower with several BLAS threads on few cores;
# hdnn parallelises across processes instead. A user's explicit setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

__version__ = "0.1.0"

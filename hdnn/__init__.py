"""hdnn: highway-DNN acoustic models for Kaldi, trained by knowledge distillation.

Layers (dependencies point downwards only):
  hdnn.kaldi  Kaldi file formats and data dirs (numpy + kaldiio; no torch, no wheels)
  hdnn.nnet   PyTorch models, losses, training, priors, forward (never imports the GMM/FST wheels)
  hdnn.gmm    Kaldi-free GMM-HMM front half on the Kaldi pip wheels (never imports torch)
  hdnn.jobs   Kaldi's `$cmd JOB=1:$nj` contract; hdnn.bin: the programs the parallel jobs run
"""

from hdnn import numerics as _numerics

# Before numpy or torch loads: one thread and fixed instruction-set code paths per process,
# so that results are the same bytes on every machine (hdnn/numerics.py says why).
_numerics.apply()

__version__ = "0.1.0"

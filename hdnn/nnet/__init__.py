"""PyTorch acoustic models, losses, training, priors and forward for Kaldi data.

  models      DNN (teacher), HDNN (highway student), presets, save_model / load_model
  losses      cross_entropy, kd_loss (knowledge distillation), soft_cross_entropy, entropy
  data        FrameTargets (features paired with targets; untranscribed: soft targets only),
              ConcatFrames (several sets as one), frame_minibatches (randomizer)
  schedule    Newbob: nnet1's learning-rate halving and stopping
  train       Trainer (epochs, checkpoints, resume, DDP), train_from_dirs
  forward     log-likelihoods / posteriors for Kaldi, forward_dir
  model_dir   the feature set-up and prior counts kept beside final.pt

Never imports the GMM/FST wheels (hdnn.gmm).
"""

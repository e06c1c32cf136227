"""The embedded "mini meeting corpus": an AMI-like corpus generated offline.

Two halves, like downloading AMI and then running Kaldi's local/ami_*_data_prep.sh:
  generate   synthesise meetings into <corpus-dir> (audio, transcripts, reference timings)
  data_prep  turn <corpus-dir> into Kaldi data dirs, a dict dir and the LM training text

Supporting modules: config (sizes and difficulty knobs), text (sentence sources and
splits), lexicon (CMUdict), voices (speakers), synth (espeak-ng and flite),
acoustics (headset and distant-microphone channels), deps (Debian packages).
"""

"""Kaldi file formats, data dirs and binaries. Imports numpy and kaldiio only."""

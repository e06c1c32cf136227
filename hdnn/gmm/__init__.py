"""Kaldi-free GMM-HMM front half on the pip wheels that wrap Kaldi's C++.

Always import the wheels through `hdnn.gmm.wheels`: it fixes the import order and
checks the versions that are known to work together.
"""

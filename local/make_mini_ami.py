#!/usr/bin/env python3
"""Generate the embedded mini meeting corpus and prepare its Kaldi data dirs.

  python local/make_mini_ami.py [--size ci|demo|large] [--seed 0] [--nj 2] [--overwrite] <corpus-dir> <data-root>

Stage 1 (mini_ami.generate) synthesises the meetings into <corpus-dir>, like downloading AMI;
stage 2 (mini_ami.data_prep) writes <data-root>/{ihm,sdm1}/{train,dev,eval}, local/dict and
local/lm_train.txt, like Kaldi's local/ami_*_data_prep.sh. Both stages skip complete output,
and a rerun after an interruption generates only the missing meetings. See local/README.md.
"""
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hdnn.cli import get_parser, run_main, setup_logging  # noqa: E402
from hdnn.errors import HdnnError  # noqa: E402
from mini_ami import config, data_prep, deps, generate  # noqa: E402


def pair(s):
    """'LO,HI' -> (LO, HI) floats."""
    try:
        lo, hi = (float(x) for x in s.split(","))
    except ValueError:
        raise HdnnError(f"expected LO,HI (two numbers), got {s!r}") from None
    return lo, hi


def weights(s):
    """'a=0.6,b=0.4' -> {'a': 0.6, 'b': 0.4}; a bare name has weight 1."""
    out = {}
    for item in s.split(","):
        name, _, w = item.partition("=")
        try:
            out[name.strip()] = float(w) if w else 1.0
        except ValueError:
            raise HdnnError(f"bad weight in {s!r}: expected name=number") from None
    return out


def names(s):
    return [] if s in ("", "none") else s.split(",")


# flag -> (config field, parser)
KNOBS = {
    "engines": ("engines", weights), "voices": ("voices", names), "holdout_voices": ("holdout_voices", names),
    "text_mix": ("text_mix", weights), "backchannel_prob": ("backchannel_prob", float),
    "gap_mean": ("gap_mean_s", float), "gap_std": ("gap_std_s", float), "ihm_snr": ("ihm_snr_db", pair),
    "crosstalk": ("crosstalk_db", pair), "rt60": ("rt60_s", pair), "sdm_snr": ("sdm_snr_db", pair),
    "lexicon_vocab": ("lexicon_vocab", str), "untranscribed": ("untranscribed", int),
}


def get_args(argv):
    p = get_parser(__doc__.split("\n\n")[0], usage="%(prog)s [options] <corpus-dir> <data-root>")
    p.add_argument("--size", default="demo", choices=list(config.SIZES),
                   help="ci ~7 min of speech, demo ~1.8 h (6k words per test set), large ~5.8 h (8k words per test set; tiny: tests)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nj", type=int, default=2, help="parallel generation processes")
    p.add_argument("--overwrite", action="store_true", help="replace a different corpus found in the output dirs")
    p.add_argument("--config", help="JSON file of corpus knobs (see local/README.md); flags override it")
    g = p.add_argument_group("difficulty knobs (default: as in --config, else local/README.md)")
    g.add_argument("--engines", help="engine weights, e.g. espeak=0.6,flite=0.4")
    g.add_argument("--voices", help="base voices to use, e.g. espeak:en-us+m3,flite:slt (default: all)")
    g.add_argument("--holdout-voices", help="fnmatch patterns of base voices kept for dev/eval, or 'none'")
    g.add_argument("--text-mix", help="source weights, e.g. meeting=0.5,fortunes=0.3,wordnet=0.15,chatterbot=0.05")
    g.add_argument("--backchannel-prob", help="chance that a listener backchannels during a turn")
    g.add_argument("--gap-mean", help="mean gap between turns in s (lower: more overlap)")
    g.add_argument("--gap-std", help="std of the gap between turns in s")
    g.add_argument("--ihm-snr", help="headset SNR range in dB, LO,HI")
    g.add_argument("--crosstalk", help="headset crosstalk range in dB, LO,HI")
    g.add_argument("--rt60", help="distant-mic room RT60 range in s, LO,HI")
    g.add_argument("--sdm-snr", help="distant-mic SNR range in dB, LO,HI")
    g.add_argument("--lexicon-vocab", help="lexicon words from the train text ('train') or all text ('all')")
    g.add_argument("--untranscribed", help="untranscribed meetings of the training speakers, as a multiple of the "
                                           "training meetings (default: tiny, ci, large 1; demo 4)")
    p.add_argument("corpus_dir", type=Path)
    p.add_argument("data_root", type=Path)
    return p.parse_args(argv)


def make_config(args):
    knobs = {"size": args.size, "seed": args.seed}
    for flag, (field, parse) in KNOBS.items():
        value = getattr(args, flag)
        if value is not None:
            knobs[field] = parse(value)
    if args.config:
        return config.CorpusConfig.from_json_file(args.config, **knobs)
    return config.CorpusConfig.from_dict(knobs)


def main(argv=None):
    args = get_args(argv)
    setup_logging(args.corpus_dir / "log" / "make_mini_ami.log")
    cfg = make_config(args)
    deps.fortunes_dir(), deps.wordnet_dir()
    if cfg.engines.get("espeak", 0) > 0:
        deps.espeak_library()
    if cfg.engines.get("flite", 0) > 0:
        deps.flite_binary()
    t0 = time.time()
    generate.generate(args.corpus_dir, cfg, nj=args.nj, overwrite=args.overwrite)
    t1 = time.time()
    data_prep.prepare(args.corpus_dir, args.data_root, overwrite=args.overwrite)
    logging.info("done: generation %.1f s, data preparation %.1f s", t1 - t0, time.time() - t1)


if __name__ == "__main__":
    run_main(main)

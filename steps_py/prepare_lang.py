#!/usr/bin/env python3
"""A Kaldi lang dir from a dict dir, as Kaldi's utils/prepare_lang.sh: phones.txt, words.txt,
topo, L.fst, L_disambig.fst, oov.{txt,int} and phones/ (silence and disambiguation sets, roots,
extra questions, word boundaries, alignment lexicon), with position-dependent phones."""
from hdnn.cli import get_parser, run_main, setup_logging, str2bool

USAGE = """%(prog)s [options] <dict-src-dir> <oov-dict-entry> <tmp-dir> <lang-dir>
 e.g.: %(prog)s data/local/dict "<UNK>" data/local/lang data/lang"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("dict_dir")
    p.add_argument("oov_word")
    p.add_argument("tmp_dir")
    p.add_argument("lang_dir")
    p.add_argument("--position-dependent-phones", type=str2bool, default=True,
                   help="mark phones with their word position (_B, _E, _I, _S)")
    p.add_argument("--sil-prob", type=float, default=0.5, help="probability of silence between words")
    p.add_argument("--num-sil-states", type=int, default=5, help="HMM states of silence phones")
    p.add_argument("--num-nonsil-states", type=int, default=3, help="HMM states of other phones")
    p.add_argument("--share-silence-phones", type=str2bool, default=False,
                   help="share the pdfs of all silence phones")
    args = p.parse_args(argv)
    setup_logging(f"{args.tmp_dir}/prepare_lang.log")
    from hdnn.gmm.lang import prepare_lang

    lang = prepare_lang(args.dict_dir, args.oov_word, args.tmp_dir, args.lang_dir,
                        position_dependent_phones=args.position_dependent_phones, sil_prob=args.sil_prob,
                        num_sil_states=args.num_sil_states, num_nonsil_states=args.num_nonsil_states,
                        share_silence_phones=args.share_silence_phones)
    print(f"{args.lang_dir}: {len(lang.words)} words, {len(lang.phones)} phones")


if __name__ == "__main__":
    run_main(main)

"""Data-prep half: Kaldi data dirs from a generated corpus, like local/ami_{ihm,sdm}_data_prep.sh.

Writes, under <data-root>:
  {ihm,sdm1}/{train,dev,eval}/  wav.scp segments text utt2spk spk2utt spk2gender
                                reco2file_and_channel, and ref_phones.ctm / ref_words.ctm
                                (espeak-ng's own timings, utterance-relative, for espeak speakers)
  {ihm,sdm1}/untranscribed/     the same without text and CTMs: meetings of the training
                                speakers whose transcripts are not kept (teacher-student training)
  local/dict/                   lexicon.txt nonsilence_phones.txt silence_phones.txt
                                optional_silence.txt extra_questions.txt
  local/lm_train.txt            the training split's sentences
  local/oov_counts.txt          <set> <count> <word>: transcript words missing from the lexicon

Ids follow AMI with the (global) speaker first, so speaker ids prefix utterance ids:
  utt  FEO065_AMI_ES2001a_H02_0012345_0012678   (IHM; SDM has _SDM_ in place of _H02_)
  reco AMI_ES2001a_H02 / AMI_ES2001a_SDM
"""
import collections
import json
import logging
from pathlib import Path

import numpy as np

from hdnn.errors import HdnnError, atomic_open
from hdnn.kaldi.data_dir import utt2spk_to_spk2utt, validate_data_dir, write_kaldi_map
from mini_ami import lexicon, text
from mini_ami.generate import CORPUS_JSON, DONE, UNTRANSCRIBED

MICS = ("ihm", "sdm1")
MARKER = ".mini_ami"


def load_corpus(corpus_dir):
    """The plan and {meeting id: annotation} of a complete generated corpus."""
    corpus_dir = Path(corpus_dir).resolve()
    if not (corpus_dir / DONE).exists():
        raise HdnnError(f"{corpus_dir}: no complete generated corpus ({DONE} missing); "
                        f"run local/make_mini_ami.py to generate it")
    plan = json.loads((corpus_dir / CORPUS_JSON).read_text())
    annotations = {}
    for m in plan["meetings"]:
        path = corpus_dir / "amicorpus" / m["id"] / f"{m['id']}.json"
        try:
            annotations[m["id"]] = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise HdnnError(f"{path}: cannot read the meeting transcript: {e}") from e
    return plan, annotations


def utterances(corpus_dir, plan, annotations, mic, split):
    """One dict per segment of `split` as heard by `mic`."""
    rows = []
    for m in plan["meetings"]:
        if m["split"] != split:
            continue
        mid, ann = m["id"], annotations[m["id"]]
        audio = Path(corpus_dir).resolve() / "amicorpus" / mid / "audio"
        for u in ann["utterances"]:
            ch = u["channel"]
            chan = f"H0{ch}" if mic == "ihm" else "SDM"
            name = f"{mid}.Headset-{ch}" if mic == "ihm" else f"{mid}.Array1-01"
            delay = 0.0 if mic == "ihm" else ann["sdm"]["direct_delay_s"][ch]
            offset = u["start_cs"] / 100 - delay  # meeting time -> utterance time
            rows.append({
                "utt": f"{u['speaker']}_AMI_{mid}_{chan}_{u['start_cs']:07d}_{u['end_cs']:07d}",
                "spk": u["speaker"], "reco": f"AMI_{mid}_{chan}", "file": name, "wav": audio / f"{name}.wav",
                "start": u["start_cs"] / 100, "end": u["end_cs"] / 100, "text": u["words"],
                "phones": [(s - offset, e - offset, p) for s, e, p in u.get("phones", [])],
                "word_times": [(s - offset, e - offset, w) for s, e, w in u.get("word_times", [])],
            })
    return rows


def write_ctm(path, rows, key):
    """Kaldi CTM lines `utt 1 start dur label` (utterance-relative), sorted by utt and time."""
    with atomic_open(path) as f:
        for r in sorted(rows, key=lambda r: r["utt"].encode()):
            for s, e, label in r[key]:
                f.write(f"{r['utt']} 1 {s:.3f} {e - s:.3f} {label}\n")


def write_data_dir(d, rows, sexes, transcribed=True):
    """The Kaldi data dir files for `rows` (without text and CTMs unless `transcribed`), then
    both checks of it."""
    d.mkdir(parents=True, exist_ok=True)
    utt2spk = {r["utt"]: r["spk"] for r in rows}
    write_kaldi_map(d / "wav.scp", {r["reco"]: str(r["wav"]) for r in rows})
    write_kaldi_map(d / "segments", {r["utt"]: f"{r['reco']} {r['start']:.2f} {r['end']:.2f}" for r in rows})
    if transcribed:
        write_kaldi_map(d / "text", {r["utt"]: r["text"] for r in rows})
    write_kaldi_map(d / "utt2spk", utt2spk)
    spk2utt = utt2spk_to_spk2utt(dict(sorted(utt2spk.items(), key=lambda kv: kv[0].encode())))
    write_kaldi_map(d / "spk2utt", spk2utt)
    write_kaldi_map(d / "spk2gender", {s: sexes[s].lower() for s in spk2utt})
    write_kaldi_map(d / "reco2file_and_channel", {r["reco"]: f"{r['file']} A" for r in rows})
    if transcribed:
        write_ctm(d / "ref_phones.ctm", rows, "phones")
        write_ctm(d / "ref_words.ctm", rows, "word_times")
    validate_data_dir(d, no_feats=True, no_text=not transcribed)


def check_parallel(rows_by_mic, split):
    """HdnnError unless IHM and SDM hold the same segments: ids equal up to the channel
    (H0<k> / SDM), same speaker, same start and end, so the same frame counts (SDM models may
    then train on headset alignments and headset teachers' posteriors)."""
    def key(r):
        spk, rest = r["utt"].split("_AMI_", 1)
        meeting, _, times = rest.split("_", 2)
        return spk, meeting, times

    ihm = {key(r): r for r in rows_by_mic["ihm"]}
    sdm = {key(r): r for r in rows_by_mic["sdm1"]}
    for k in sorted(set(ihm) ^ set(sdm)):
        r = ihm.get(k) or sdm[k]
        raise HdnnError(f"{split}: utterance {r['utt']} has no parallel utterance on the other mic")
    for k, r in ihm.items():
        if (r["start"], r["end"]) != (sdm[k]["start"], sdm[k]["end"]):
            raise HdnnError(f"{split}: utterances {r['utt']} and {sdm[k]['utt']} cover different times")


def lm_sentences(corpus_dir, splits=("train",)):
    """Sorted unique sentences of the text pools of `splits`."""
    sentences = set()
    for path in sorted((Path(corpus_dir) / "text").glob("*.txt")):
        if path.name.split(".")[0] in splits:
            sentences.update(path.read_text().splitlines())
    return sorted(sentences, key=str.encode)


def oov_counts(rows, words):
    """Counter of transcript words that are not in `words`."""
    return collections.Counter(w for r in rows for w in r["text"].split() if w not in words)


def speech_stats(plan, annotations, split):
    """Minutes of speech, share of it in overlap, and utterances with reference timings."""
    speech = overlap = timed = utts = 0
    for m in plan["meetings"]:
        if m["split"] != split:
            continue
        ann = annotations[m["id"]]
        talking = np.zeros(int(ann["duration_s"] * 100) + 1, int)
        for u in ann["utterances"]:
            s, e = (int(round(t * 100)) for t in u["speech"])
            talking[s:e] += 1
            timed, utts = timed + ("phones" in u), utts + 1
        speech, overlap = speech + np.count_nonzero(talking), overlap + np.count_nonzero(talking > 1)
    return speech / 6000, overlap / max(speech, 1), timed, utts


def prepare(corpus_dir, data_root, overwrite=False):
    """Write every data dir, the dict dir and the LM text of the corpus under data_root."""
    corpus_dir, data_root = Path(corpus_dir).resolve(), Path(data_root).resolve()
    plan, annotations = load_corpus(corpus_dir)
    marker = json.dumps({"corpus": str(corpus_dir), "config": plan["config"]}, sort_keys=True)
    if (data_root / MARKER).exists():
        if (data_root / MARKER).read_text().strip() == marker:
            logging.info("%s is already prepared from %s: nothing to do", data_root, corpus_dir)
            return
        if not overwrite:
            raise HdnnError(f"{data_root} holds data dirs of a different corpus "
                            f"(see {data_root / MARKER}): remove it or pass --overwrite")
    sexes = {s["id"]: s["sex"] for split in plan["speakers"].values() for s in split}
    local = data_root / "local"
    train_text = lm_sentences(corpus_dir)
    with atomic_open(local / "lm_train.txt") as f:
        f.write("".join(s + "\n" for s in train_text))
    vocab_text = train_text if plan["config"]["lexicon_vocab"] == "train" else lm_sentences(corpus_dir, text.SPLITS)
    words = sorted({w for s in vocab_text for w in s.split()})
    n_lex = lexicon.write_dict_dir(local / "dict", words)
    logging.info("dict: %d lexicon entries for %d words", n_lex, len(words))
    oov_lines, vocab = [], set(words)
    for split in text.SPLITS + (UNTRANSCRIBED,):
        rows_by_mic = {mic: utterances(corpus_dir, plan, annotations, mic, split) for mic in MICS}
        check_parallel(rows_by_mic, split)
        if not rows_by_mic["ihm"]:  # no untranscribed meetings
            continue
        for mic, rows in rows_by_mic.items():
            write_data_dir(data_root / mic / split, rows, sexes, transcribed=split != UNTRANSCRIBED)
        if split == UNTRANSCRIBED:
            minutes, overlap, timed, utts = speech_stats(plan, annotations, split)
            logging.info("%s: %d meetings, %.1f min of speech, %d utterances (no transcripts kept)", split,
                         sum(m["split"] == split for m in plan["meetings"]), minutes, utts)
            continue
        minutes, overlap, timed, utts = speech_stats(plan, annotations, split)
        logging.info("%s: %d meetings, %.1f min of speech (%.1f %% overlapped), %d of %d utterances "
                     "with reference timings", split, sum(m["split"] == split for m in plan["meetings"]),
                     minutes, 100 * overlap, timed, utts)
        oov = oov_counts(rows, vocab)
        tokens = sum(len(r["text"].split()) for r in rows)
        logging.info("%s: %d utterances, %.1f min of segments, %d of %d words (%.2f %%) not in the lexicon "
                     "(<UNK> in training, errors in scoring)", split, len(rows),
                     sum(r["end"] - r["start"] for r in rows) / 60, sum(oov.values()), tokens,
                     100 * sum(oov.values()) / max(tokens, 1))
        oov_lines += [f"{split} {n} {w}" for w, n in sorted(oov.items(), key=lambda kv: (-kv[1], kv[0]))]
    with atomic_open(local / "oov_counts.txt") as f:
        f.write("".join(line + "\n" for line in oov_lines))
    with atomic_open(data_root / MARKER) as f:
        f.write(marker + "\n")

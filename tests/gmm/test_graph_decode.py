"""HCLG graphs (mkgraph), GMM and mapped decoding (decode, decode_mapped) and scoring, on the
espeak corpus with its monophone system; against real Kaldi where a build is present."""
import os
import re
import shutil
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from tests.gmm.fixtures import STEPS, run_step
from hdnn.errors import HdnnError
from hdnn.gmm.decode import DecodeConfig, GmmScorer, decode_gmm
from hdnn.gmm.features import iter_cmvn_deltas
from hdnn.gmm.model import GmmSystem
from hdnn.kaldi.binaries import kaldi_env, run_kaldi
from hdnn.scoring import parse_wer_line

SWEEP = ("--min-lmwt", 9, "--max-lmwt", 11, "--word-ins-penalty", "0.0,1.0")


@pytest.fixture(scope="module")
def espeak_decode(espeak_corpus, espeak_graph):
    out = espeak_graph.parent / "decode_train"
    p = run_step("decode", "--nj", 2, "--progress", "false", *SWEEP, espeak_graph, espeak_corpus.data, out)
    return out, p


def test_mkgraph_outputs(espeak_graph, espeak_mono):
    for name in ("HCLG.fst", "words.txt", "phones.txt", "phones/word_boundary.int", "disambig_tid.int", "num_pdfs"):
        assert (espeak_graph / name).exists(), name
    _, tm, _ = GmmSystem.load(espeak_mono).khg()
    assert int((espeak_graph / "num_pdfs").read_text()) == tm.num_pdfs
    if shutil.which("fstinfo") is None:
        pytest.skip("Debian's fstinfo (libfst-tools) is not installed")
    info = subprocess.run(["fstinfo", str(espeak_graph / "HCLG.fst")], capture_output=True, text=True,
                          check=True).stdout
    states = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("# of states")))
    assert states > 100
    ilabels = subprocess.run(["fstprint", str(espeak_graph / "HCLG.fst")], capture_output=True, text=True,
                             check=True).stdout
    disambig = set((espeak_graph / "disambig_tid.int").read_text().split())
    assert not disambig & {line.split("\t")[2] for line in ilabels.splitlines() if "\t" in line[:12] and
                           line.count("\t") >= 3}


def test_mkgraph_skips_an_up_to_date_graph(espeak_graph, espeak_mono):
    before = (espeak_graph / "HCLG.fst").stat().st_mtime_ns
    p = run_step("mkgraph", espeak_graph.parent.parent / "lang_test", espeak_mono, espeak_graph)
    assert "up to date" in p.stderr
    assert (espeak_graph / "HCLG.fst").stat().st_mtime_ns == before


def test_decode_and_score(espeak_corpus, espeak_decode):
    out, p = espeak_decode
    best, where = parse_wer_line(p.stdout.strip().splitlines()[-1])
    assert where.startswith(str(out / "wer_"))
    words = sum(len(line.split()) - 1 for line in (espeak_corpus.data / "text").read_text().splitlines())
    assert best.words == words
    assert best.wer < 10.0, best.kaldi_line(where)  # clean TTS speech, training speakers
    for lmwt in range(9, 12):
        for wip in ("0.0", "1.0"):
            res, _ = parse_wer_line((out / f"wer_{lmwt}_{wip}").read_text())
            assert res.wer >= best.wer
    assert (out / "scoring_kaldi" / "best_wer").read_text().split()[1] == f"{best.wer:.2f}"
    sys_report = next((out / "scoring_kaldi" / "sclite").glob("best_*.sys")).read_text()
    for spk in ("spk0", "spk5"):
        assert re.search(rf"\|\s+{spk}\s+\|", sys_report), spk
    stats = dict(line.split() for line in (out / "decode_stats.txt").read_text().splitlines())
    assert int(stats["utterances"]) == 120 and int(stats["passes"]) == 6 and int(stats["failed"]) == 0
    assert sorted(p.name for p in (out / "log").glob("decode*.log")) == ["decode.1.log", "decode.2.log",
                                                                         "decode.log"]


def test_mapped_decoding_of_gmm_likelihoods_gives_the_same_words(espeak_corpus, espeak_mono, espeak_graph,
                                                                  espeak_decode, tmp_path):
    system = GmmSystem.load(espeak_mono)
    scorer = GmmScorer(system.am)
    ark, scp = tmp_path / "loglikes.ark", tmp_path / "loglikes.scp"
    with threadpool_limits(limits=1):
        kaldiio.save_ark(str(ark), {u: scorer(x) for u, x in iter_cmvn_deltas(espeak_corpus.data)}, scp=str(scp))
    out = tmp_path / "decode_mapped"
    run_step("decode_mapped", "--nj", 2, "--progress", "false", *SWEEP, espeak_graph, espeak_corpus.data,
             espeak_mono, f"scp:{scp}", out)
    gmm_out, _ = espeak_decode
    for lmwt, wip in ((9, "0.0"), (10, "0.0"), (11, "1.0")):
        assert (out / "tra" / f"{lmwt}_{wip}.tra").read_text() == (gmm_out / "tra" / f"{lmwt}_{wip}.tra").read_text()


def test_a_search_of_half_the_utterances_completed_by_anothers_hypotheses_is_the_whole_search(
        espeak_corpus, espeak_mono, espeak_graph, espeak_decode, tmp_path):
    """dev searched at dev_tune's best weight: only the utterances dev_tune does not have."""
    system = GmmSystem.load(espeak_mono)
    scorer = GmmScorer(system.am)
    with threadpool_limits(limits=1):
        loglikes = {u: scorer(x) for u, x in iter_cmvn_deltas(espeak_corpus.data)}
    utts = sorted(loglikes)
    halves = {}
    for name, part in (("tune", utts[::2]), ("rest", utts[1::2]), ("rest_and_one", utts[1::2] + utts[:1])):
        ark, scp = tmp_path / f"{name}.ark", tmp_path / f"{name}.scp"
        kaldiio.save_ark(str(ark), {u: loglikes[u] for u in part}, scp=str(scp))
        halves[name] = f"scp:{scp}"
    tune = tmp_path / "decode_tune"
    run_step("decode_mapped", "--nj", 2, "--progress", "false", "--skip-scoring", "true", *SWEEP, espeak_graph,
             espeak_corpus.data, espeak_mono, halves["tune"], tune)
    point = ("--min-lmwt", 10, "--max-lmwt", 10, "--word-ins-penalty", "0.0")
    out = tmp_path / "decode_all"
    run_step("decode_mapped", "--nj", 2, "--progress", "false", *point, "--hyps-from", tune, espeak_graph,
             espeak_corpus.data, espeak_mono, halves["rest"], out)
    whole, _ = espeak_decode
    assert (out / "tra" / "10_0.0.tra").read_text() == (whole / "tra" / "10_0.0.tra").read_text()
    assert (out / "wer_10_0.0").read_text() == (whole / "wer_10_0.0").read_text()
    stats = dict(line.split() for line in (out / "decode_stats.txt").read_text().splitlines())
    assert (int(stats["utterances"]), int(stats["reused"])) == (len(utts) // 2, len(utts) // 2)

    def refused(*args, spec=halves["rest"]):
        argv = ["--nj", 2, "--progress", "false", *args, "--hyps-from", tune, espeak_graph, espeak_corpus.data,
                espeak_mono, spec, tmp_path / "bad"]
        bad = subprocess.run([sys.executable, str(STEPS / "decode_mapped.py"), *map(str, argv)],
                             capture_output=True, text=True)
        assert bad.returncode == 1 and "Traceback" not in bad.stderr
        return bad.stderr.strip().splitlines()[-1]

    assert "searched otherwise than this decoding (option beam: 13.0 -> 10.0)" in refused(*point, "--beam", 10)
    assert "was not searched at LM weight 12, penalty 0.0" in refused(
        "--min-lmwt", 12, "--max-lmwt", 12, "--word-ins-penalty", "0.0")
    # log-likelihoods of an utterance it holds too: not searched again
    both = tmp_path / "decode_both"
    run_step("decode_mapped", "--nj", 2, "--progress", "false", *point, "--hyps-from", tune, espeak_graph,
             espeak_corpus.data, espeak_mono, halves["rest_and_one"], both)
    assert (both / "tra" / "10_0.0.tra").read_text() == (whole / "tra" / "10_0.0.tra").read_text()
    assert "utterances {}\n".format(len(utts) // 2) in (both / "decode_stats.txt").read_text()
    # the GMM decoder: the features of every utterance given, those the decode dir holds skipped
    gmm = tmp_path / "decode_gmm"
    run_step("decode", "--nj", 2, "--progress", "false", *point, "--hyps-from", tune, espeak_graph,
             espeak_corpus.data, gmm)
    assert (gmm / "wer_10_0.0").read_text() == (whole / "wer_10_0.0").read_text()
    assert "utterances {}\n".format(len(utts) // 2) in (gmm / "decode_stats.txt").read_text()


def test_mapped_decoding_checks_the_number_of_pdfs(espeak_corpus, espeak_mono, espeak_graph, tmp_path):
    ark = tmp_path / "bad.ark"
    kaldiio.save_ark(str(ark), {"spk0_u0000": np.zeros((50, 7), np.float32)})
    p = subprocess.run([sys.executable, str(STEPS / "decode_mapped.py"), "--progress", "false", espeak_graph,
                        espeak_corpus.data, espeak_mono, f"ark:{ark}", tmp_path / "out"], capture_output=True, text=True)
    assert p.returncode == 1
    assert "utterance spk0_u0000 has 7 columns, the model has" in p.stderr.strip().splitlines()[-1]


def test_narrow_beams_are_retried_and_counted(espeak_corpus, espeak_graph, tmp_path):
    cfg = DecodeConfig(beam=0.5, retry_beam=1.0, max_active=3, min_active=1, min_lmwt=10, max_lmwt=10,
                       word_ins_penalty=("0.0",))
    stats = decode_gmm(espeak_graph, espeak_corpus.data, tmp_path / "decode", nj=1, config=cfg, progress=False)
    assert stats.retried > 0 and stats.retried >= stats.partial + stats.failed
    lines = (tmp_path / "decode" / "tra" / "10_0.0.tra").read_text().splitlines()
    assert len(lines) == stats.utts == 120  # no utterance dropped from scoring


def test_interrupted_decoding_resumes(espeak_corpus, espeak_graph, tmp_path):
    cfg = DecodeConfig(min_lmwt=10, max_lmwt=10, word_ins_penalty=("0.0",))
    out = tmp_path / "decode"
    decode_gmm(espeak_graph, espeak_corpus.data, out, nj=2, config=cfg, progress=False)
    merged = (out / "tra" / "10_0.0.tra").read_text()
    job1 = (out / "tra" / "10_0.0.1.tra").stat().st_mtime_ns
    (out / "tra" / ".done.2").unlink()  # as if job 2 had been killed
    (out / "tra" / "10_0.0.2.tra").unlink()
    decode_gmm(espeak_graph, espeak_corpus.data, out, nj=2, config=cfg, progress=False)
    assert (out / "tra" / "10_0.0.1.tra").stat().st_mtime_ns == job1  # job 1 was not redone
    assert "every point of the sweep was decoded before: kept" in (out / "log" / "decode.1.log").read_text()
    assert "job 2 of 2: " in (out / "log" / "decode.2.log").read_text()
    assert (out / "tra" / "10_0.0.tra").read_text() == merged


# ---------------------------------------------------------------- real Kaldi

@pytest.mark.kaldi
def test_kaldi_gmm_decode_faster_with_our_graph(kaldi, espeak_corpus, espeak_mono, espeak_graph, espeak_decode,
                                                 tmp_path):
    feats = tmp_path / "feats.ark"
    kaldiio.save_ark(str(feats), dict(iter_cmvn_deltas(espeak_corpus.data)))
    out = run_kaldi(["gmm-decode-faster", "--beam=13", "--max-active=7000", "--acoustic-scale=0.1",
                     str(espeak_mono / "final.mdl"), str(espeak_graph / "HCLG.fst"), f"ark:{feats}",
                     "ark,t:-"]).stdout.decode()
    theirs = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    gmm_out, _ = espeak_decode
    ours = {line.split()[0]: line.split()[1:] for line in (gmm_out / "tra" / "10_0.0.tra").read_text().splitlines()}
    assert theirs.keys() == ours.keys()
    same = sum(theirs[u] == ours[u] for u in ours)
    assert same >= 0.95 * len(ours), f"{same} of {len(ours)} identical"


@pytest.mark.kaldi
def test_kaldi_mkgraph_gives_an_equivalent_graph(kaldi, espeak_corpus, espeak_mono, espeak_graph, espeak_decode,
                                                 tmp_path):
    s5 = tmp_path / "s5"
    s5.mkdir()
    for d in ("utils", "steps"):
        os.symlink(f"{kaldi}/egs/wsj/s5/{d}", s5 / d)
    (s5 / "path.sh").write_text("export LC_ALL=C\n")
    lang_test = espeak_graph.parent.parent / "lang_test"
    p = subprocess.run(["utils/mkgraph.sh", str(lang_test), str(espeak_mono), str(tmp_path / "graph")], cwd=s5,
                       env=kaldi_env(), capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert (tmp_path / "graph" / "disambig_tid.int").read_text() == (espeak_graph / "disambig_tid.int").read_text()
    cfg = DecodeConfig(min_lmwt=10, max_lmwt=10, word_ins_penalty=("0.0",))
    decode_gmm(tmp_path / "graph", espeak_corpus.data, tmp_path / "decode", model_dir=espeak_mono, nj=2,
               config=cfg, progress=False)
    gmm_out, _ = espeak_decode
    ours = (gmm_out / "tra" / "10_0.0.tra").read_text().splitlines()
    theirs = (tmp_path / "decode" / "tra" / "10_0.0.tra").read_text().splitlines()
    same = sum(a == b for a, b in zip(ours, theirs))
    assert same >= 0.95 * len(ours), f"{same} of {len(ours)} identical"


def test_decoding_needs_features_and_cmvn(espeak_corpus, espeak_graph, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(espeak_corpus.data, data, ignore=shutil.ignore_patterns("cmvn.scp", "data", "log"))
    p = subprocess.run([sys.executable, str(STEPS / "decode.py"), "--nj", "1", "--progress", "false", espeak_graph,
                        data, tmp_path / "decode"], capture_output=True, text=True)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1].endswith("cmvn.scp: no such file (run compute_cmvn_stats first)")
    assert not (tmp_path / "decode" / "tra").exists() or not list((tmp_path / "decode" / "tra").glob("*.tra"))


@pytest.mark.parametrize("name", ["make_mfcc", "make_fbank", "compute_cmvn_stats", "prepare_lang", "train_lm",
                                  "format_lm", "mkgraph", "decode", "decode_mapped", "score"])
def test_steps_answer_help(name):
    p = subprocess.run([sys.executable, str(STEPS / f"{name}.py"), "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("usage:")


def test_coarse_to_fine_search_visits_few_weights_and_finds_the_minimum():
    from hdnn.gmm.decode import coarse_to_fine
    from hdnn.scoring import WerResult

    cfg = DecodeConfig(min_lmwt=12, max_lmwt=32, word_ins_penalty=("0.0",), search="coarse")
    rounds = []

    def wer(lmwt):  # unimodal, minimum at 23
        return WerResult(1000, 0, 0, 100 + (lmwt - 23) ** 2)

    found = coarse_to_fine(cfg, rounds.append, lambda pts: {p: wer(p[0]) for p in pts})
    assert [p[0] for p in rounds[0]] == [12, 17, 22, 27, 32]
    assert len(found) == sum(map(len, rounds)) == len(set(found)) <= 11
    assert min(found, key=lambda p: wer(p[0]).errors)[0] == 23


def test_descent_search_walks_to_the_minimum_and_stops_at_its_worse_neighbours():
    from hdnn.gmm.decode import descent
    from hdnn.scoring import WerResult

    def wer(lmwt):  # unimodal, minimum at 8
        return WerResult(1000, 0, 0, 100 + (lmwt - 8) ** 2)

    rounds = []
    cfg = DecodeConfig(min_lmwt=5, max_lmwt=13, word_ins_penalty=("0.0",), search="descent", start_lmwt=11)
    found = descent(cfg, rounds.append, lambda pts: {p: wer(p[0]) for p in pts})
    assert [[p[0] for p in r] for r in rounds] == [[10, 11, 12], [9], [8], [7]]
    assert len(found) == len(set(found))
    rounds.clear()  # no start: the middle; a range edge ends the walk
    edge = DecodeConfig(min_lmwt=5, max_lmwt=13, word_ins_penalty=("0.0",), search="descent")
    descent(edge, rounds.append, lambda pts: {p: WerResult(1000, 0, 0, 100 + p[0]) for p in pts})
    assert [[p[0] for p in r] for r in rounds] == [[8, 9, 10], [7], [6], [5]]
    rounds.clear()  # a plateau at the start is walked across to the better side
    plateau = {9: 105, 10: 103, 11: 103, 12: 103, 13: 101}
    descent(cfg, rounds.append, lambda pts: {p: WerResult(1000, 0, 0, plateau.get(p[0], 110)) for p in pts})
    assert [[p[0] for p in r] for r in rounds] == [[10, 11, 12], [9, 13]]
    with pytest.raises(HdnnError, match="outside the range"):
        DecodeConfig(min_lmwt=5, max_lmwt=13, search="descent", start_lmwt=14).sweep()


def test_coarse_search_decodes_fewer_weights_to_the_same_best(espeak_corpus, espeak_graph, espeak_decode, tmp_path):
    out = tmp_path / "coarse"
    p = run_step("decode", "--nj", 2, "--progress", "false", "--search", "coarse", "--min-lmwt", 7,
                 "--max-lmwt", 15, "--word-ins-penalty", "0.0", espeak_graph, espeak_corpus.data, out)
    decoded = sorted(int(t.name.split("_")[0]) for t in (out / "tra").glob("*_0.0.tra"))
    assert {7, 9, 11, 13, 15} <= set(decoded) and len(decoded) < 9  # then around the best
    stats = dict(line.split() for line in (out / "decode_stats.txt").read_text().splitlines())
    assert int(stats["passes"]) == len(decoded)
    best, _ = parse_wer_line(p.stdout.strip().splitlines()[-1])
    grid = {lmwt: parse_wer_line((out / f"wer_{lmwt}_0.0").read_text())[0].wer for lmwt in decoded}
    assert best.wer == min(grid.values())
    for lmwt in (9, 11):  # a round decodes as the grid does
        assert (out / "tra" / f"{lmwt}_0.0.tra").read_text() == (espeak_decode[0] / "tra" / f"{lmwt}_0.0.tra").read_text()


def test_descent_search_ends_with_the_best_between_worse_neighbours(espeak_corpus, espeak_graph, tmp_path):
    out = tmp_path / "descent"
    p = run_step("decode", "--nj", 2, "--progress", "false", "--search", "descent", "--lmwt-start", 9,
                 "--min-lmwt", 7, "--max-lmwt", 15, "--word-ins-penalty", "0.0", espeak_graph, espeak_corpus.data, out)
    decoded = sorted(int(t.name.split("_")[0]) for t in (out / "tra").glob("*_0.0.tra"))
    assert {8, 9, 10} <= set(decoded)
    stats = dict(line.split() for line in (out / "decode_stats.txt").read_text().splitlines())
    assert int(stats["passes"]) == len(decoded)
    best, _ = parse_wer_line(p.stdout.strip().splitlines()[-1])
    grid = {lmwt: parse_wer_line((out / f"wer_{lmwt}_0.0").read_text())[0].wer for lmwt in decoded}
    assert best.wer == min(grid.values())
    top = min(grid, key=lambda w: (grid[w], w))
    assert all(w in grid and grid[w] >= grid[top] for w in (top - 1, top + 1) if 7 <= w <= 15)


def _tie_graph():
    """A graph where two paths of equal cost (words 1 and 2, through states 7 and 1005) meet in
    state 8, and a fan-out of 600 states (tid 2) that a search of tid-2 frames keeps alive. Which
    path survives the tie follows the decoder's token-list order: states 5 and 1005 share a bucket
    of FasterDecoder's initial 1000-bucket hash, which grows after a search with > 500 tokens."""
    from hdnn.gmm.wheels import kaldifst  # the wheels' import order (a wrong one hangs)

    g = kaldifst.StdVectorFst()
    for _ in range(1800):
        g.add_state()
    g.start = 0
    arc = kaldifst.StdArc
    g.add_arc(0, arc(1, 3, 1.0, 5))     # a costlier word first: it fills bucket 5 of the hash
    g.add_arc(0, arc(1, 1, 0.0, 7))
    g.add_arc(0, arc(1, 2, 0.0, 1005))
    for s in (5, 7, 1005):
        g.add_arc(s, arc(1, 0, 0.0, 8))
    g.set_final(8, 0.0)
    for s in range(1100, 1700):
        g.add_arc(0, arc(2, 0, 0.0, s))
        g.add_arc(s, arc(2, 0, 0.0, s))
        g.set_final(s, 0.0)
    return g


def test_a_best_path_does_not_depend_on_the_searches_before():
    from hdnn.gmm.decode import BestPathDecoder, DecodeStats

    cfg = DecodeConfig(beam=8.0, max_active=2000, min_active=0)
    tied = np.array([[0.0, -100.0]] * 2, dtype=np.float32)       # tid 1 only: the tie
    fan = np.array([[-100.0, 0.0]] * 3, dtype=np.float32)        # tid 2 only: 600 tokens alive
    alone = BestPathDecoder(_tie_graph(), cfg)(tied, DecodeStats())
    decoder = BestPathDecoder(_tie_graph(), cfg)
    assert decoder(fan, DecodeStats()) == []
    assert decoder(tied, DecodeStats()) == alone

"""Matched-pair significance tests (hdnn.significance, steps_py/compare_wer.py) on hand-built
decode dirs: sctk's MAPSSWE and the paired bootstrap must tell a clearly better system from
chance, and call two equal systems equal."""
import random
import subprocess
import sys
from pathlib import Path

import kaldialign
import pytest

from hdnn.errors import HdnnError
from hdnn.significance import bootstrap_p, compare, parse_mapsswe, read_decode

ROOT = Path(__file__).resolve().parents[1]
VOCAB = "the a remote control button is red blue we need to design new one and so um yeah".split()


def noisy_copy(words, rng, p_err):
    """`words` with a substitution, deletion or insertion at each word with probability p_err."""
    out = []
    for w in words:
        r = rng.random()
        if r < p_err / 3:
            continue  # deletion
        out.append(rng.choice(VOCAB) if r < 2 * p_err / 3 else w)
        if rng.random() < p_err / 3:
            out.append(rng.choice(VOCAB))
    return out


def make_ref(rng, num_utts=200):
    # speaker-prefixed ids with '_' and '-', as AMI's: sclite must keep them apart
    return {f"{('FEE_005', 'MEO-012', 'spk3')[n % 3]}_{n:04d}-0001": [rng.choice(VOCAB) for _ in range(rng.randint(3, 12))]
            for n in range(num_utts)}


def make_decode_dir(path, ref, hyps, best):
    """A scored decode dir as steps/score_kaldi.sh leaves it: hyps is {(lmwt, wip): {utt: words}}."""
    scoring = path / "scoring_kaldi"
    scoring.mkdir(parents=True)
    (scoring / "test_filt.txt").write_text("".join(f"{u} {' '.join(w)}\n" for u, w in ref.items()))
    for (lmwt, wip), hyp in hyps.items():
        (scoring / f"penalty_{wip}").mkdir(exist_ok=True)
        (scoring / f"penalty_{wip}" / f"{lmwt}.txt").write_text(
            "".join(f"{u} {' '.join(w)}".rstrip() + "\n" for u, w in hyp.items()))
    (scoring / "best_wer").write_text(f"%WER 99.99 [ 1 / 1, 0 ins, 0 del, 1 sub ] {path}/wer_{best[0]}_{best[1]}\n")
    return path


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """Decode dirs of a worse system A (30 % word errors) and a better B (15 %) on 200 utterances;
    A's other setting (12, 0.5) has B's hypotheses."""
    tmp = tmp_path_factory.mktemp("significance")
    rng = random.Random(0)
    ref = make_ref(rng)
    hyp_a = {u: noisy_copy(w, rng, 0.3) for u, w in ref.items()}
    hyp_b = {u: noisy_copy(w, rng, 0.15) for u, w in ref.items()}
    a = make_decode_dir(tmp / "a" / "decode_dev", ref, {("10", "0.0"): hyp_a, ("12", "0.5"): hyp_b}, ("10", "0.0"))
    b = make_decode_dir(tmp / "b" / "decode_dev", ref, {("11", "1.0"): hyp_b}, ("11", "1.0"))
    return ref, hyp_a, hyp_b, a, b


def test_better_system_is_significant(dirs):
    ref, hyp_a, hyp_b, a, b = dirs
    res = compare(read_decode(a), read_decode(b))
    # the WERs are sclite's, and they are the edit distances
    for wer, hyp in ((res.wer_a, hyp_a), (res.wer_b, hyp_b)):
        assert wer.words == sum(len(w) for w in ref.values())
        assert wer.errors == sum(kaldialign.edit_distance(ref[u], hyp[u])["total"] for u in ref)
    assert res.wer_a.wer > res.wer_b.wer + 5
    assert res.better == "B" and res.set_name == "dev" and res.utterances == 200
    assert res.system_a == f"{a}/wer_10_0.0" and res.system_b == f"{b}/wer_11_1.0"
    assert res.mapsswe_z > 0 and res.mapsswe_p < 0.05
    assert res.bootstrap_p < 0.05
    # swapped, MAPSSWE (two-tailed) is as significant; "B not better" is now near certain
    rev = compare(read_decode(b), read_decode(a))
    assert rev.better == "A" and rev.mapsswe_z == pytest.approx(-res.mapsswe_z)
    assert rev.mapsswe_p == pytest.approx(res.mapsswe_p) and rev.bootstrap_p > 0.95


def test_equal_systems_are_not(dirs, tmp_path):
    ref, _, hyp_b, a, b = dirs
    # the same system at another setting of another dir: no difference at all
    same = compare(read_decode(a, "12", "0.5"), read_decode(b))
    assert same.better == "same" and same.mapsswe_p == 1.0 and same.bootstrap_p == 1.0
    # two different systems of the same error rate
    rng = random.Random(5)
    c = make_decode_dir(tmp_path / "decode_dev", ref, {("10", "0.0"): {u: noisy_copy(w, rng, 0.15) for u, w in ref.items()}},
                        ("10", "0.0"))
    res = compare(read_decode(b), read_decode(c))
    assert abs(res.wer_a.wer - res.wer_b.wer) < 3
    assert res.mapsswe_p > 0.2 and 0.05 < res.bootstrap_p < 0.95


def test_bootstrap_is_deterministic(dirs):
    _, _, _, a, b = dirs
    x = compare(read_decode(a), read_decode(b), resamples=2000, seed=3)
    y = compare(read_decode(a), read_decode(b), resamples=2000, seed=3)
    assert x == y
    rng = random.Random(2)
    ea = [rng.randint(0, 3) for _ in range(300)]
    eb = [rng.randint(0, 3) for _ in range(300)]
    p = bootstrap_p(ea, eb, resamples=5000, seed=7)
    assert p == bootstrap_p(ea, eb, resamples=5000, seed=7)
    assert p != bootstrap_p(ea, eb, resamples=5000, seed=8)
    assert bootstrap_p([1] * 50, [0] * 50) == 0.0 and bootstrap_p([0] * 50, [1] * 50) == 1.0


def test_perfect_systems(tmp_path):
    ref = make_ref(random.Random(3), 20)
    a = make_decode_dir(tmp_path / "a", ref, {("10", "0.0"): ref}, ("10", "0.0"))
    res = compare(read_decode(a), read_decode(a))
    assert res.wer_a.errors == 0 and res.mapsswe_p == 1.0 and res.bootstrap_p == 1.0


def mtch_line(mean, std, z):
    return (f"MTCH_PR_RESULTS (systems: A.trn B.trn) (# segs: 30) (Seg per Sent: 1.000) (% Error: 25.00  0.00) "
            f"(mean: {mean}) (std dev: {std}) (Z Stat: {z}) (Stat Diff: No)\n")


def test_mapsswe_p_of_z(tmp_path):
    # two-tailed normal p of sc_stats' Z: 0.05 at 1.96; for Z 0.366 sc_stats' own table says 0.719
    for (mean, std, z), p in (((0.2, 1.0, 1.960), 0.05), ((-0.03, 1.27, -0.366), 0.7144), ((0.0, 0.0, 0.0), 1.0),
                              ((1.0, 0.0, 0.0), 0.0)):  # every segment one error apart: sc_stats says Z 0
        (tmp_path / "r").write_text("report\n" + mtch_line(mean, std, z))
        assert parse_mapsswe(tmp_path / "r")[1] == pytest.approx(p, abs=1e-4)
    (tmp_path / "r").write_text("report\n")
    with pytest.raises(HdnnError, match="no MTCH_PR_RESULTS line"):
        parse_mapsswe(tmp_path / "r")


def test_mismatched_sets(dirs, tmp_path):
    ref, hyp_a, _, a, _ = dirs
    utt = list(ref)[17]
    fewer = {u: w for u, w in ref.items() if u != utt}
    c = make_decode_dir(tmp_path / "decode_dev", fewer, {("10", "0.0"): fewer}, ("10", "0.0"))
    with pytest.raises(HdnnError) as e:
        compare(read_decode(a), read_decode(c))
    msg = str(e.value)
    assert "\n" not in msg and utt in msg and str(c / "scoring_kaldi" / "test_filt.txt") in msg
    # a hypothesis of an utterance not in the reference
    d = make_decode_dir(tmp_path / "d", fewer, {("10", "0.0"): hyp_a}, ("10", "0.0"))
    with pytest.raises(HdnnError, match=f"penalty_0.0/10.txt: utterance {utt} is not in"):
        read_decode(d)


def test_missing_files(dirs, tmp_path):
    _, _, _, a, _ = dirs
    with pytest.raises(HdnnError, match=r"penalty_0.0/11.txt: no such file"):
        read_decode(a, "11", "0.0")
    with pytest.raises(HdnnError, match=r"best_wer: no such file"):
        read_decode(tmp_path)


def test_cli(dirs, tmp_path):
    _, _, _, a, b = dirs
    out = tmp_path / "cmp.txt"
    cmd = [sys.executable, str(ROOT / "steps_py" / "compare_wer.py"), "--lmwt-a", "10", "--wip-a", "0.0",
           "--resamples", "1000", "--out", str(out), str(a), str(b)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    line = p.stdout.strip()
    assert out.read_text() == line + "\n"
    f = line.split()
    assert f[:2] == ["%WER", "A"] and f[8] == "B" and f[15] == "MAPSSWE" and f[17] == "bootstrap"
    assert float(f[2]) > float(f[9]) and float(f[16][2:]) < 0.05 and float(f[18][2:]) < 0.05
    assert f[19:] == ["better=B", "set=dev", f"{a}/wer_10_0.0", "vs", f"{b}/wer_11_1.0"]
    # bad input: one line, exit 1
    p = subprocess.run(cmd[:-2] + [str(a), str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 1 and p.stderr.strip().splitlines()[-1].startswith("compare_wer.py: error: ")
    assert "best_wer: no such file" in p.stderr


def test_at_dev_reports_each_system_at_its_dev_setting_not_at_the_sets_own_best(dirs, tmp_path):
    """compare_wer.py --at-dev and wer_at_dev.py: eval at the setting dev chose, although eval's own
    best_wer (Kaldi's sweep of eval's lattices writes one) is elsewhere."""
    ref, hyp_a, hyp_b, _, _ = dirs
    systems = {}
    for name, dev, other in (("a", ("10", "0.0"), ("12", "0.5")), ("b", ("11", "1.0"), ("9", "0.0"))):
        sys_dir = tmp_path / "exp" / name
        make_decode_dir(sys_dir / "decode_dev", ref, {dev: hyp_a}, dev)
        # eval: the worse hypotheses at dev's setting, the better at eval's own best
        ev = make_decode_dir(sys_dir / "decode_eval", ref, {dev: hyp_a, other: hyp_b}, other)
        (ev / f"wer_{dev[0]}_{dev[1]}").write_text(f"compute-wer --text --mode=present ark:- ark,p:-\n"
                                                    f"%WER 31.25 [ 125 / 400, 5 ins, 20 del, 100 sub ]\n")
        (ev / f"wer_{other[0]}_{other[1]}").write_text("%WER 15.00 [ 60 / 400, 5 ins, 5 del, 50 sub ]\n")
        systems[name] = sys_dir
    a, b = (str(systems[n] / "decode_eval") for n in "ab")
    cmp = [sys.executable, str(ROOT / "steps_py" / "compare_wer.py"), "--resamples", "100"]
    f = subprocess.run(cmp + ["--at-dev", a, b], capture_output=True, text=True, check=True).stdout.split()
    assert f[-3:] == [f"{a}/wer_10_0.0", "vs", f"{b}/wer_11_1.0"] and f[2] == f[9] and "better=same" in f
    f = subprocess.run(cmp + [a, b], capture_output=True, text=True, check=True).stdout.split()
    assert f[-3:] == [f"{a}/wer_12_0.5", "vs", f"{b}/wer_9_0.0"]  # without it: each set's own best
    at_dev = [sys.executable, str(ROOT / "steps_py" / "wer_at_dev.py")]
    out = subprocess.run(at_dev + [str(systems["a"]), "eval"], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["%WER", "31.25", "[", "125", "/", "400,", "5", "ins,", "20", "del,", "100", "sub", "]",
                           f"{a}/wer_10_0.0"]
    # bad input: one line, exit 1
    p = subprocess.run(cmp + ["--at-dev", "--lmwt-a", "10", a, b], capture_output=True, text=True)
    assert p.returncode == 1 and "--at-dev takes each system's dev setting" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = subprocess.run(at_dev + [str(systems["a"]), "test"], capture_output=True, text=True)
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1
    assert f"{systems['a']}/decode_test/wer_10_0.0: no such file" in p.stderr
    (systems["b"] / "decode_dev" / "scoring_kaldi" / "best_wer").unlink()
    p = subprocess.run(at_dev + [str(systems["b"]), "eval"], capture_output=True, text=True)
    assert p.returncode == 1 and "decode_dev/scoring_kaldi/best_wer: no such file" in p.stderr
    p = subprocess.run(cmp + ["--at-dev", a, b], capture_output=True, text=True)
    assert p.returncode == 1 and "decode_dev/scoring_kaldi/best_wer: no such file" in p.stderr

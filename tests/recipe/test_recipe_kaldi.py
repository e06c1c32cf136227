"""egs/ami/run.sh --backend kaldi on the ci corpus: the GMM stages through Kaldi's own steps/
and utils/, and our student's log-likelihoods through the real latgen-faster-mapped."""
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from hdnn.kaldi.binaries import kaldi_env
from hdnn.kaldi.gmm_model import read_transition_model
from hdnn.kaldi.io import read_int_vectors, read_matrices
from hdnn.kaldi.lattices import read_lattices, write_lattices
from hdnn.kaldi.posteriors import read_posteriors
from hdnn.nnet.sequence import FrameAccuracy, LatticeBatch, forward_backward
from hdnn.nnet.models import load_model
from tests.recipe.conftest import (ROOT, FAST, WER_LINE, check, clone_for_decoding, link_nnet_system,
                                   make_recipe_dir, ref_words, run_recipe)

pytestmark = pytest.mark.kaldi

# |WER(kaldi) - WER(py)| allowed for the same nnet, graph and search settings. At LM weight 10
# both search with acoustic scale 0.1 (latgen's --acoustic-scale, the py backend's 1/LMWT) and
# agree word for word; at the other weights Kaldi rescores lattices searched at scale 0.1 while
# the py backend searches anew at 1/LMWT, which moves a few words (measured: 0.9-2.8 points on
# ~215 words with the tests' two-epoch student).
WER_TOLERANCE_SAME_SCALE = 1.0
WER_TOLERANCE = 5.0


@pytest.fixture(scope="module")
def kaldi_gmm_run(kaldi, ci_corpus, tmp_path_factory):
    """Stages 0-4 (data, features, lang + LM, mono, tri, graph, GMM decoding) with Kaldi's scripts."""
    recipe = make_recipe_dir(tmp_path_factory.mktemp("recipe") / "kaldi")
    return check(run_recipe(recipe, "--backend", "kaldi", "--data-root", ci_corpus, *FAST, "--stop-stage", 4,
                            kaldi_root=kaldi))


def best_wer(decode_dir):
    return WER_LINE.search((decode_dir / "scoring_kaldi" / "best_wer").read_text())


def wer_of(wer_file):
    """The %WER of a wer_<LMWT>_<WIP> file (Kaldi's starts with the compute-wer command)."""
    return float(re.search(r"^%WER ([\d.]+)", wer_file.read_text(), re.M)[1])


def hypotheses(text_file):
    """{utt: [words]} of a scoring_kaldi/penalty_<WIP>/<LMWT>.txt."""
    return {f[0]: f[1:] for f in (line.split() for line in text_file.read_text().splitlines()) if f}


def test_gmm_stages_run_kaldis_own_scripts(kaldi_gmm_run, kaldi):
    recipe = kaldi_gmm_run.dir
    for d in ("steps", "utils"):
        assert (recipe / d).is_symlink() and (recipe / d).resolve() == (kaldi / "egs/wsj/s5" / d).resolve()
    for command in ("utils/validate_data_dir.sh", "steps/make_mfcc.sh", "steps/make_fbank.sh",
                    "steps/compute_cmvn_stats.sh", "utils/prepare_lang.sh", "arpa2fst", "steps/train_mono.sh",
                    "steps/align_si.sh", "steps/train_deltas.sh", "steps/decode.sh", "steps/score_kaldi.sh"):
        assert command in kaldi_gmm_run.output, command
    exp = recipe / "exp" / "ihm"
    assert "gmm-init-mono" in (exp / "mono" / "log" / "init.log").read_text()
    assert "build-tree" in (exp / "tri" / "log" / "build_tree.log").read_text()
    assert (recipe / "data" / "lang_test" / "tmp" / "CLG_3_1.fst").exists()  # utils/mkgraph.sh's cache
    assert (exp / "tri" / "graph" / "HCLG.fst").stat().st_size > 0


def test_gmm_decoding_writes_lattices_and_kaldi_and_sclite_scores(kaldi_gmm_run):
    recipe = kaldi_gmm_run.dir
    for dset in ("dev", "eval"):
        dec = recipe / "exp" / "ihm" / "tri" / f"decode_{dset}"
        assert (dec / "lat.1.gz").stat().st_size > 0 and (dec / "lat.2.gz").stat().st_size > 0
        assert "gmm-latgen-faster" in (dec / "log" / "decode.1.log").read_text()
        m = best_wer(dec)
        assert m and m[7] == f"exp/ihm/tri/decode_{dset}"
        assert int(m[3]) == ref_words(recipe / f"data/ihm/{dset}/text")
        assert len(list(dec.glob("wer_*"))) == 3
        # local/score.sh: sclite on the best setting counts the same errors as compute-wer
        report = (dec / "scoring_kaldi" / "sclite" / f"best_{m[10]}_{m[11]}.sys").read_text()
        sum_line = next(line for line in report.splitlines() if "| Sum/Avg|" in line)
        _, wrd, _, _, _, _, err, _ = map(float, sum_line.replace("|", " ").split()[1:])
        assert wrd == int(m[3]) and round(err * wrd / 100) == int(m[2])


def test_latgen_faster_mapped_decodes_our_student_like_the_py_backend(kaldi, py_run, fast_dnn_conf, tmp_path):
    """Our student's log-likelihoods piped into the real latgen-faster-mapped with our graph."""
    recipe = clone_for_decoding(py_run.dir, tmp_path / "kaldi_nnet", "student_kd")
    check(run_recipe(recipe, "--backend", "kaldi", *FAST, "--decode-dnn-config", fast_dnn_conf,
                     "--stage", 8, "--stop-stage", 8, "--nnet-systems", "student_kd", kaldi_root=kaldi))
    for dset in ("dev", "eval"):
        dec = recipe / "exp" / "ihm" / "student_kd" / f"decode_{dset}"
        log = (dec / "log" / "decode.1.log").read_text()
        assert "forward.py" in log and re.search(r"latgen-faster-mapped.*Done \d+ utterances, failed for 0", log, re.S)
        assert (dec / "lat.1.gz").stat().st_size > 0
        py_dec = py_run.dir / "exp" / "ihm" / "student_kd" / f"decode_{dset}"
        kaldi_wer, py_wer = best_wer(dec), best_wer(py_dec)
        print(f"student_kd {dset}: kaldi {kaldi_wer[0]}\n  py    {py_wer[0]}")
        assert kaldi_wer[3] == py_wer[3]
        assert abs(float(kaldi_wer[1]) - float(py_wer[1])) <= WER_TOLERANCE
        # At LM weight 10, the scale the lattices were made at (acwt 0.1), Kaldi's best path is
        # the search's own; at other weights it is read from lattices pruned for weight 10. The py
        # backend swept dev_tune (every 2nd dev utterance) and searched dev and eval once at its best.
        if (py_dec / "wer_10_0.0").exists():
            same_scale = [wer_of(d / "wer_10_0.0") for d in (dec, py_dec)]
            assert abs(same_scale[0] - same_scale[1]) <= WER_TOLERANCE_SAME_SCALE
    kaldi_hyps = hypotheses(recipe / "exp/ihm/student_kd/decode_dev/scoring_kaldi/penalty_0.0/10.txt")
    py_hyps = hypotheses(py_run.dir / "exp/ihm/student_kd/decode_dev_tune/scoring_kaldi/penalty_0.0/10.txt")
    assert py_hyps and set(py_hyps) < set(kaldi_hyps)
    agree = sum(kaldi_hyps[u] == py_hyps[u] for u in py_hyps) / len(py_hyps)
    print(f"  same hypothesis at LM weight 10 for {100 * agree:.0f}% of dev_tune's utterances")
    assert agree >= 0.9


def test_a_failing_kaldi_job_fails_the_stage(kaldi, py_run, fast_dnn_conf, tmp_path):
    recipe = clone_for_decoding(py_run.dir, tmp_path / "bad", "student_ce", ali="mono_ali")
    run = run_recipe(recipe, "--backend", "kaldi", *FAST, "--decode-dnn-config", fast_dnn_conf,
                     "--stage", 8, "--nnet-systems", "student_ce", kaldi_root=kaldi)
    assert run.returncode != 0
    # Kaldi's run.pl names the logs; the recipe adds the failed job's own error line
    assert re.search(r"run\.sh: job failed: \S.* \(log: exp/ihm/student_ce/decode_dev/log/decode\.\d\.log\)",
                     run.output), run.tail()
    assert "Stage 9" not in run.output


def test_stage_9_aligns_with_kaldis_align_compiled_mapped(kaldi, py_run, fast_dnn_conf, tmp_path):
    """Supervised adaptation through the Kaldi backend: compile-train-graphs | align-compiled-mapped
    on our student's log-likelihoods align as steps_py/align_mapped.py does, and the adapted
    student is decoded by latgen-faster-mapped."""
    from hdnn.kaldi.alignments import read_ali_dir

    recipe = clone_for_decoding(py_run.dir, tmp_path / "kaldi_adapt", "student_kd")
    check(run_recipe(recipe, "--backend", "kaldi", *FAST, "--decode-dnn-config", fast_dnn_conf, "--stage", 8,
                     "--stop-stage", 9, "--nnet-systems", "student_kd", "--adapt-systems", "student_adapt_sup",
                     "--adapt-curve-sets", "", kaldi_root=kaldi))
    exp = recipe / "exp" / "ihm" / "student_adapt_sup"
    for dset in ("dev", "eval"):
        assert "align-compiled-mapped" in (exp / f"ali_{dset}" / "log" / "align.1.log").read_text()
        kaldi_ali = read_ali_dir(exp / f"ali_{dset}")
        py_ali = read_ali_dir(py_run.dir / "exp" / "ihm" / "student_adapt_sup" / f"ali_{dset}")
        assert set(kaldi_ali) == set(py_ali)
        same = sum(np.array_equal(a, py_ali[u]) for u, a in kaldi_ali.items()) / len(kaldi_ali)
        print(f"{dset}: {100 * same:.0f}% of the alignments identical")
        assert same >= 0.9
        log = (exp / f"decode_{dset}" / "log" / "decode.1.log").read_text()
        assert "--spk-params" in log and "latgen-faster-mapped" in log
        assert best_wer(exp / f"decode_{dset}")


def _by_frame_and_tid(keys_rows, keys_tids, values, num_tids):
    key = np.asarray(keys_rows, np.int64) * (num_tids + 1) + np.asarray(keys_tids, np.int64)
    uniq, inv = np.unique(key, return_inverse=True)
    return dict(zip(uniq.tolist(), np.bincount(inv, weights=values).tolist()))


def test_sequence_criterion_equals_kaldis_lattice_posteriors(kaldi, py_run, tmp_path):
    """On lattices that the real latgen-faster-mapped made from our student's log-likelihoods,
    rescored with them (lattice-rescore-mapped --old-acoustic-scale=0, as nnet1 trains), the
    sMBR posteriors (both silence conventions), the expected frame accuracy and the arc
    posteriors of hdnn.nnet.sequence equal lattice-to-smbr-post's and lattice-to-post's."""
    recipe, kappa = py_run.dir, 0.1
    mdl = "exp/ihm/student_adapt_sup/ali_dev/final.mdl"
    ali = "ark:gunzip -c exp/ihm/student_adapt_sup/ali_dev/ali.*.gz |"
    sil = (recipe / "data/lang/phones/silence.csl").read_text().strip()

    def sh(cmd):
        p = subprocess.run(cmd, shell=True, cwd=recipe, env=kaldi_env(), capture_output=True, text=True)
        assert p.returncode == 0, p.stderr[-2000:]
        return p.stderr

    sh(f"{sys.executable} {ROOT}/steps_py/forward.py data/ihm/dev_fbank exp/ihm/student_kd ark:{tmp_path}/ll.ark")
    sh(f"latgen-faster-mapped --beam=10 --max-active=2000 --lattice-beam=5 --acoustic-scale={kappa} "
       f"{mdl} exp/ihm/tri/graph/HCLG.fst ark:{tmp_path}/ll.ark 'ark:|gzip -c > {tmp_path}/lat.gz'")
    compact = dict(read_lattices(f"ark:gunzip -c {tmp_path}/lat.gz |"))
    # Kaldi reads the Lattice archive we write; we read its Lattice (not compact) archives
    write_lattices(f"ark:{tmp_path}/ours.ark", compact.items())
    sh(f"lattice-copy --write-compact=false ark:{tmp_path}/ours.ark ark:{tmp_path}/kaldi.ark")
    lats = list(read_lattices(f"ark:{tmp_path}/kaldi.ark"))
    assert [u for u, _ in lats] == list(compact) and len(lats) >= 10

    tm = read_transition_model(recipe / mdl)
    ll = dict(read_matrices(f"ark:{tmp_path}/ll.ark"))
    refs = dict(read_int_vectors(f"ark:gunzip -c {recipe}/exp/ihm/student_adapt_sup/ali_dev/ali.*.gz |"))
    lats = [(u, lat) for u, lat in lats if u in refs]
    batch = LatticeBatch(lats, [len(ll[u]) for u, _ in lats], tm.tid2pdf)
    y = torch.from_numpy(np.concatenate([ll[u] for u, _ in lats]))
    ref = np.concatenate([refs[u] for u, _ in lats])
    rows, tids = batch.arc_rows().numpy(), batch.arcs["tid"].numpy()
    emit = tids != 0
    rescore = f"lattice-rescore-mapped --old-acoustic-scale=0 {mdl} ark:{tmp_path}/ours.ark ark:{tmp_path}/ll.ark ark:-"

    def kaldi_post(name):
        out, posts = {}, dict(read_posteriors(f"ark:{tmp_path}/{name}.post"))
        for u, off in zip(batch.utts, batch.row_offsets):
            for t, frame in enumerate(posts[u]):
                for tid, weight in frame:
                    out[(off + t) * (tm.num_transition_ids + 1) + tid] = weight
        return out

    def max_diff(ours, theirs):
        return max(abs(ours.get(k, 0.0) - theirs.get(k, 0.0)) for k in set(ours) | set(theirs))

    for one_sil in (False, True):
        c = batch.accuracy(FrameAccuracy(tm.tid2pdf, tm.tid2phone, [int(p) for p in sil.split(":")],
                                         "smbr", one_sil), ref)
        stats = forward_backward(batch, y, kappa, c)
        log = sh(f"{rescore} | lattice-to-smbr-post --acoustic-scale={kappa} --silence-phones={sil} "
                 f"--one-silence-class={str(one_sil).lower()} {mdl} '{ali}' ark:- ark:{tmp_path}/smbr.post")
        kaldi_acc = float(re.search(r"Overall average frame-accuracy is ([\d.e-]+)", log)[1])
        ours_acc = stats.accuracy.sum().item() / batch.num_rows
        print(f"one-silence-class={one_sil}: frame accuracy {ours_acc:.6f} (Kaldi {kaldi_acc})")
        assert abs(ours_acc - kaldi_acc) < 1e-5
        diff = max_diff(_by_frame_and_tid(rows[emit], tids[emit], stats.post.numpy()[emit], tm.num_transition_ids),
                        kaldi_post("smbr"))
        print(f"  sMBR posteriors: max |ours - Kaldi| = {diff:.2e}")
        assert diff <= 1e-4
    sh(f"{rescore} | lattice-to-post --acoustic-scale={kappa} ark:- ark:{tmp_path}/gamma.post")
    diff = max_diff(_by_frame_and_tid(rows[emit], tids[emit], stats.gamma.numpy()[emit], tm.num_transition_ids),
                    kaldi_post("gamma"))
    print(f"arc posteriors: max |ours - Kaldi| = {diff:.2e}")
    assert diff <= 1e-4

    # sMBR training on these lattices (the dev set stands in for training data) raises the
    # expected frame accuracy
    denlats = tmp_path / "denlats"
    denlats.mkdir()
    (tmp_path / "lat.gz").rename(denlats / "lat.1.gz")
    sh(f"{sys.executable} {ROOT}/steps_py/train_smbr.py --num-iters 2 --learn-rate 2e-5 data/ihm/dev_fbank "
       f"data/lang exp/ihm/student_kd exp/ihm/student_adapt_sup/ali_dev {denlats} {tmp_path}/smbr")
    acc = [float(line.split("\t")[3]) for line in (tmp_path / "smbr" / "curve.tsv").read_text().splitlines()[1:]]
    print(f"sMBR training: frame accuracy per iteration {acc}")
    assert acc[1] > acc[0]


def test_stage_10_sequence_trains_on_kaldis_denominator_lattices(kaldi, py_run, fast_dnn_conf, tmp_path):
    """Stage 10 with --backend kaldi: student_kd's own alignments (align-compiled-mapped), its
    denominator lattices (latgen-faster-mapped on a unigram graph of the training transcripts),
    train_smbr.py for the sMBR, teacher-student and gates-only students, and their decoding."""
    recipe = clone_for_decoding(py_run.dir, tmp_path / "kaldi_smbr", "student_kd")
    link_nnet_system(py_run.dir / "exp" / "ihm", recipe / "exp" / "ihm", "teacher")
    systems = "student_smbr student_ts_smbr student_gate_smbr"
    check(run_recipe(recipe, "--backend", "kaldi", *FAST, "--decode-dnn-config", fast_dnn_conf, "--stage", 10,
                     "--stop-stage", 10, "--smbr-systems", systems, "--smbr-opts", "--num-iters 1",
                     "--denlat-opts", "--beam=8.0 --lattice-beam=4.0 --max-active=1000", kaldi_root=kaldi))
    exp = recipe / "exp" / "ihm"
    assert "align-compiled-mapped" in (exp / "student_kd_ali" / "log" / "align.1.log").read_text()
    for job in (1, 2):
        log = (exp / "student_kd_denlats" / "log" / f"decode_den.{job}.log").read_text()
        assert re.search(r"latgen-faster-mapped.*Done \d+ utterances, failed for 0", log, re.S)
    lats = list(read_lattices(f"ark:gunzip -c {exp}/student_kd_denlats/lat.*.gz |"))
    assert len(lats) == sum(1 for _ in open(recipe / "data" / "ihm" / "train_fbank" / "feats.scp"))
    kd = load_model(exp / "student_kd" / "final.pt").state_dict()
    for name in systems.split():
        curve = (exp / name / "curve.tsv").read_text().splitlines()
        assert len(curve) == 2, curve
        m = best_wer(exp / name / "decode_dev")
        print(f"{name}: frame accuracy {curve[1].split()[3]}, dev {m[0]}")
        assert int(m[3]) == ref_words(recipe / "data/ihm/dev/text")
        changed = [k for k, v in load_model(exp / name / "final.pt").state_dict().items() if not torch.equal(v, kd[k])]
        assert changed and (name != "student_gate_smbr" or all("gate" in k for k in changed))
    assert "--teacher" in (exp / "student_ts_smbr" / ".done").read_text()
    assert "--acoustic-scale" not in (exp / "student_smbr" / ".done").read_text()  # nnet1's on lattices
    # the tuning tables (local/tune_points.sh): eval at the setting dev chose, not at eval's own
    # best, which Kaldi's sweep of the eval lattices also writes; p of two systems at their dev settings
    dev = best_wer(exp / "student_gate_smbr" / "decode_dev")
    assert len(list((exp / "student_gate_smbr" / "decode_eval").glob("wer_*_*"))) > 1
    tables = subprocess.run(["bash", "-c", ". ./path.sh; . local/tune_points.sh; wer_at_dev exp/ihm/student_gate_smbr eval; "
                             "p_at_dev eval exp/ihm/student_smbr exp/ihm/student_gate_smbr"],
                            cwd=recipe, capture_output=True, text=True, check=True).stdout.split()
    wer_file = f"exp/ihm/student_gate_smbr/decode_eval/wer_{dev[10]}_{dev[11]}"
    assert tables[0] == f"{wer_of(recipe / wer_file):.2f}", tables
    a = best_wer(exp / "student_smbr" / "decode_dev")
    line = subprocess.run([sys.executable, f"{ROOT}/steps_py/compare_wer.py", "--lmwt-a", a[10], "--wip-a", a[11],
                           "--lmwt-b", dev[10], "--wip-b", dev[11], "exp/ihm/student_smbr/decode_eval",
                           "exp/ihm/student_gate_smbr/decode_eval"], cwd=recipe, capture_output=True, text=True,
                          check=True).stdout
    assert len(tables) == 2 and f"MAPSSWE p={tables[1]} " in line, (tables, line)


def test_stage_10_of_the_py_backend_on_kaldis_lattices(kaldi, py_run, tmp_path):
    """--backend py --smbr-denominator lattices: Kaldi makes the denominator lattices alone; the
    alignments are the py aligner's and the sMBR student is searched by the py decoder, as every
    other system of a py run, so that its WER compares with theirs."""
    recipe = clone_for_decoding(py_run.dir, tmp_path / "py_smbr_lattices", "student_kd")
    check(run_recipe(recipe, "--backend", "py", *FAST, "--stage", 10, "--stop-stage", 10,
                     "--smbr-systems", "student_smbr", "--smbr-denominator", "lattices", "--smbr-opts",
                     "--num-iters 1", "--denlat-opts", "--beam=8.0 --lattice-beam=4.0 --max-active=1000",
                     kaldi_root=kaldi))
    exp = recipe / "exp" / "ihm"
    assert "align-compiled-mapped" not in (exp / "student_kd_ali" / "log" / "align.1.log").read_text()
    assert re.search(r"latgen-faster-mapped.*Done \d+ utterances, failed for 0",
                     (exp / "student_kd_denlats" / "log" / "decode_den.1.log").read_text(), re.S)
    assert not (exp / "student_kd_dengraph").exists()
    done = (exp / "student_smbr" / ".done").read_text()
    assert "student_kd_denlats" in done and "--acoustic-scale" not in done  # nnet1's κ on lattices
    assert not list((exp / "student_smbr" / "decode_dev").glob("lat.*.gz"))  # the py search's decode
    m = best_wer(exp / "student_smbr" / "decode_dev")
    assert int(m[3]) == ref_words(recipe / "data/ihm/dev/text")

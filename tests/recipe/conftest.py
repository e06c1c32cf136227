"""Runs of egs/ami/run.sh shared by the recipe tests: each is made once per session, in a
recipe dir of links to egs/ami (as Kaldi recipes link steps/ and utils/), on the `ci` corpus."""
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "egs" / "ami"

# Reduced settings for CI: a heavily pruned LM (a small graph), a small tree, two epochs per
# nnet, a narrow beam, a 3-point LM-weight sweep and two points of the adaptation curve.
SWEEP = "--min-lmwt 9 --max-lmwt 11 --word-ins-penalty 0.0"
FAST = ["--lm-prune", "1e-5", "--num-leaves", "500", "--tot-gauss", "2000",
        "--train-opts", "--max-iters 2", "--gmm-decode-opts", "--beam 8 --max-active 1000",
        "--nnet-decode-opts", "--beam 8 --max-active 1000",
        "--gmm-scoring-opts", SWEEP, "--nnet-scoring-opts", SWEEP, "--adapt-curve-seconds", "10 0"]
CURVE_POINTS = 3 * 2  # gates, lhuc, all x 10 s, all
# The IHM systems of stages 5-8 with the tests' settings, and of them the nnets.
SYSTEMS = ("tri", "teacher", "student_ce", "student_kd", "student_kd_u1x", "dnn_small")
NNETS = SYSTEMS[1:]
# The same search for latgen-faster-mapped (--backend kaldi), for comparable WERs.
FAST_DNN_CONF = "beam=8.0\nmax_active=1000\nlattice_beam=6.0\nacwt=0.1\n"
# A %WER line of RESULTS.md or best_wer: 1 %WER, 2 errors, 3 words, 4-6 ins/del/sub,
# 7 decode dir, 8 system, 9 set, 10 LM weight, 11 word insertion penalty.
WER_LINE = re.compile(r"%WER (\d+\.\d\d) \[ (\d+) / (\d+), (\d+) ins, (\d+) del, (\d+) sub \] "
                      r"(exp/ihm/(\w+)/decode_(dev_tune|dev|eval))/wer_(\d+)_([\d.]+)")


def recipe_default(name):
    """The default of a run.sh option, from its configuration section (e.g. "kd_temperature")."""
    m = re.search(rf'^{name}=("[^"]*"|\S*)', (RECIPE / "run.sh").read_text(), re.M)
    assert m, f"run.sh sets no {name}"
    return m[1].strip('"')


def ref_words(text_file):
    """Number of reference words in a data dir's text."""
    return sum(len(line.split()) - 1 for line in Path(text_file).read_text().splitlines())


@dataclass
class Run:
    """One run.sh invocation: its recipe dir, exit code, combined output and wall time."""

    dir: Path
    returncode: int
    output: str
    seconds: float

    def tail(self, n=40):
        return "\n".join(self.output.splitlines()[-n:])


def make_recipe_dir(path):
    """A recipe dir whose run.sh, path.sh, cmd.sh, conf/ and local/ link to the project's."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for name in ("run.sh", "path.sh", "cmd.sh", "conf"):
        (path / name).symlink_to(RECIPE / name)
    (path / "local").symlink_to(ROOT / "local")
    return path


def run_recipe(recipe_dir, *args, kaldi_root=None):
    """Run <recipe_dir>/run.sh ARGS; the output also goes to <recipe_dir>/run.<n>.log."""
    env = dict(os.environ)
    env.pop("KALDI_ROOT", None)
    if kaldi_root:
        env["KALDI_ROOT"] = str(kaldi_root)
    t0 = time.time()
    p = subprocess.run(["bash", str(Path(recipe_dir) / "run.sh"), *map(str, args)], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.time() - t0
    logs = sorted(Path(recipe_dir).glob("run.*.log"))
    (Path(recipe_dir) / f"run.{len(logs) + 1}.log").write_text(p.stdout)
    print(f"run.sh {' '.join(map(str, args))}: exit {p.returncode} in {seconds:.1f} s")
    return Run(Path(recipe_dir), p.returncode, p.stdout, seconds)


def check(run):
    assert run.returncode == 0, f"run.sh failed (exit {run.returncode}):\n{run.tail()}"
    return run


@pytest.fixture(scope="session")
def py_args(ci_corpus):
    """The py backend's recipe options; stage 10 (sMBR) is tested on its own, beside these runs."""
    return ["--backend", "py", "--data-root", ci_corpus, *FAST, "--smbr-systems", ""]


@pytest.fixture(scope="session")
def py_run(tmp_path_factory, py_args):
    """All stages with --backend py on the ci corpus (IHM), reduced settings."""
    return check(run_recipe(make_recipe_dir(tmp_path_factory.mktemp("recipe") / "py"), *py_args))


@pytest.fixture(scope="session")
def fast_dnn_conf(tmp_path_factory):
    path = tmp_path_factory.mktemp("conf") / "decode_dnn.conf"
    path.write_text(FAST_DNN_CONF)
    return path


def link_nnet_system(src_exp, dst_exp, system):
    """dst_exp/<system>: links to the trained files of src_exp/<system>, without its decodings."""
    src, dst = Path(src_exp) / system, Path(dst_exp) / system
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if not f.name.startswith("decode_"):
            (dst / f.name).symlink_to(f)
    return dst


def clone_for_decoding(src_dir, dst_dir, system, ali="tri_ali"):
    """A recipe dir that can run stage 8 for `system` on the data, graph and nnet of the
    recipe dir src_dir, writing its own decode dirs; `ali` stands in for tri_ali."""
    dst = make_recipe_dir(dst_dir)
    shutil.copytree(Path(src_dir) / "data" / "ihm", dst / "data" / "ihm", symlinks=True)
    (dst / "data" / "lang").symlink_to(Path(src_dir) / "data" / "lang")
    exp = dst / "exp" / "ihm"
    exp.mkdir(parents=True)
    (exp / "tri").symlink_to(Path(src_dir) / "exp" / "ihm" / "tri")
    (exp / "tri_ali").symlink_to(Path(src_dir) / "exp" / "ihm" / ali)
    link_nnet_system(Path(src_dir) / "exp" / "ihm", exp, system)
    return dst

"""The ci recipe with its parallel jobs on a Slurm cluster (Kaldi's slurm.pl against the one-node
cluster of tests/slurm.py): the same bytes as the session's run through run.pl (py_run). Slow
(each array of jobs waits on slurm.pl's polling): run with HDNN_FULL_TESTS=1; CI runs the
step-level Slurm tests of tests/test_jobs.py instead."""
import os
from pathlib import Path

import pytest

from tests.recipe.conftest import check, make_recipe_dir, run_recipe
from tests.recipe.test_recipe_repro import artifacts


@pytest.mark.slow
@pytest.mark.kaldi
def test_the_ci_recipe_on_slurm_writes_what_run_pl_writes(kaldi, slurm_cluster, py_run, py_args, ci_corpus, tmp_path):
    if os.environ.get("HDNN_FULL_TESTS") != "1":
        pytest.skip("slow (the whole ci recipe on Slurm): set HDNN_FULL_TESTS=1")
    recipe = make_recipe_dir(tmp_path / "slurm")
    (recipe / "cmd.sh").unlink()
    slurm_pl = f"{kaldi}/egs/wsj/s5/utils/parallel/slurm.pl --config {slurm_cluster.slurm_pl_conf}"
    (recipe / "cmd.sh").write_text(f'export train_cmd="{slurm_pl} --mem 1G"\nexport decode_cmd="{slurm_pl} --mem 1G"\n'
                                   f'export cuda_cmd="{slurm_pl} --mem 2G"\n')
    run = check(run_recipe(recipe, *py_args))
    first = artifacts(py_run.dir, Path(ci_corpus).parent / "corpus")
    second = artifacts(recipe, Path(ci_corpus).parent / "corpus")
    assert not set(second) - set(first), sorted(set(second) - set(first))[:8]
    differ = [k for k in second if first[k] != second[k]]
    assert not differ, f"{len(differ)} of {len(second)} artifacts differ, e.g. {differ[:8]}"
    logs = list((recipe / "exp" / "ihm" / "mono" / "log").glob("acc.*.log"))
    assert logs and all("SLURM_ARRAY_TASK_ID=" in p.read_text() for p in logs)
    print(f"ci recipe on Slurm: {run.seconds:.0f} s (run.pl: {py_run.seconds:.0f} s)")

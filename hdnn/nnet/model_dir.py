"""The files a trained model dir keeps beside final.pt, so forward sees what training saw.

  feature_opts.json        speaker CMVN on/off, norm_vars, splice width, raw feature dim
  global_cmvn.npz          the global mean/variance normalisation of the spliced features
  final.feature_transform  the same as an nnet1 <Splice>+<AddShift>+<Rescale> (for nnet-forward)
  ali_train_pdf.counts     pdf counts of the training alignments (the priors for forward)
"""
import json
import shutil
from pathlib import Path

from hdnn.errors import HdnnError, atomic_open
from hdnn.kaldi.features import FeaturePipeline, GlobalCmvn

FEATURE_OPTS = "feature_opts.json"
GLOBAL_CMVN = "global_cmvn.npz"
FEATURE_TRANSFORM = "final.feature_transform"
PRIOR_COUNTS = "ali_train_pdf.counts"


def has_feature_setup(model_dir):
    return (Path(model_dir) / FEATURE_OPTS).exists()


def save_feature_setup(model_dir, pipeline):
    """Write the feature options, global CMVN and nnet1 feature transform of ``pipeline``."""
    model_dir = Path(model_dir)
    if pipeline.global_cmvn is not None:
        pipeline.global_cmvn.save(model_dir / GLOBAL_CMVN)
    pipeline.write_feature_transform(model_dir / FEATURE_TRANSFORM)
    opts = dict(cmvn=pipeline.cmvn is not None, norm_vars=pipeline.norm_vars, splice=pipeline.splice,
                input_dim=pipeline.input_dim, global_cmvn=pipeline.global_cmvn is not None)
    with atomic_open(model_dir / FEATURE_OPTS) as f:
        json.dump(opts, f, indent=1)


def load_feature_pipeline(model_dir, data_dir):
    """A FeaturePipeline over ``data_dir`` with the feature set-up saved in ``model_dir``."""
    model_dir = Path(model_dir)
    path = model_dir / FEATURE_OPTS
    try:
        opts = json.loads(path.read_text())
    except FileNotFoundError:
        raise HdnnError(f"{path}: no such file (not a model dir written by train.py?)") from None
    except (OSError, ValueError) as e:
        raise HdnnError(f"{path}: cannot read: {e}") from None
    pipeline = FeaturePipeline(data_dir, cmvn=opts["cmvn"], norm_vars=opts["norm_vars"], splice=opts["splice"])
    if pipeline.input_dim != opts["input_dim"]:
        raise HdnnError(f"{pipeline.data.feats_scp}: features of dim {pipeline.input_dim}, but the model in "
                        f"{model_dir} was trained on dim {opts['input_dim']}")
    if opts["global_cmvn"]:
        pipeline.global_cmvn = GlobalCmvn.load(model_dir / GLOBAL_CMVN)
        if pipeline.global_cmvn.dim != pipeline.dim:
            raise HdnnError(f"{model_dir / GLOBAL_CMVN}: dim {pipeline.global_cmvn.dim}, "
                            f"but the spliced features have dim {pipeline.dim}")
    return pipeline


MODEL_DIR_FILES = ("final.pt", "feature_opts.json", "global_cmvn.npz", "final.feature_transform",
                   "ali_train_pdf.counts")


def copy_model_dir(model_dir, out_dir, names=MODEL_DIR_FILES):
    """Copy the model dir files ``names`` to ``out_dir`` (the feature set-up, the priors and, by
    default, final.pt); refuses an ``out_dir`` that already holds different ones."""
    for name in names:
        src, dst = Path(model_dir) / name, Path(out_dir) / name
        if not src.exists():
            continue
        if dst.exists():
            if dst.read_bytes() != src.read_bytes():
                raise HdnnError(f"{dst}: differs from {src}: {out_dir} was made from another model; "
                                f"use a new dir or remove it")
            continue
        shutil.copyfile(src, dst)


def load_for_data(model_file, data_dir, num_pdfs=None):
    """(model, FeaturePipeline over ``data_dir``) of a model file and the feature set-up saved
    beside it, checked to fit the features (and ``num_pdfs`` outputs, when given)."""
    from hdnn.nnet.models import load_model
    from hdnn.nnet.train import check_model_fits

    model = load_model(model_file)
    pipeline = load_feature_pipeline(Path(model_file).parent, data_dir)
    check_model_fits(model, pipeline.dim, num_pdfs, model_file, pipeline.data.feats_scp)
    return model, pipeline

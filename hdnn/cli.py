"""Shared plumbing for the command-line steps in steps_py/ (Kaldi-style tools)."""
import argparse
import logging
import os
import sys
from pathlib import Path

from hdnn.errors import HdnnError, describe_os_error


def str2bool(v):
    """argparse type for Kaldi-style booleans: --opt true|false."""
    if isinstance(v, bool):
        return v
    if v.lower() in ("true", "t", "yes", "y", "1"):
        return True
    if v.lower() in ("false", "f", "no", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {v!r}")


def get_parser(description, usage=None):
    """An ArgumentParser that shows defaults in --help, like icefall's steps."""
    return argparse.ArgumentParser(
        description=description,
        usage=usage,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )


def setup_logging(log_file=None, verbose=False):
    """Log to stderr and, when given, to `log_file` (e.g. exp/dir/log/train.log)."""
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] %(message)s",
        handlers=handlers,
        force=True,
    )


def job_logger(log_file):
    """A logger writing only to `log_file` (one parallel job's exp/*/log/NAME.JOB.log)."""
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"hdnn.job.{log_file}")
    logger.handlers[:] = [logging.FileHandler(log_file, mode="w")]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def run_main(main, argv=None):
    """Run a step's main(argv); bad input becomes one clear line on stderr and exit 1."""
    prog = os.path.basename(sys.argv[0])
    logging.info("%s %s", prog, " ".join(sys.argv[1:] if argv is None else argv))
    try:
        main(argv)
    except HdnnError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:  # disk full, read-only or unreadable paths: one line, not a traceback
        if isinstance(e, BrokenPipeError):  # the reader of our stdout went away: stop quietly, as Kaldi tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        print(f"{prog}: error: {describe_os_error(e)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)


def set_torch_threads(n=1):
    """Small matrix products run far slower with 2 threads than 1 on 2-core machines:
    default to 1 thread per process and parallelise across processes."""
    import torch

    torch.set_num_threads(int(os.environ.get("HDNN_NUM_THREADS", n)))

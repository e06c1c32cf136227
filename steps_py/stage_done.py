#!/usr/bin/env python3
"""The completion marker of a recipe stage, <dir>/.done: what egs/ami/run.sh's `step` uses to
skip work that is complete and made from the same inputs, and to redo work whose command or
inputs changed (never to reuse it silently).

`check` prints one line: "complete", "not done", or what changed since the .done was written.
`write` records the command and the identity of every path it names (and of --deps), as they
are after the stage ran (see hdnn/stamps.py)."""
import argparse
import sys

from hdnn.cli import get_parser, run_main

USAGE = """%(prog)s [--deps "PATH ..."] [--settings "OPTIONS"] check|write <dir> <command> [<args>...]
 e.g.: %(prog)s --deps "exp/ihm/tri/graph exp/ihm/tri" check exp/ihm/tri/decode_dev decode_gmm dev"""


def main(argv=None):
    p = get_parser(__doc__, usage=USAGE)
    p.add_argument("--deps", default="", help="paths the command reads without naming them")
    p.add_argument("--settings", default="", help="options the command reads without naming them")
    p.add_argument("action", choices=("check", "write"))
    p.add_argument("dir")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if not args.command:
        p.error("no command")
    from hdnn.stamps import stage_stamp, stage_state, write_stamp

    if args.action == "check":
        print(stage_state(args.dir, args.command, args.deps.split(), args.settings))
    else:
        write_stamp(f"{args.dir}/.done", stage_stamp(args.dir, args.command, args.deps.split(), args.settings))


if __name__ == "__main__":
    run_main(main, sys.argv[1:])

"""Command line: ``python -m softres figures`` regenerates the book's figures outside the book.

Examples::

    python -m softres figures --out figures                 # every registered figure
    python -m softres figures --chapter psd --out figures   # one chapter
    python -m softres figures problem-domain --out figures  # by registry name
    python -m softres list                                  # the registry
    python -m softres check-build _build/html               # every registered figure was built
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from softres import figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m softres", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fig = sub.add_parser("figures", help="draw registered figures into a folder (PNG)")
    fig.add_argument("names", nargs="*", help="registry names (default: all, or --chapter's)")
    fig.add_argument("--chapter", help="only this chapter's figures (file name in book/ without .md)")
    fig.add_argument("--out", default="figures", help="output folder (default: ./figures)")
    sub.add_parser("list", help="list the figure registry")
    chk = sub.add_parser("check-build", help="fail if a registered figure is missing from the built HTML")
    chk.add_argument("html_dir")
    args = parser.parse_args(argv)

    reg = figures.registry()
    if args.command == "list":
        for spec in reg.values():
            print(f"{spec.name:28s} {spec.chapter:10s} seed={spec.seed:<5d} {spec.caption}")
        return 0
    if args.command == "check-build":
        problems = figures.check_build(args.html_dir)
        for line in problems:
            print(f"missing figure: {line}", file=sys.stderr)
        if not problems:
            print(f"all {len(reg)} registered figures are in the built book")
        return 1 if problems else 0
    if args.names and args.chapter:
        parser.error("give figure names or --chapter, not both")
    names = args.names or [n for n, s in reg.items() if args.chapter in (None, s.chapter)]
    if args.chapter and not names:
        parser.error(f"no registered figure in chapter {args.chapter!r}")
    unknown = [n for n in names if n not in reg]
    if unknown:
        parser.error(f"unknown figure(s): {', '.join(unknown)}; see 'python -m softres list'")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise PermissionError(f"{out} is not writable")
    except OSError as exc:
        parser.error(f"--out {args.out!r}: cannot write figures there ({exc.strerror or exc})")
    for path in figures.save(names, out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Command line: the book's figures (with their data), chapters as notebooks, the PDF and the archive.

Examples::

    python -m softres figures --out figures                 # every registered figure
    python -m softres figures --chapter psd --out figures   # one chapter
    python -m softres figures problem-domain --out figures  # by registry name
    python -m softres list                                  # the registry
    python -m softres check-build _build/html               # every registered figure was built
    python -m softres notebook psd --out notebooks          # execute a chapter into notebooks/psd.ipynb
    python -m softres pdf _build/singlehtml book.pdf        # print the single-page book (needs chromium)
    python -m softres dist --out dist ...                   # the versioned archive (see `make dist`)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from softres import figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m softres", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fig = sub.add_parser("figures", help="draw registered figures into a folder (PNG, and their data as CSV)")
    fig.add_argument("names", nargs="*", help="registry names (default: all, or --chapter's)")
    fig.add_argument("--chapter", help="only this chapter's figures (file name in book/ without .md)")
    fig.add_argument("--out", default="figures", help="output folder (default: ./figures)")
    sub.add_parser("list", help="list the figure registry")
    chk = sub.add_parser("check-build", help="fail if a figure or its data link is missing from the built HTML")
    chk.add_argument("html_dir")
    nbk = sub.add_parser("notebook", help="execute chapters into plain .ipynb notebooks (figures and numbers shown)")
    nbk.add_argument("chapters", nargs="*", help="chapter names (file names in book/ without .md; default: all)")
    nbk.add_argument("--out", default="notebooks", help="output folder (default: ./notebooks; not book/)")
    pdf = sub.add_parser("pdf", help="print the single-page HTML book to PDF with headless Chromium")
    pdf.add_argument("singlehtml_dir")
    pdf.add_argument("output")
    dst = sub.add_parser("dist", help="zip the site, PDF, notebooks, figure data and CITATION.cff")
    dst.add_argument("--out", default="dist")
    dst.add_argument("--site", default="_build/html")
    dst.add_argument("--pdf", default="_build/pdf/softres.pdf")
    dst.add_argument("--notebooks", default="_build/notebooks")
    dst.add_argument("--figure-data", default="_build/html/figure-data")
    dst.add_argument("files", nargs="*", default=["CITATION.cff", "LICENSE", "README.md"])
    args = parser.parse_args(argv)

    if args.command == "notebook":
        return _notebooks(parser, args.chapters, args.out)
    if args.command == "pdf":
        from softres import dist

        try:
            print(dist.pdf(args.singlehtml_dir, args.output))
        except (FileNotFoundError, RuntimeError) as exc:
            print(f"pdf: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "dist":
        from softres import dist

        try:
            print(dist.build(args.out, site=args.site, pdf=args.pdf, notebooks=args.notebooks,
                             figure_data=args.figure_data, files=args.files))
        except FileNotFoundError as exc:
            print(f"dist: {exc}", file=sys.stderr)
            return 1
        return 0

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


def _notebooks(parser: argparse.ArgumentParser, names: list[str], out: str) -> int:
    import time

    from softres import notebook

    known = notebook.chapters()
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown chapter(s): {', '.join(unknown)}; chapters: {', '.join(known)}")
    with tempfile.TemporaryDirectory(prefix="softres-data-") as tmp:
        cache = os.environ.get(figures.CACHE_ENV) or tmp  # one figure-data cache for all: the ledger reuses it
        for name in names or known:
            start = time.perf_counter()
            try:
                path = notebook.export(name, out, data_cache=cache)
            except ValueError as exc:
                parser.error(str(exc))
            print(f"{path}  ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

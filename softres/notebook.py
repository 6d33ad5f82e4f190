"""Execute a chapter of the book into a plain Jupyter notebook (``python -m softres notebook``).

The chapters are MyST notebooks written for Jupyter Book: their figures and numbers are glued
(``myst_nb.glue(..., display=False)``) and shown by ``{glue:figure}`` and ``{glue:text}`` in the
prose, and lemmas sit in ``{prf:...}`` blocks. A plain notebook front end (JupyterLab, nbviewer,
VS Code) shows none of that. :func:`export` executes a chapter (``jupytext`` + ``nbclient``, in the
chapter's folder, writing nothing there) and rewrites its Markdown for such a front end:

* ``{glue:text}`key:fmt``` becomes the glued value, formatted as the book formats it;
* a ``{glue:figure}`` block becomes the figure itself (a PNG attached to the Markdown cell) and its
  caption;
* ``{prf:lemma}`` and the other ``{prf:...}`` blocks become a bold heading ("**Lemma 7.1 (...)**")
  followed by their text; ``{prf:ref}`` and ``{ref}`` become that heading's name;
* ``{cite}`` / ``{cite:t}`` become "(Song et al., 2023)" / "Song et al. (2023)" from
  ``references.bib``, ``{bibliography}`` the list of its entries;
* ``{doc}`` becomes a link to the other chapter's notebook (same folder), also in Markdown outputs;
* the glue outputs themselves (unknown to a plain front end) are removed from the code cells.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["chapters", "export", "plain_markdown"]

GLUE_PREFIX = "application/papermill.record/"
#: Image types a glued figure may have, in order of preference, with their file extensions.
IMAGE_TYPES = {"image/png": "png", "image/svg+xml": "svg", "image/jpeg": "jpg"}
_FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}[ \t]*(?P<arg>.*)$")
_ROLE = re.compile(r"\{(?P<name>[\w:+-]+)\}`(?P<body>[^`]*)`")
_TARGET = re.compile(r"^\((?P<label>[\w.:-]+)\)=\s*$")


def book_dir() -> Path:
    """The book's source folder: ``./book`` if it exists, else the one beside the installed package."""
    here = Path.cwd() / "book"
    return here if (here / "intro.md").is_file() else Path(__file__).resolve().parents[1] / "book"


def chapters(book: str | Path | None = None) -> list[str]:
    """The book's chapters in reading order (the landing page, then ``_toc.yml``'s files)."""
    book = Path(book) if book is not None else book_dir()
    toc = (book.parent / "_toc.yml").read_text(encoding="utf-8")
    return ["intro", *re.findall(r"file:\s*book/(\w+)", toc)]


# --------------------------------------------------------------------------------------------------
# glue data


def glue_outputs(nb) -> dict[str, dict[str, Any]]:
    """``{key: mime bundle}`` of every glued value in an executed notebook (prefix removed)."""
    found = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("scrapbook")
            if meta:
                prefix = len(meta.get("mime_prefix", ""))
                found[meta["name"]] = {k[prefix:]: v for k, v in out.get("data", {}).items()}
    return found


def _drop_hidden_glue(nb) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not any(k.startswith(GLUE_PREFIX) for k in o.get("data", {}))]


# --------------------------------------------------------------------------------------------------
# bibliography


def _bib(path: Path) -> dict[str, dict[str, str]]:
    entries = {}
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    for m in re.finditer(r"@\w+\s*\{\s*([^,\s]+)\s*,(.*?)\n\}", text, flags=re.S):
        fields = {k.lower(): re.sub(r"[{}]", "", v).strip()
                  for k, v in re.findall(r"(\w+)\s*=\s*(\{(?:[^{}]|\{[^{}]*\})*\}|\"[^\"]*\"|\d+)", m.group(2))}
        fields = {k: v.strip('"') for k, v in fields.items()}
        entries[m.group(1)] = fields
    return entries


def _surnames(entry: dict[str, str]) -> list[str]:
    names = [a.strip() for a in re.split(r"\s+and\s+", entry.get("author", "")) if a.strip()]
    return [n.split(",")[0].strip() if "," in n else n.split()[-1] for n in names]


def _cite(keys: str, bib: dict[str, dict[str, str]], textual: bool, cited: list[str]) -> str:
    parts = []
    for key in (k.strip() for k in keys.split(",")):
        entry = bib.get(key)
        if entry is None:
            parts.append(key)
            continue
        if key not in cited:
            cited.append(key)
        names = _surnames(entry) or [entry.get("title", key)]
        who = names[0] if len(names) == 1 else (" and ".join(names) if len(names) == 2 else f"{names[0]} et al.")
        year = entry.get("year", "n.d.")
        parts.append(f"{who} ({year})" if textual else f"{who}, {year}")
    return "; ".join(parts) if textual else "(" + "; ".join(parts) + ")"


_ACCENTS = {"'": "\u0301", "`": "\u0300", '"': "\u0308", "^": "\u0302", "~": "\u0303", "c": "\u0327"}


def _plain_tex(text: str) -> str:
    """BibTeX text without its LaTeX: accents composed (``\\'e`` -> é), ``\\&`` -> &, ``--`` -> en dash."""
    text = re.sub(r"\\([`'\"^~c])\s*(\w)", lambda m: unicodedata.normalize("NFC", m.group(2) + _ACCENTS[m.group(1)]),
                  text)
    return text.replace("\\&", "&").replace("--", "–").replace("~", " ").replace("\\", "")


def _bibliography(bib: dict[str, dict[str, str]]) -> str:
    """Every entry of ``references.bib``, as the book's bibliography lists them (sorted by first author)."""
    lines = []
    for key in sorted(bib, key=lambda k: (_surnames(bib[k]) or [k])[0]):
        e = bib[key]
        authors = e.get("author", "").replace(" and others", " et al.").replace(" and ", "; ")
        where = e.get("journal") or e.get("booktitle") or e.get("publisher") or e.get("howpublished") or ""
        parts = [authors.rstrip("."), e.get("title", key), where, e.get("year", "")]
        lines.append("- " + _plain_tex(". ".join(p for p in parts if p)) + ".")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Markdown rewriting


class _Context:
    def __init__(self, glue: dict[str, dict[str, Any]], bib: dict[str, dict[str, str]], titles: dict[str, str]):
        self.glue = glue
        self.bib = bib
        self.titles = titles  # chapter name -> its first heading
        self.labels: dict[str, str] = {}  # prf / section labels -> display name
        self.cited: list[str] = []
        self.attachments: dict[str, dict[str, str]] = {}


def _glue_text(spec: str, ctx: _Context) -> str:
    from myst_nb.core.variables import format_plain_text

    key, _, fmt = spec.rpartition(":") if ":" in spec else (spec, "", "")
    key = key or spec
    bundle = ctx.glue.get(key)
    if bundle is None or "text/plain" not in bundle:
        raise KeyError(f"no glued value {key!r} in the executed chapter")
    return format_plain_text(bundle["text/plain"], fmt)


def _display_name(text: str) -> tuple[str, str]:
    """``"text <target>"`` -> (text, target); ``"target"`` -> ("", target)."""
    m = re.fullmatch(r"(.*?)\s*<([^>]+)>", text.strip(), flags=re.S)
    return (m.group(1), m.group(2)) if m else ("", text.strip())


def _roles(text: str, ctx: _Context) -> str:
    def repl(m: re.Match) -> str:
        name, body = m.group("name"), m.group("body")
        if name == "glue:text":
            return _glue_text(body, ctx)
        if name in ("cite", "cite:p", "cite:ps"):
            return _cite(body, ctx.bib, textual=False, cited=ctx.cited)
        if name in ("cite:t", "cite:ts"):
            return _cite(body, ctx.bib, textual=True, cited=ctx.cited)
        if name == "doc":
            shown, target = _display_name(body)
            chapter = Path(target).name
            return f"[{shown or ctx.titles.get(chapter, chapter)}]({chapter}.ipynb)"
        if name in ("ref", "prf:ref", "numref", "eq"):
            shown, target = _display_name(body)
            return shown or ctx.labels.get(target, target)
        if name == "math":
            return f"${body}$"
        return body  # any other role: its text

    return _ROLE.sub(repl, text)


def _directive_block(lines: list[str], start: int) -> tuple[dict[str, str], list[str], int]:
    """Options, body lines and the index after the closing fence of the directive opened at ``start``."""
    fence = _FENCE.match(lines[start]).group("fence")
    char = fence[0]
    end = start + 1
    while end < len(lines) and not re.fullmatch(re.escape(char) + f"{{{len(fence)},}}\\s*", lines[end]):
        end += 1
    body = lines[start + 1:end]
    options: dict[str, str] = {}
    if body and body[0].strip() == "---":  # YAML options block
        close = next((i for i in range(1, len(body)) if body[i].strip() == "---"), 0)
        for line in body[1:close]:
            key, _, value = line.partition(":")
            options[key.strip()] = value.strip()
        body = body[close + 1:]
    while body and re.match(r"^:[\w-]+:", body[0]):
        key, _, value = body[0][1:].partition(":")
        options[key.strip()] = value.strip()
        body = body[1:]
    while body and not body[0].strip():
        body = body[1:]
    return options, body, end + 1


def _prf_title(name: str, arg: str) -> str:
    kind = name.split(":", 1)[1].capitalize()
    return f"{kind} {arg}".strip()


def _collect_labels(source: str, labels: dict[str, str]) -> None:
    lines = source.splitlines()
    for i, line in enumerate(lines):
        m = _FENCE.match(line)
        if m and m.group("name").startswith("prf:"):
            options, _, _ = _directive_block(lines, i)
            if "label" in options:
                title = _prf_title(m.group("name"), m.group("arg"))
                labels[options["label"]] = re.sub(r"\s*\(.*\)\s*$", "", title)
        t = _TARGET.match(line)
        if t and i + 1 < len(lines):
            heading = next((x for x in lines[i + 1:] if x.strip()), "")
            labels[t.group("label")] = heading.lstrip("#").strip()


def _rewrite(lines: list[str], ctx: _Context) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if _TARGET.match(line):
            i += 1
            continue
        m = _FENCE.match(line)
        if m is None:
            # a plain code fence: copy it untouched up to its end
            plain = re.match(r"^(`{3,}|~{3,})", line)
            if plain:
                close = next((j for j in range(i + 1, len(lines))
                              if lines[j].strip().startswith(plain.group(1)) and not lines[j].strip().strip(
                                  plain.group(1)[0])), len(lines) - 1)
                out += lines[i:close + 1]
                i = close + 1
                continue
            out.append(_roles(line, ctx))
            i += 1
            continue
        name, arg = m.group("name"), m.group("arg").strip()
        options, body, i = _directive_block(lines, i)
        inner = _rewrite(body, ctx)
        if name == "glue:figure":
            key = arg
            bundle = ctx.glue.get(key, {})
            mime = next((m for m in IMAGE_TYPES if m in bundle), None)
            if mime is None:
                raise KeyError(f"no glued figure {key!r} (as {' or '.join(IMAGE_TYPES)}) in the executed chapter")
            image = bundle[mime]
            if mime == "image/svg+xml" and isinstance(image, list):
                image = "".join(image)
            elif mime != "image/svg+xml" and not isinstance(image, str):
                image = base64.b64encode(image).decode()
            name = f"{key}.{IMAGE_TYPES[mime]}"
            ctx.attachments[name] = {mime: image}
            alt = options.get("alt") or " ".join(inner).strip()[:200] or key
            alt = re.sub(r"[\[\]\n]", " ", alt)
            out += [f"![{alt}](attachment:{name})", ""]
            if inner:
                out += ["**Figure.** " + inner[0], *inner[1:]]
        elif name.startswith("prf:"):
            title = "Proof." if name == "prf:proof" else _roles(_prf_title(name, arg), ctx) + "."
            out += [f"**{title}**", "", *inner, ""]
        elif name == "bibliography":
            out += ["", "(bibliography)", ""]  # filled in once every citation has been seen
        elif name in ("admonition", "note", "warning", "important", "tip", "seealso"):
            title = _roles(arg, ctx) if arg else name.capitalize()
            out += [f"**{title}.**", "", *inner, ""]
        else:
            out += inner
    return out


def plain_markdown(source: str, ctx: _Context) -> str:
    """One Markdown cell of a chapter, rewritten for a plain notebook front end (see the module docstring)."""
    return "\n".join(_rewrite(source.splitlines(), ctx))


# --------------------------------------------------------------------------------------------------
# execution


@contextlib.contextmanager
def _environment(data_cache: str | None) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.pop("MPLBACKEND", None)  # an Agg backend would glue figures as text
    with contextlib.ExitStack() as stack:
        if data_cache is None and not os.environ.get("SOFTRES_DATA_CACHE"):
            data_cache = stack.enter_context(tempfile.TemporaryDirectory(prefix="softres-data-"))
        if data_cache is not None:
            os.environ["SOFTRES_DATA_CACHE"] = str(data_cache)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)


def _titles(book: Path, names: list[str]) -> dict[str, str]:
    titles = {}
    for name in names:
        path = book / f"{name}.md"
        if path.is_file():
            m = re.search(r"^#\s+(.+)$", path.read_text(encoding="utf-8"), flags=re.M)
            titles[name] = m.group(1).strip() if m else name
    return titles


def kernel_manager_class() -> type:
    """A Jupyter kernel manager whose kernel talks over local IPC sockets instead of TCP.

    ipykernel warns, once per kernel, that TCP traffic is unencrypted; a kernel on this machine needs
    no network. The socket path is absolute, as the kernel runs in the book's folder. Used by
    :func:`export` and by the book's build (:mod:`softres.sphinxext`).
    """
    import os
    import tempfile
    import uuid

    from jupyter_client import AsyncKernelManager
    from traitlets import CaselessStrEnum, default

    class IPCKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        @default("ip")
        def _absolute_socket_path(self) -> str:
            return os.path.join(tempfile.gettempdir(), f"softres-kernel-{uuid.uuid4().hex[:12]}")

    return IPCKernelManager


def export(chapter: str, out_dir: str | Path, *, book: str | Path | None = None, timeout: int = 900,
           data_cache: str | Path | None = None) -> Path:
    """Execute ``book/<chapter>.md`` and save it as ``out_dir/<chapter>.ipynb`` for a plain front end.

    The kernel runs in the book's folder (as in the book's build) and nothing is written there.
    ``data_cache`` is the figure-data cache (``SOFTRES_DATA_CACHE``; default: the environment's,
    else a temporary folder for this call).

    Raises
    ------
    ValueError
        If ``chapter`` is not a chapter of the book.
    nbclient.exceptions.CellExecutionError
        If a cell fails (as it fails the book's build).
    """
    import jupytext
    import nbclient
    import nbformat

    book = Path(book) if book is not None else book_dir()
    names = chapters(book)
    if chapter not in names:
        raise ValueError(f"chapter must be one of {', '.join(names)}; got {chapter!r}")
    out_dir = Path(out_dir)
    if out_dir.resolve() == book.resolve():
        raise ValueError("out_dir must not be the book's source folder (the .ipynb would clash with the .md)")
    nb = jupytext.read(book / f"{chapter}.md")
    with _environment(None if data_cache is None else str(data_cache)):
        nbclient.NotebookClient(nb, kernel_name="python3", timeout=timeout, kernel_manager_class=kernel_manager_class(),
                                resources={"metadata": {"path": str(book)}}).execute()
    ctx = _Context(glue_outputs(nb), _bib(book.parent / "references.bib"), _titles(book, names))
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            _collect_labels(cell.source, ctx.labels)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        ctx.attachments = {}
        cell.source = plain_markdown(cell.source, ctx)
        if ctx.attachments:
            cell["attachments"] = ctx.attachments
    for cell in nb.cells:  # Markdown outputs (tables) may hold roles too
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if "text/markdown" in out.get("data", {}):
                out["data"]["text/markdown"] = _roles(out["data"]["text/markdown"], ctx)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "(bibliography)" in cell.source:
            cell.source = cell.source.replace("(bibliography)", _bibliography(ctx.bib))
    _drop_hidden_glue(nb)
    nb.metadata.pop("jupytext", None)
    nb.metadata.pop("mystnb", None)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{chapter}.ipynb"
    nbformat.write(nb, path)
    return path

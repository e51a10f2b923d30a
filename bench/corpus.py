"""Build a large corpus of real documentation: the installed Python's module docs as Markdown notes.

    python -m bench.corpus --out /tmp/notes-large [--chunks 20000] [--seed corpus]

Each module becomes one note (`pydoc/<module>.md`): a `#` heading with the module's docstring, a `##`
section per class and function, a `###` section per method, with the same text `pydoc` shows. Modules
are added (standard library first, then installed packages) until the chunk count reaches `--chunks`;
the seed notes are copied beside them unchanged. Generated on demand, never committed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import io
import pkgutil
import pydoc
import shutil
import sys
import warnings
from pathlib import Path

from ingest.chunk import chunk_sections
from notes.parse import parse_note

DEFAULT_CHUNKS = 20_000
DEFAULT_PACKAGES = ("numpy", "scipy", "pandas", "sklearn", "sympy", "pydantic", "chromadb")
# Modules with side effects on import (a browser, a GUI, printing) or no documentation of their own.
SKIP = {"antigravity", "this", "idlelib", "turtledemo", "tkinter", "turtle", "test", "lib2to3", "ensurepip",
        "pydoc_data", "__main__", "__phello__", "__hello__", "xxlimited", "xxsubtype", "sre_compile",
        "sre_parse", "sre_constants", "msvcrt", "winreg", "winsound", "_winapi", "nt"}


def _doc_text(obj) -> str:
    """The docstring as Markdown-safe text: lines that would read as headings are indented as code."""
    doc = pydoc.getdoc(obj) or ""
    lines = []
    for line in doc.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("#", "<a ", "```", "~~~")) or (stripped and set(stripped) <= set("=-") and len(stripped) > 2):
            line = "    " + line
        lines.append(line.rstrip())
    return "\n".join(lines).strip()


def _signature(obj) -> str:
    with contextlib.suppress(TypeError, ValueError):
        return str(inspect.signature(obj))
    return "(...)"


def render_module(module) -> str:
    """One module's documentation as a Markdown note."""
    name = module.__name__
    out = [f"# Module {name}", "", _doc_text(module) or f"The {name} module.", ""]
    public = [(n, v) for n, v in sorted(vars(module).items()) if not n.startswith("_")
              and getattr(v, "__module__", None) == name]
    for attr, value in public:
        if inspect.isclass(value):
            out += [f"## Class {name}.{attr}", "", _doc_text(value) or f"The {attr} class.", ""]
            for meth_name, meth in sorted(vars(value).items()):
                if meth_name.startswith("_") and meth_name != "__init__":
                    continue
                if not callable(meth) and not isinstance(meth, (property, classmethod, staticmethod)):
                    continue
                doc = _doc_text(getattr(meth, "__func__", meth))
                if doc:
                    out += [f"### {attr}.{meth_name}{_signature(meth) if callable(meth) else ''}", "", doc, ""]
        elif inspect.isroutine(value):
            doc = _doc_text(value)
            if doc:
                out += [f"## Function {name}.{attr}{_signature(value)}", "", doc, ""]
    return "\n".join(out)


def iter_module_names(packages: tuple[str, ...]) -> list[str]:
    """Standard-library modules (and their submodules), then the given installed packages'."""
    names = []
    for top in sorted(sys.stdlib_module_names) + list(packages):
        if top.startswith("_") or top in SKIP:
            continue
        names.append(top)
        spec = importlib.util.find_spec(top) if _importable(top) else None
        if spec and spec.submodule_search_locations:
            for info in pkgutil.walk_packages(spec.submodule_search_locations, prefix=f"{top}."):
                parts = info.name.split(".")
                if any(p.startswith("_") or p in ("tests", "test", "testing", "conftest") for p in parts[1:]):
                    continue
                names.append(info.name)
    return names


def _importable(name: str) -> bool:
    with contextlib.suppress(Exception):
        return importlib.util.find_spec(name) is not None
    return False


def count_chunks(text: str, source: str) -> int:
    return len(chunk_sections(parse_note(text, source).content_sections))


def build_corpus(out: Path, *, chunks: int = DEFAULT_CHUNKS, seed: Path | None = None,
                 packages: tuple[str, ...] = DEFAULT_PACKAGES) -> tuple[int, int]:
    """Write notes to `out` until they hold `chunks` chunks; returns (files, chunks) written."""
    out.mkdir(parents=True, exist_ok=True)
    files = total = 0
    if seed is not None:
        for path in sorted(seed.rglob("*.md")):
            target = out / path.relative_to(seed)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            total += count_chunks(path.read_text(encoding="utf-8"), path.name)
            files += 1
    (out / "pydoc").mkdir(exist_ok=True)
    for name in iter_module_names(packages):
        if total >= chunks:
            break
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                module = importlib.import_module(name)
            text = render_module(module)
        except BaseException:  # noqa: BLE001 - a module that cannot be imported here is just left out
            continue
        source = f"pydoc/{name}.md"
        n = count_chunks(text, source)
        if n < 3:
            continue
        (out / source).write_text(text, encoding="utf-8")
        files += 1
        total += n
    return files, total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.corpus", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write (created)")
    parser.add_argument("--chunks", type=int, default=DEFAULT_CHUNKS, help="stop once this many chunks are written")
    parser.add_argument("--seed", type=Path, default=Path("corpus"), help="notes copied in first")
    args = parser.parse_args(argv)
    files, total = build_corpus(args.out, chunks=args.chunks, seed=args.seed)
    print(f"{files} notes, {total} chunks in {args.out}")


if __name__ == "__main__":
    main()

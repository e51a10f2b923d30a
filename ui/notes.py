"""A note as the Notes page shows it: sections with their anchors, a table of contents, a highlight.

A section's Markdown is shown as GitHub shows it: rendered to HTML, with a safe subset of HTML kept
(`ui/html.py`: markdown-it-py, then nh3; no scripts, no event handlers, no `javascript:`/`data:` links),
links to other notes turned into links to the Notes page, local pictures shown as their alt text.
Notes written for Hugo or Obsidian read as their authors see them: shortcode notes and `> [!type]`
callouts as titled quotes, `[[wikilinks]]` as links to the note and heading, comments and embeds left
out (`author_view`). Tables of contents (Markdown or a `<details>` fold of links) are left out: the
page draws its own.
"""

from __future__ import annotations

import posixpath
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ingest.index import NOTE_SUFFIXES, SkipFile, iter_note_files, note_encoding, read_note, read_note_bytes
from notes.model import NoteMeta, ParsedNote, Section
from notes.front_matter import read_front_matter
from notes.parse import parse_note
from notes.markdown import ADMONITION_NAMES, CALLOUT, EMBED, OBSIDIAN_COMMENT, SHORTCODE, in_fences
from notes.slug import slug
from ui.html import HIGHLIGHT_CLOSE as _HL_CLOSE, HIGHLIGHT_OPEN as _HL_OPEN, default_href, render_html
from ui.links import note_url
from ui.markdown import escape_markdown, inline_markdown

_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_LIST_PREFIX = re.compile(r"^((?:\s*>)*\s*(?:(?:[-*+]|\d+[.)])\s+)?)(.*?)(\s*)$")
_COMMENTS = re.compile(r"<!--.*?-->|" + OBSIDIAN_COMMENT.pattern, re.S)
_REF_DEFINITION = re.compile(r"""^( {0,3}\[[^\]\n]+\]:[ \t]*)<?([^\s>]+)>?((?:[ \t]+(?:"[^"\n]*"|'[^'\n]*'|\([^)\n]*\)))?[ \t]*)$""",
                             re.M)
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*)>")
# Lists and quotes nested deeper than this are shown at this depth: a browser freezes on 10,000 levels.
MAX_SHOWN_NESTING = 20
_CONTAINER_MARKERS = re.compile(r"(?:(?:[-*+]|\d{1,9}[.)]|>)(?:[ \t]+|$))+")
_WIKILINK = re.compile(r"\[\[([^\[\]|#\n]*)(?:#([^\[\]|\n]*))?(?:\|([^\[\]\n]*))?\]\]")


@dataclass(frozen=True)
class NoteBlock:
    """One piece of the page: a heading (with its anchor), a body (safe HTML) or a cited passage."""

    kind: str  # "heading" | "body" | "cited"
    text: str
    level: int = 0
    anchor: str = ""


def list_notes(notes_dir: Path) -> list[str]:
    """Every note under the folder, as the path the index and citations use (`sub/dir/note.md`); a FIFO,
    socket or device named like a note is not one."""
    if not notes_dir.is_dir():
        return []
    return [p.relative_to(notes_dir).as_posix() for p in iter_note_files(notes_dir, skip_unreadable=True)
            if p.is_file()]


@lru_cache(maxsize=4096)
def _front_matter(path: str, mtime_ns: int, size: int, source: str, notes_dir: str) -> NoteMeta:
    try:  # the same checks as ingest: a symlink out of the folder or a FIFO gives no title and no tags
        head = read_note_bytes(Path(path), Path(notes_dir), max_bytes=sys.maxsize, limit=65536)
    except (SkipFile, OSError):
        head = b""
    return read_front_matter(head.decode(note_encoding(head), errors="replace"), source)


def notes_meta(notes_dir: Path) -> dict[str, NoteMeta]:
    """Every note's front matter (title, tags, aliases), read again only when the file changed."""
    out = {}
    for source in list_notes(notes_dir):
        path = notes_dir / source
        try:
            info = path.stat()
        except OSError:
            continue
        out[source] = _front_matter(str(path), info.st_mtime_ns, info.st_size, source, str(notes_dir))
    return out


def note_label(source: str, meta: NoteMeta | None) -> str:
    """'Managing environments (managing-environments.md)', or just the path when it has no title."""
    stem = source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return f"{meta.title} ({source})" if meta and meta.title and meta.title != stem else source


def meta_line(meta: NoteMeta) -> str:
    """The front matter as one small line of Markdown: tags and aliases (the title is the page's)."""
    parts = []
    if meta.tags:
        parts.append("Tags: " + ", ".join(f"`{t}`" for t in meta.tags))
    if meta.aliases:
        parts.append("Also called: " + ", ".join(escape_markdown(a) for a in meta.aliases))
    return " · ".join(parts)


def load_note(notes_dir: Path, source: str, *, max_bytes: int = 5 * 1024 * 1024) -> ParsedNote:
    """Read and parse one note; `source` must be one `list_notes` returned (no path tricks)."""
    from qa.errors import NotesQAError

    if source not in list_notes(notes_dir):
        raise NotesQAError(f"There is no note {source!r} in {notes_dir}.")
    try:
        text = read_note(notes_dir / source, notes_dir, max_bytes=max_bytes)
    except Exception as exc:  # SkipFile or OSError: say why in one sentence
        raise NotesQAError(f"The note {source} cannot be shown: {exc}.") from exc
    return parse_note(text, source)


def shown_sections(note: ParsedNote) -> list[Section]:
    """The sections the page shows: everything but tables of contents (the page draws its own)."""
    return [s for s in note.sections if not s.is_navigation]


def toc_markdown(note: ParsedNote) -> str:
    """A nested list of in-page links, one per heading."""
    sections = [s for s in shown_sections(note) if s.anchor and s.level > 0]
    if not sections:
        return ""
    top = min(s.level for s in sections)
    return "\n".join(f"{'    ' * (s.level - top)}- [{inline_markdown(s.heading)}](#{_fragment(s.anchor)})"
                     for s in sections)


def _fragment(anchor: str) -> str:
    from urllib.parse import quote

    return quote(anchor, safe="")


def find_section(note: ParsedNote, anchor: str | None) -> Section | None:
    return next((s for s in shown_sections(note) if anchor and s.anchor == anchor), None)


def mark_quote(body: str, quote: str | None) -> tuple[str, bool]:
    """`body` with the quoted passage wrapped in highlight marks (per line, list markers left out)."""
    if not quote or not quote.strip():
        return body, False
    quote = quote.strip()
    start = body.find(quote)
    if start < 0 and len(quote) > 40:  # a quote cut short in the link: match its beginning
        start = body.find(quote[:-1])
    if start < 0:
        return body, False
    end = start + len(quote)
    marked = []
    lines = body[start:end].split("\n")
    for line, code in zip(lines, in_fences(lines)):
        if code:  # code is shown as it is: a highlight inside it would be printed as text
            marked.append(line)
            continue
        prefix, content, trail = _LIST_PREFIX.match(line).groups()
        marked.append(f"{prefix}{_HL_OPEN}{content}{_HL_CLOSE}{trail}" if content else line)
    return body[:start] + "\n".join(marked) + body[end:], True


def _wikilink_target(name: str, notes: set[str] | None) -> str | None:
    """The note a `[[name]]` means: the one whose path or file name (without extension) is `name`."""
    wanted = name.strip().lower()
    for note in sorted(notes or ()):
        stem = note.rsplit(".", 1)[0].lower()
        if wanted in (stem, stem.rsplit("/", 1)[-1], note.lower()):
            return note
    return None


def _outside_fences(text: str, rewrite) -> str:
    """Apply `rewrite` to the runs of lines outside fenced code blocks."""
    pieces, prose_lines = [], []
    lines = text.split("\n")
    for line, code in zip(lines, in_fences(lines)):
        if code:
            if prose_lines:
                pieces.append(rewrite("\n".join(prose_lines)))
                prose_lines = []
            pieces.append(line)
        else:
            prose_lines.append(line)
    if prose_lines:
        pieces.append(rewrite("\n".join(prose_lines)))
    return "\n".join(pieces)


def author_view(text: str, source: str = "", *, notes: set[str] | None = None) -> str:
    """Hugo/Obsidian markup as its author sees it (outside code): shortcode notes and callouts as titled
    quotes, wikilinks as links, other shortcodes, comments and embeds left out."""
    def wikilink(m: re.Match) -> str:
        name, heading, alias = (m.group(1) or "").strip(), (m.group(2) or "").strip(), (m.group(3) or "").strip()
        shown = alias or (f"{name} > {heading}" if name and heading else heading or name)
        target = _wikilink_target(name, notes) if name else source
        return f"[{shown}]({note_url(target, slug(heading) if heading else None)})" if target else shown

    out, open_notes = [], []
    lines = _outside_fences(text, lambda chunk: _COMMENTS.sub("", chunk)).split("\n")
    for line, code in zip(lines, in_fences(lines)):
        if not code:
            tags = list(SHORTCODE.finditer(line))
            if tags and not SHORTCODE.sub("", line).strip():  # a line of shortcode tags only
                for tag in tags:
                    closing, name = tag.group(1) or tag.group(3), (tag.group(2) or tag.group(4)).lower()
                    if name in ADMONITION_NAMES and not closing:
                        open_notes.append(name)
                        out += ["> " * len(open_notes) + f"**{name.capitalize()}**", "> " * len(open_notes)]
                    elif name in ADMONITION_NAMES and name in open_notes:
                        del open_notes[open_notes.index(name):]
                        out.append("")
                continue
            callout = CALLOUT.match(line)
            if callout:
                line = f"{callout.group(1)} **{callout.group(4) or callout.group(2).capitalize()}**\n{callout.group(1)}"
            line = _WIKILINK.sub(wikilink, SHORTCODE.sub("", EMBED.sub("", line)))
        out.append("> " * len(open_notes) + line)
    return "\n".join(out)


def _safe_href(href: str, source: str, notes: set[str] | None) -> str | None:
    """Where a link may point on this page: web, mail or in-page, or another note's deep link; None for
    javascript:, data:, relative files the app cannot serve."""
    path, _, fragment = href.partition("#")
    if path and path.lower().endswith(NOTE_SUFFIXES) and not re.match(r"^[a-z]+:", path, re.I):
        target = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
        if notes is None or target in notes:
            return note_url(target, fragment or None)
    return default_href(href)


def _rewrite_link_forms(text: str, source: str, notes: set[str] | None) -> str:
    """Reference definitions (`[r]: url`) and autolinks (`<scheme:…>`) held to the same rule as inline links:
    an unsafe target loses its definition (the reference shows as text) or its brackets (plain text)."""
    def definition(m: re.Match) -> str:
        safe = _safe_href(m.group(2), source, notes)
        return "" if safe is None else f"{m.group(1)}{safe}{m.group(3) if safe == m.group(2) else ''}"

    def autolink(m: re.Match) -> str:
        safe = _safe_href(m.group(1), source, notes)
        if safe is None:
            return m.group(1).replace(":", "\\:", 1)
        return m.group(0) if safe == m.group(1) else f"[{m.group(1)}]({safe})"

    return _AUTOLINK.sub(autolink, _REF_DEFINITION.sub(definition, text))


def _outside_code(markdown: str, rewrite) -> str:
    """Apply `rewrite` to the Markdown outside fenced code blocks and inline code spans."""
    def prose(text: str) -> str:
        pieces, last = [], 0
        for m in _CODE_SPAN.finditer(text):
            pieces += [rewrite(text[last:m.start()]), m.group(0)]
            last = m.end()
        pieces.append(rewrite(text[last:]))
        return "".join(pieces)

    return _outside_fences(markdown, prose)


def cap_nesting(text: str, *, depth: int = MAX_SHOWN_NESTING) -> str:
    """Markdown whose lists and quotes nest at most `depth` levels: deeper lines keep their words but move
    up (less indentation, fewer leading `-`/`>` markers)."""
    def cap(line: str) -> str:
        body = line.lstrip(" \t")
        indent = len(line[:len(line) - len(body)].expandtabs(4))
        markers = _CONTAINER_MARKERS.match(body)
        if markers and markers.group(0).count(" ") + markers.group(0).count(">") > depth:
            kept = re.findall(r"(?:[-*+]|\d{1,9}[.)]|>)(?:[ \t]+|$)", markers.group(0))[:depth]
            body = "".join(kept) + body[markers.end():]
        return " " * min(indent, 2 * depth) + body

    return "\n".join(map(cap, text.split("\n")))


def display_markdown(body: str, source: str = "", *, notes: set[str] | None = None,
                     quote: str | None = None) -> tuple[str, bool]:
    """A section body as the Markdown its author meant (`author_view`, nesting capped, unsafe reference
    links and autolinks unlinked), the quoted passage between highlight marks; and whether it was found."""
    body, found = mark_quote(body, quote)
    body = author_view(_outside_fences(body, cap_nesting), source, notes=notes)
    shown = _outside_code(body, lambda text: _rewrite_link_forms(text, source, notes))
    return (shown if found else shown.replace(_HL_OPEN, "").replace(_HL_CLOSE, "")), found


def display_html(body: str, source: str = "", *, notes: set[str] | None = None,
                 quote: str | None = None) -> tuple[str, bool]:
    """A section body as safe HTML for `st.markdown(..., unsafe_allow_html=True)` (`ui.html.render_html`),
    links to notes as links to the Notes page, the quoted passage highlighted; and whether it was found."""
    shown, found = display_markdown(body, source, notes=notes, quote=quote)
    return render_html(shown, href=lambda href: _safe_href(href, source, notes)), found


def _shows_something(html: str) -> bool:
    """Whether rendered HTML has words or a picture (a lone `<div align="center">` of a README has not)."""
    return "<img" in html or bool(re.sub(r"<[^>]*>|&#10;", "", html).strip())


def note_blocks(note: ParsedNote, *, anchor: str | None = None, quote: str | None = None,
                notes: set[str] | None = None) -> list[NoteBlock]:
    """The page, top to bottom: each section's heading and body; the cited passage highlighted.

    When the quote cannot be found in the cited section (the note changed since it was indexed),
    a "cited" block right under that heading shows the quote instead.
    """
    blocks: list[NoteBlock] = []
    for section in shown_sections(note):
        cited = quote if anchor and section.anchor == anchor else None
        if section.level > 0:
            blocks.append(NoteBlock("heading", section.heading, section.level, section.anchor))
        body, found = display_html(section.text, note.source, notes=notes, quote=cited)
        if cited and not found:
            blocks.append(NoteBlock("cited", cited, section.level, section.anchor))
        if _shows_something(body):
            blocks.append(NoteBlock("body", body, section.level, section.anchor))
    return blocks

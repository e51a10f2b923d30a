"""Markdown as people write it → markdown-it tokens that keep their line numbers.

markdown-it-py (CommonMark) with GFM tables and strikethrough, and mdit-py-plugins for front matter,
footnotes, definition lists, task lists and `!!!` admonitions. Hand-written here only what no plugin
does, each noted where it is:

- Hugo/Jinja shortcodes (`{{% note %}}`, `{{< tab >}}`, `{% raw %}`), Obsidian `%% comments %%`,
  `![[embeds]]` and TOML (`+++`) front matter are blanked before parsing, character for character,
  so every token's line numbers and every quote's offsets stay those of the file as written;
- Obsidian `> [!type] Title` callouts (markdown-it's own alerts accept GitHub's five types, no title):
  the marker line is blanked and remembered, so the blockquote below it is read as the callout's body;
- Obsidian `[[Note#Heading|alias]]` wikilinks become `wikilink` tokens (an inline rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from mdit_py_plugins.admon import admon_plugin
from mdit_py_plugins.deflist import deflist_plugin
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.front_matter import front_matter_plugin
from mdit_py_plugins.tasklists import tasklists_plugin

# Groups: closing `/` and name, for `{{< >}}`/`{{% %}}` (1, 2) and `{% %}` (3, 4).
SHORTCODE = re.compile(r"\{\{[<%]-?\s*(/?)\s*([\w.-]*).*?-?[%>]\}\}|\{%-?\s*(/?)\s*([\w.-]*).*?-?%\}", re.S)
# `%% comment %%`: the markers stand apart from the words (so `%%gremlin, %%sparql` cell magics stay text).
OBSIDIAN_COMMENT = re.compile(r"(?<![\w%])%%(?=\s).*?(?<=\s)%%(?![\w%])", re.S)
EMBED = re.compile(r"!\[\[[^\]\n]*\]\]")
CALLOUT = re.compile(r"^((?:[ \t]*>)+)[ \t]*\[!([\w-]+)\]([+-]?)[ \t]*(.*?)[ \t]*$")
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
_TOML_FRONT_MATTER = re.compile(r"\A\+\+\+[ \t]*\n(.*?)\n\+\+\+[ \t]*(?:\n|\Z)", re.S)
# Shortcodes whose body is a note to the reader: shown as an admonition on the Notes page.
ADMONITION_NAMES = frozenset("""note notice hint tip info important warning caution danger alert callout admonition
    attention example quote success question failure bug abstract summary todo""".split())


@dataclass(frozen=True)
class Callout:
    """A `> [!type] Title` callout: its marker line (0-based) and what it says it is."""

    line: int
    kind: str
    title: str


@dataclass
class Prepared:
    """A note's text with the markup blanked, and what the blanked markup said."""

    text: str
    callouts: dict[int, Callout] = field(default_factory=dict)  # marker line → callout
    toml_front_matter: str | None = None


def _blank(text: str) -> str:
    """The same number of characters, all spaces but the line breaks."""
    return re.sub(r"[^\n]", " ", text)


def in_fences(lines: list[str]) -> list[bool]:
    """For each line, whether it belongs to a fenced code block (its fences included): code is shown as
    written, never read as markup."""
    flags, fence = [], None
    for line in lines:
        match = _FENCE.match(line)
        if fence:
            flags.append(True)
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                    and not line.strip()[len(match.group(1)):].strip():
                fence = None
        else:
            flags.append(bool(match))
            fence = match.group(1) if match else None
    return flags


def prepare(text: str) -> Prepared:
    """Blank what is markup rather than content, keeping every other character where it was."""
    prepared = Prepared(text)
    toml = _TOML_FRONT_MATTER.match(text)
    if toml:
        prepared.toml_front_matter = toml.group(1)
        text = _blank(toml.group(0)) + text[toml.end():]
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    code = {i for i, fenced in enumerate(in_fences(lines)) if fenced}

    def line_of(offset: int) -> int:
        lo, hi = 0, len(starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo

    chars = list(text)
    for pattern in (SHORTCODE, OBSIDIAN_COMMENT, EMBED):
        for match in pattern.finditer(text):
            first = line_of(match.start())
            if first in code or text.count("`", starts[first], match.start()) % 2:
                continue  # shown as code: a fenced block, or an inline code span on its line
            chars[match.start():match.end()] = _blank(match.group(0))
    for i, line in enumerate(lines):
        if i in code:
            continue
        callout = CALLOUT.match(line)
        if callout:
            prefix = callout.group(1)
            prepared.callouts[i] = Callout(i, callout.group(2).lower(), callout.group(4))
            chars[starts[i] + len(prefix):starts[i] + len(line)] = " " * (len(line) - len(prefix))
    prepared.text = "".join(chars)
    return prepared


def _wikilink(state: StateInline, silent: bool) -> bool:
    """`[[Note]]`, `[[Note#Heading]]`, `[[Note|alias]]` → a `wikilink` token (Obsidian)."""
    src, pos = state.src, state.pos
    if not src.startswith("[[", pos):
        return False
    end = src.find("]]", pos + 2)
    inner = src[pos + 2:end] if end > 0 else ""
    if not inner.strip() or "\n" in inner or "[" in inner:
        return False
    if not silent:
        target, _, alias = inner.partition("|")
        note, _, heading = target.partition("#")
        token = state.push("wikilink", "", 0)
        token.markup = src[pos:end + 2]
        token.meta = {"note": note.strip(), "heading": heading.strip(), "alias": alias.strip()}
        token.content = alias.strip() or (f"{note.strip()} > {heading.strip()}" if note.strip() and heading.strip()
                                           else heading.strip() or note.strip())
    state.pos = end + 2
    return True


@lru_cache(maxsize=1)
def parser() -> MarkdownIt:
    """The one Markdown parser every part of the project uses (the same tokens for ingest, answers, UI)."""
    md = (MarkdownIt("commonmark", {"html": True})
          .enable(["table", "strikethrough"])
          .use(front_matter_plugin).use(footnote_plugin).use(deflist_plugin).use(tasklists_plugin)
          .use(admon_plugin))
    md.inline.ruler.before("link", "wikilink", _wikilink)
    return md


def parse_tokens(text: str) -> tuple[list[Token], Prepared]:
    """Tokens of a note (or of one section's Markdown), and what preparing it blanked."""
    prepared = prepare(text)
    return parser().parse(prepared.text), prepared

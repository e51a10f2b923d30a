"""Markdown helpers: show any text (questions, answers, headings) literally in `st.markdown`."""

from __future__ import annotations

import re

# Everything CommonMark or Streamlit's extensions give a meaning to: emphasis, links, HTML, headings,
# lists, tables, strikethrough, LaTeX ($), directives and emoji shortcodes (:), typographic arrows (-, =).
_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-=!|~$:^.&])")


def escape_markdown(text: str) -> str:
    """`text` as Markdown that renders as exactly that text (HTML tags shown, never interpreted).

    Example: `escape_markdown("<b>$5</b>")` is `\\<b\\>\\$5\\</b\\>`, which shows `<b>$5</b>`.
    """
    return _SPECIAL.sub(r"\\\1", text).replace("\n", "  \n")


_CODE_SPAN = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)


def inline_markdown(text: str) -> str:
    """Text from the notes (answers, quotes, headings) as Markdown: inline code shown as code, the rest
    exactly as written (as `escape_markdown`). Code spans are safe: Markdown renders their content literally.

    Example: `inline_markdown("Run `poetry env use` <b>now</b>")` is
    `Run \`poetry env use\` \\<b\\>now\\</b\\>`.
    """
    pieces, last = [], 0
    for match in _CODE_SPAN.finditer(text):
        pieces += [escape_markdown(text[last:match.start()]), match.group(0).replace("\n", " ")]
        last = match.end()
    pieces.append(escape_markdown(text[last:]))
    return "".join(pieces)


def escape_html(text: str) -> str:
    """Markdown text with its HTML made inert (`<` escaped outside code spans), the rest as written: for
    files that leave the app, where no renderer can be trusted to show HTML as text.

    Example: `escape_html("<b>x</b> `<i>`")` is `\\<b>x\\</b> `<i>``.
    """
    pieces, last = [], 0
    for match in _CODE_SPAN.finditer(text):
        pieces += [text[last:match.start()].replace("<", "\\<"), match.group(0)]
        last = match.end()
    pieces.append(text[last:].replace("<", "\\<"))
    return "".join(pieces)


def blockquote(markdown: str) -> str:
    """Markdown quoted with `> ` on every line."""
    return "\n".join(f"> {line}" if line.strip() else ">" for line in markdown.splitlines())

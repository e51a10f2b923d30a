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


def blockquote(markdown: str) -> str:
    """Markdown quoted with `> ` on every line."""
    return "\n".join(f"> {line}" if line.strip() else ">" for line in markdown.splitlines())

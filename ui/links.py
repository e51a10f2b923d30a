"""Deep links into the Notes page: `notes?note=aws-notes.md&anchor=15&quote=…#15`.

The Notes page reads the same three query parameters, so a link works from the chat, from a
downloaded conversation pasted into a browser, or typed by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

NOTES_URL_PATH = "notes"
NOTE_PARAM, ANCHOR_PARAM, QUOTE_PARAM = "note", "anchor", "quote"
MAX_QUOTE_CHARS = 600  # keeps URLs short; the Notes page highlights by prefix when a quote was cut


@dataclass(frozen=True)
class DeepLink:
    """Which note to open, at which section, with which passage highlighted (all optional)."""

    note: str | None = None
    anchor: str | None = None
    quote: str | None = None


def link_params(source: str, anchor: str | None = None, quote_text: str | None = None) -> dict[str, str]:
    """The query parameters of a deep link (for `st.page_link(..., query_params=...)`)."""
    params = {NOTE_PARAM: source}
    if anchor:
        params[ANCHOR_PARAM] = anchor
    if quote_text and quote_text.strip():
        params[QUOTE_PARAM] = quote_text.strip()[:MAX_QUOTE_CHARS]
    return params


def note_url(source: str, anchor: str | None = None, quote_text: str | None = None, *,
             page: str = NOTES_URL_PATH) -> str:
    """A relative URL of the Notes page opened at `source#anchor`, safe inside a Markdown link.

    >>> note_url("aws-notes.md", "15")
    'notes?note=aws-notes.md&anchor=15#15'
    """
    url = f"{page}?{urlencode(link_params(source, anchor, quote_text), quote_via=quote)}"
    if anchor:
        url += "#" + quote(anchor, safe="")
    return url


def _first(value) -> str | None:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    value = None if value is None else str(value)
    return value or None


def read_deep_link(params: Mapping) -> DeepLink:
    """The deep link named by query parameters (`st.query_params` or a plain dict)."""
    return DeepLink(_first(params.get(NOTE_PARAM)), _first(params.get(ANCHOR_PARAM)), _first(params.get(QUOTE_PARAM)))

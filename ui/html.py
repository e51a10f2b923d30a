"""Markdown from the notes as safe HTML, shown by `st.markdown(..., unsafe_allow_html=True)`.

Notes copied from GitHub use HTML (`<div align="center">`, `<details>` folds, `<kbd>`, `<p><img></p>`):
they are rendered here the way GitHub does it, Markdown → HTML by markdown-it-py (the project's parser,
typographic replacement off) → a safe subset kept by nh3 (the maintained Rust sanitiser: no scripts,
no event handlers, no `javascript:`/`data:` URLs). The result goes to Streamlit as one raw HTML block,
so Streamlit's own Markdown pass never reads the text: its typographic replacements (`--` → "—",
`->` → "→") cannot touch a command's flags, and no Markdown in the text is read twice.

Images are kept as their alt text, except pictures on the web (https), which the browser can show.
"""

from __future__ import annotations

import html
import posixpath
import re
from collections.abc import Callable
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from mdit_py_plugins.admon import admon_plugin
from mdit_py_plugins.deflist import deflist_plugin
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.tasklists import tasklists_plugin

DEFAULT_TAGS = frozenset("""a abbr b blockquote br caption center code dd del details div dl dt em h1 h2 h3 h4 h5 h6
    hr i img input ins kbd li mark ol p pre q s samp section small span strike strong sub summary sup table tbody
    td tfoot th thead tr tt u ul var""".split())
DEFAULT_ATTRIBUTES = {
    "a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"}, "div": {"align"},
    "p": {"align"}, "td": {"align", "colspan", "rowspan"}, "th": {"align", "colspan", "rowspan"},
    "ol": {"start", "type"}, "details": {"open"}, "code": {"class"}, "abbr": {"title"},
    "input": {"type", "checked", "disabled"},  # task list checkboxes, drawn disabled
}
DEFAULT_URL_SCHEMES = frozenset({"http", "https", "mailto"})
# How the quoted passage is marked (private-use characters put in by the caller, see ui/notes.py).
HIGHLIGHT_OPEN, HIGHLIGHT_CLOSE = "\ue000", "\ue001"
HIGHLIGHT_STYLE = "background-color: rgba(255, 164, 33, 0.28); color: inherit; padding: 0 0.1em"
_SAFE_HREF = re.compile(r"^(https?://|mailto:|#|notes\?)", re.I)  # notes?…: a deep link into this app
_WEB_IMAGE = re.compile(r"^https://", re.I)
_HTML_IMG = re.compile(r"<img\b[^>]*>", re.I)
_ATTR = r"""\b{name}\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))"""


def image_text(alt: str, src: str) -> str:
    """What stands for a picture the page does not load: '[image: Kubernetes logo]'."""
    return f"[image: {alt.strip() or posixpath.basename(src) or 'image'}]"


def _image_rule(self, tokens, idx, options, env) -> str:
    """markdown-it's `image` renderer: a web picture as itself, any other as its alt text."""
    token = tokens[idx]
    src, alt = token.attrGet("src") or "", self.renderInlineAsText(token.children or [], options, env)
    if _WEB_IMAGE.match(src):
        return self.image(tokens, idx, options, env)
    return f"<em>{html.escape(image_text(alt, src))}</em>"


def _attr(tag: str, name: str) -> str:
    found = re.search(_ATTR.format(name=name), tag, re.I)
    return html.unescape(next((g for g in found.groups() if g is not None), "")) if found else ""


def _html_image(match: re.Match) -> str:
    """A raw `<img>`: kept when it is on the web (nh3 still cleans it), else its alt text."""
    tag = match.group(0)
    src = _attr(tag, "src")
    return tag if _WEB_IMAGE.match(src) else f"<em>{html.escape(image_text(_attr(tag, 'alt'), src))}</em>"


@lru_cache(maxsize=1)
def renderer() -> MarkdownIt:
    """The notes' Markdown dialect (as notes.markdown.parser) for rendering a section's body; no front
    matter plugin (a section body that starts with `---` is a rule, not metadata), typographer off."""
    md = (MarkdownIt("commonmark", {"html": True, "typographer": False})
          .enable(["table", "strikethrough"])
          .use(footnote_plugin).use(deflist_plugin).use(tasklists_plugin).use(admon_plugin))
    md.add_render_rule("image", _image_rule)
    # Every link is parsed as a link, `javascript:` ones too: nh3 then drops the unsafe targets (the words
    # stay), where markdown-it's own check would leave `[words](javascript:…)` on the page as text.
    md.validateLink = lambda url: True
    return md


def default_href(href: str) -> str | None:
    """Where a link may point when the caller has no rule of its own: the web, mail, this page, this app."""
    return href if _SAFE_HREF.match(href.strip()) else None


def sanitize_html(text: str, *, href: Callable[[str], str | None] = default_href,
                  tags: frozenset[str] = DEFAULT_TAGS) -> str:
    """`text` with only the safe subset of HTML left (nh3); every link's target goes through `href`
    (None drops it: the words stay, the link goes)."""
    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "a" and attribute == "href":
            return href(value)
        if tag == "img" and attribute == "src":
            return value if _WEB_IMAGE.match(value) else None
        if tag == "input" and attribute == "type":
            return value if value == "checkbox" else None
        return value

    return nh3.clean(text, tags=set(tags), attributes={k: set(v) for k, v in DEFAULT_ATTRIBUTES.items()},
                     attribute_filter=keep, url_schemes=set(DEFAULT_URL_SCHEMES),
                     set_tag_attribute_values={"mark": {"style": HIGHLIGHT_STYLE}, "input": {"disabled": ""}})


def html_block(text: str) -> str:
    """Sanitised HTML as one raw HTML block of Markdown: one `<div>` on one line (a newline in the text is
    a character reference), so Streamlit's Markdown parser takes it whole and reads nothing inside."""
    return "<div>" + text.strip().replace("\r", "").replace("\n", "&#10;") + "</div>"


def render_html(markdown: str, *, href: Callable[[str], str | None] = default_href, inline: bool = False) -> str:
    """Markdown → safe HTML → one raw HTML block for `st.markdown(..., unsafe_allow_html=True)`.

    `inline`: one paragraph's worth (an answer, a caption) without the paragraph around it.

    Example: `render_html("Run `kubectl exec web -- sh` -- <b>now</b><script>x()</script>")` is
    `<div><p>Run <code>kubectl exec web -- sh</code> -- <b>now</b></p></div>`.
    """
    md = renderer()
    rendered = md.renderInline(markdown) if inline else md.render(markdown)
    rendered = _HTML_IMG.sub(_html_image, rendered)
    rendered = rendered.replace(HIGHLIGHT_OPEN, "<mark>").replace(HIGHLIGHT_CLOSE, "</mark>")
    return html_block(sanitize_html(rendered, href=href))

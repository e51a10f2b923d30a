"""Notes: read a note with its table of contents; deep links open it at a section, the quote highlighted.

`?note=aws-notes.md&anchor=15&quote=…` opens aws-notes.md scrolled to the heading whose id is `15`.
Note text is shown through heading elements and `st.markdown` of HTML sanitised by nh3 (ui/html.py).
"""

from pathlib import Path

import streamlit as st

from qa.errors import NotesQAError
from ui import state
from ui.links import NOTE_PARAM, read_deep_link
from ui.markdown import blockquote, escape_markdown, inline_markdown
from ui.notes import find_section, list_notes, load_note, meta_line, note_blocks, note_label, notes_meta, toc_markdown

PICKER_KEY = "note_picker"
# Scrolls to the heading named by the `anchor` query parameter once it is on the page. The script is
# a constant: it reads the anchor from the URL itself, so no note or user text ever reaches it.
SCROLL_TO_ANCHOR = """<script>
(function () {
  var anchor = new URLSearchParams(window.location.search).get("anchor");
  if (!anchor) return;
  var tries = 0;
  (function go() {
    var el = document.getElementById(anchor);
    if (el) {
      el.scrollIntoView({block: "start"});
      for (var box = el.parentElement; box; box = box.parentElement) {  // leave room above the heading
        if (box.scrollHeight > box.clientHeight && /(auto|scroll)/.test(getComputedStyle(box).overflowY)) {
          box.scrollTop = Math.max(0, box.scrollTop - 48);
          break;
        }
      }
      return;
    }
    if (++tries < 100) setTimeout(go, 100);
  })();
})();
</script>"""


def picked() -> None:
    st.query_params.clear()
    st.query_params[NOTE_PARAM] = st.session_state[PICKER_KEY]


def heading(text: str, level: int, anchor: str) -> None:
    """The note's heading levels as h1/h2/h3 (deeper ones as h3), with the section's anchor as id; inline
    code in a heading shown as code."""
    body = inline_markdown(text)
    if level <= 1:
        st.title(body, anchor=anchor)
    elif level == 2:
        st.header(body, anchor=anchor)
    else:
        st.subheader(body, anchor=anchor)


def show_blocks(blocks) -> None:
    for block in blocks:
        if block.kind == "heading":
            heading(block.text, block.level, block.anchor)
        elif block.kind == "cited":
            st.info(f"**Cited passage** (the note changed since it was indexed):\n\n"
                    f"{blockquote(escape_markdown(block.text))}", icon=":material/format_quote:")
        else:
            st.markdown(block.text, unsafe_allow_html=True)  # sanitised by nh3 in ui/html.py


settings = state.settings()
if settings is None:
    st.stop()
notes_dir = Path(settings.notes_dir)
notes = list_notes(notes_dir)
if not notes:
    st.title("Notes")
    st.info(f"No notes found in {escape_markdown(str(notes_dir))}: add Markdown files there (or set NOTES_DIR), "
            "then re-index from the sidebar.", icon=":material/info:")
    st.stop()

link = read_deep_link(st.query_params)
current = link.note if link.note in notes else notes[0]
if st.session_state.get(PICKER_KEY) != current:
    st.session_state[PICKER_KEY] = current

metas = notes_meta(notes_dir)
pick, where = st.columns([2, 3], vertical_alignment="bottom")
pick.selectbox("Note", notes, key=PICKER_KEY, on_change=picked, format_func=lambda n: note_label(n, metas.get(n)))
where.caption(f":material/folder: {escape_markdown(str(notes_dir))} · {len(notes)} note{'s' * (len(notes) != 1)}")
if link.note and link.note != current:
    st.warning(f"There is no note {escape_markdown(link.note)} in {escape_markdown(str(notes_dir))}; "
               f"showing {escape_markdown(current)}.", icon=":material/warning:")

try:
    note = load_note(notes_dir, current, max_bytes=settings.max_file_bytes)
except NotesQAError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()

details = meta_line(note.meta)
if note.meta.title != current.rsplit("/", 1)[-1].rsplit(".", 1)[0] or details:
    st.caption(f":material/description: **{escape_markdown(note.title)}**" + (f" · {details}" if details else ""))

anchor = link.anchor if link.note == current else None
target = find_section(note, anchor)
if anchor and target is None:
    st.warning(f"The note {escape_markdown(current)} has no section #{escape_markdown(anchor)} any more; "
               "it may have changed since it was indexed (re-index from the sidebar).", icon=":material/warning:")
if target is not None:
    st.caption(f":material/my_location: Opened at **{escape_markdown(target.breadcrumb)}**"
               + (" — the cited passage is highlighted." if link.quote else "."))

toc = toc_markdown(note)
if toc:
    with st.expander("Contents", icon=":material/toc:", expanded=target is None):
        st.markdown(toc)

blocks = note_blocks(note, anchor=target.anchor if target else None, quote=link.quote, notes=set(notes))
for section_anchor in dict.fromkeys(b.anchor for b in blocks):
    group = [b for b in blocks if b.anchor == section_anchor]
    if target is not None and section_anchor == target.anchor:
        with st.container(border=True):
            show_blocks(group)
    else:
        show_blocks(group)

if target is not None:
    st.html(SCROLL_TO_ANCHOR, unsafe_allow_javascript=True)

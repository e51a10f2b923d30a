"""The sidebar every page shares: the index, re-indexing, the search scope and the answer mode."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import streamlit as st

from qa.errors import NotesQAError
from qa.settings import Settings
from ui import reindex, state
from ui.notes import load_note, note_label, notes_meta, shown_sections

ANSWER_MODES = ("Notes only (extractive)", "LLM")
MODE_KEY, GENERAL_KEY, OLLAMA_MODEL_KEY = "answer_mode", "allow_general", "ollama_model"
OLLAMA_CHECK_S = 30.0
REINDEX_REPORT_KEY = "reindex_report"


def ago(ts: float | None, now: float | None = None) -> str:
    """'2025-11-27 06:40 (5 min ago)'."""
    if not ts:
        return "never"
    seconds = max(0.0, (now or time.time()) - ts)
    if seconds < 60:
        rel = "just now"
    elif seconds < 3600:
        rel = f"{seconds // 60:.0f} min ago"
    elif seconds < 86400:
        rel = f"{seconds // 3600:.0f} h ago"
    else:
        rel = f"{seconds // 86400:.0f} days ago"
    return f"{datetime.fromtimestamp(ts):%Y-%m-%d %H:%M} ({rel})"


def _rebuild_button(settings: Settings, qa) -> None:
    """Same as `python -m ingest --rebuild`: the notes are the source, so a broken index is rebuilt from them."""
    if st.button("Rebuild the index", icon=":material/build:", width="stretch"):
        run_ingest(settings, qa, rebuild=True)


def run_ingest(settings: Settings, qa, *, rebuild: bool) -> None:
    """Ingest from the sidebar; the outcome is kept in the session and shown after the rerun."""
    try:
        report = state.build_index(settings, qa.model, rebuild=rebuild, container=st)
    except NotesQAError as exc:
        st.session_state[REINDEX_REPORT_KEY] = {"error": str(exc)}
    except Exception as exc:
        st.session_state[REINDEX_REPORT_KEY] = {"error": state.unexpected(exc, "Re-indexing")}
    else:
        st.session_state[REINDEX_REPORT_KEY] = {"summary": report.summary, "notes": report.skipped + report.warnings}
    st.rerun()  # show the new counts


def _index_panel(settings: Settings, qa) -> None:
    st.markdown("#### :material/database: Index")
    location = settings.index_location
    if not settings.uses_server:
        location = f"local folder `{Path(settings.chroma_dir)}`"
    lines = [f"**Where:** {location}", f"**Notes:** `{Path(settings.notes_dir)}`"]
    if qa is None:
        lines.append(f"**Model:** `{settings.embed_model}`")
        st.caption("  \n".join(lines))
        if state.building() is not None:
            st.info("Building the index for the first time (see the page); you can ask already.",
                    icon=":material/build:")
        else:
            st.warning("The index is not available; see the message on the page.", icon=":material/warning:")
        return
    st.session_state.pop(state.INDEX_STATE_KEY, None)
    running = reindex.running_ingest(state.settings_key(settings))
    if running is not None:  # started by a run the user interrupted (or by another session): wait for it here
        run_ingest(settings, qa, rebuild=running.rebuild)
    try:
        index_state = qa.index_state()
    except NotesQAError as exc:  # deleted, damaged, or a server that went away after loading
        st.caption("  \n".join(lines))
        st.error(str(exc))
        if not settings.uses_server and "--rebuild" in str(exc):
            _rebuild_button(settings, qa)
        return
    except Exception as exc:
        st.caption("  \n".join(lines))
        st.error(state.unexpected(exc, "Reading the index state"))
        return
    st.session_state[state.INDEX_STATE_KEY] = index_state
    lines.append(f"**Model:** `{qa.model.name}` ({qa.model.dimension} dimensions)")
    st.caption("  \n".join(lines))
    cols = st.columns(3)
    cols[0].metric("Notes", index_state.files)
    cols[1].metric("Sections", index_state.sections)
    cols[2].metric("Chunks", index_state.chunks)
    st.caption(f"Last change indexed: {ago(index_state.ingested_at)} · generation {index_state.generation}")
    if state.other_notes_folder(settings):
        st.warning(f"These counts are of `{index_state.notes_dir}`, not of the notes folder: re-index to build the "
                   "index from it.", icon=":material/folder_off:")

    if st.button("Re-index notes", icon=":material/refresh:", width="stretch",
                 help="Embed new and changed notes, retire deleted ones (only what changed is embedded)."):
        run_ingest(settings, qa, rebuild=False)
    report = st.session_state.get(REINDEX_REPORT_KEY)
    if report and report.get("error"):
        st.error(report["error"])
    elif report:
        st.success(f"Re-indexed: {report['summary']}", icon=":material/check:")
        if report["notes"]:
            with st.expander(f"{len(report['notes'])} warnings"):
                st.text("\n".join(report["notes"]))


def _scope_panel(settings: Settings) -> None:
    st.markdown("#### :material/filter_alt: Search in")
    metas = notes_meta(Path(settings.notes_dir))
    notes = list(metas)
    tags = sorted({t for m in metas.values() for t in m.tags}, key=str.lower)
    if tags:
        kept = [t for t in st.session_state.get(state.SCOPE_TAGS_KEY) or [] if t in tags]
        if kept != (st.session_state.get(state.SCOPE_TAGS_KEY) or []):
            st.session_state[state.SCOPE_TAGS_KEY] = kept
        st.multiselect("Tags", tags, key=state.SCOPE_TAGS_KEY, placeholder="Any tag",
                       help="Only notes whose front matter has one of these tags are searched.")
        chosen = set(st.session_state.get(state.SCOPE_TAGS_KEY) or [])
        if chosen:
            notes = [n for n in notes if chosen & set(metas[n].tags)]
    else:
        st.session_state.pop(state.SCOPE_TAGS_KEY, None)
    options = [state.ALL_NOTES, *notes]
    if st.session_state.get(state.SCOPE_NOTE_KEY) not in options:
        st.session_state[state.SCOPE_NOTE_KEY] = state.ALL_NOTES
    note = st.selectbox("Note", options, key=state.SCOPE_NOTE_KEY, label_visibility="collapsed",
                        format_func=lambda n: n if n == state.ALL_NOTES else note_label(n, metas.get(n)))
    if note == state.ALL_NOTES:
        st.session_state.pop(state.SCOPE_SECTION_KEY, None)
        return
    try:
        parsed = load_note(Path(settings.notes_dir), note, max_bytes=settings.max_file_bytes)
    except NotesQAError as exc:
        st.caption(str(exc))
        return
    sections = [("", state.WHOLE_NOTE, 0)] + [
        (s.anchor, s.heading, s.level) for s in shown_sections(parsed) if s.anchor and s.level > 0]
    if st.session_state.get(state.SCOPE_SECTION_KEY) not in sections:
        st.session_state[state.SCOPE_SECTION_KEY] = sections[0]
    top = min((s[2] for s in sections[1:]), default=1)
    st.selectbox("Section", sections, key=state.SCOPE_SECTION_KEY, label_visibility="collapsed",
                 format_func=lambda s: s[1] if not s[0] else "\u2003" * (s[2] - top) + s[1],
                 help="Only this section and the sections under it are searched.")


@st.cache_data(ttl=OLLAMA_CHECK_S, show_spinner=False)
def found_ollama_models(url: str) -> list[str]:
    """The models of an Ollama server on this machine (looked for at most every half minute)."""
    from qa.llm import ollama_models

    return ollama_models(url)


def _mode_panel(settings: Settings) -> None:
    from qa.llm import describe_model

    st.markdown("#### :material/tune: Answer mode")
    configured = settings.llm_provider not in ("", "none")
    found = [] if configured else found_ollama_models(settings.ollama_url)
    if configured:
        note = f"{describe_model(settings)}: fluent answers, every sentence checked against the cited passage"
    elif found:
        note = f"Ollama at {settings.ollama_url}: fluent answers, every sentence checked against the cited passage"
    else:
        note = "set LLM_PROVIDER (ollama or openai) and LLM_MODEL to enable, or start Ollama"
    if MODE_KEY not in st.session_state:  # an Ollama that was found is offered, never switched to silently
        st.session_state[MODE_KEY] = ANSWER_MODES[1] if configured else ANSWER_MODES[0]
    st.radio("Answer mode", ANSWER_MODES, disabled=not (configured or found), label_visibility="collapsed",
             captions=["Sentences quoted from your notes, each cited", note], key=MODE_KEY)
    if found:
        if st.session_state.get(OLLAMA_MODEL_KEY) not in found:
            st.session_state[OLLAMA_MODEL_KEY] = found[0]
        st.selectbox("Ollama model", found, key=OLLAMA_MODEL_KEY,
                     disabled=st.session_state[MODE_KEY] != ANSWER_MODES[1])
    if configured or found:
        st.checkbox("Allow general knowledge (marked as not from your notes)", key=GENERAL_KEY)


def chosen_chat_model(settings: Settings):
    """The LangChain chat model the sidebar chose: the configured one (None: NotesQA's own), or the found
    Ollama's, made once per model."""
    model = st.session_state.get(OLLAMA_MODEL_KEY)
    if settings.llm_provider not in ("", "none") or not model:
        return None
    return _ollama_chat(settings.ollama_url, model, settings.llm_timeout_s, settings.llm_max_tokens)


@st.cache_resource(show_spinner=False)
def _ollama_chat(url: str, model: str, timeout_s: float, max_tokens: int):
    from qa.llm import make_chat_model
    from qa.settings import load_settings

    return make_chat_model(load_settings(llm_provider="ollama", llm_model=model, llm_base_url=url,
                                         llm_timeout_s=timeout_s, llm_max_tokens=max_tokens))


def render_sidebar(settings: Settings, qa) -> None:
    with st.sidebar:
        _index_panel(settings, qa)
        st.divider()
        _scope_panel(settings)
        st.divider()
        _mode_panel(settings)

"""Ask: chat with your notes; every answer cites the sections it quotes."""

import time

import streamlit as st

from qa.errors import NotesQAError
from qa.records import COMMENTS
from ui import answers, conversations, reindex, sidebar, state
from ui.conversations import MESSAGES_KEY
from ui.export import conversation_markdown
from ui.markdown import escape_markdown

PENDING_KEY = "pending_question"  # a question to ask on the next run ("Search all notes")
QUEUE_KEY = "unanswered_questions"  # asked, not yet answered and kept (see the loop at the end)
ASK_PARAM = "ask"  # ?ask=…: a question to ask on arrival (the Evaluation page's "ask again")
STREAM_DELAY_S = 0.015  # per word: the answer appears progressively, the whole of it within a second
NOTICES_EVERY_S = 5.0  # an idle page looks at the notes folder this often (the "notes changed" line)
BUILD_POLL_S = 1.0  # how often the first build's progress bar moves on an idle page
AVATARS = {"user": ":material/person:", "assistant": ":material/menu_book:"}

qa = state.service()
settings = state.settings()
build = state.building()  # the first index being built (then `qa` is None and questions wait for it)
elsewhere = state.other_notes_folder(settings) if settings is not None and qa is not None else None
store = state.records(settings) if settings is not None else None
# The conversation lives in the URL (?c=…) and in the local store, so a reload brings it back; a session
# writes only to conversations it started (ui/conversations.py).
conversation = conversations.current_conversation(store)
messages: list[dict] = st.session_state[MESSAGES_KEY]


def new_chat() -> None:
    """Start over: a new conversation (the old one stays in the store, under its own URL)."""
    conversations.start_conversation()


def rated(turn: int) -> None:
    """Store the 👍/👎 (and its reason) of the answer at `turn` of this conversation."""
    if store is None:
        return
    rating = st.session_state.get(f"rating-{conversation}-{turn}")
    if rating is None:
        return
    answer = messages[turn]["answer"]
    earlier = messages[:max(turn - 1, 0)]
    state.kept(store.rate, conversation, turn, question=answer["question"], history=answers.history_used(earlier, answer),
               answer=answer, generation=answer.get("generation"), rating=int(rating),
               comment=st.session_state.get(f"why-{conversation}-{turn}") or "")


def show_feedback(message: dict, turn: int) -> None:
    """Copy the answer with its sources; rate it 👍/👎, with a reason for a 👎."""
    row = st.container(horizontal=True, vertical_alignment="center")
    with row.popover("Copy", icon=":material/content_copy:"):
        st.caption("The answer and its sources as Markdown (the icon copies it):")
        st.code(conversation_markdown([messages[turn - 1], message]) if turn else answers.answer_markdown(message),
                language="markdown")
    row.feedback("thumbs", key=f"rating-{conversation}-{turn}", on_change=rated, args=(turn,))
    if st.session_state.get(f"rating-{conversation}-{turn}") == 0:
        row.pills("What was wrong?", COMMENTS, key=f"why-{conversation}-{turn}", on_change=rated, args=(turn,),
                  label_visibility="collapsed")


def show_sources(message: dict) -> None:
    items = answers.source_items(message)
    if not items:
        return
    with st.expander(f"Sources ({len(items)})", icon=":material/format_quote:"):
        for item in items:
            st.markdown(f"**\\[{item['n']}\\]** [{escape_markdown(item['label'])}]({item['url']}) "
                        f"· :gray[{escape_markdown(item['source'])}]")
            st.markdown(item["quote_html"], unsafe_allow_html=True)  # sanitised by nh3 (ui/html.py)
            st.page_link("ui/pages/notes.py", label="Open here in Notes", icon=":material/arrow_forward:",
                         query_params=item["params"])


def show_closest(message: dict) -> None:
    closest = answers.closest_sections(message)
    if closest:
        st.markdown("Closest sections in your notes:\n\n" + "\n".join(
            f"- [{escape_markdown(c['label'])}]({c['url']}) · :gray[{escape_markdown(c['source'])}]"
            for c in closest))


def show_searched(message: dict) -> None:
    answer = message["answer"]
    with st.expander("What was searched", icon=":material/search:"):
        query = answer.get("searched_query") or answer["question"]
        st.markdown(f"**Query searched:** {escape_markdown(query)}")
        if " ".join(query.split()) != " ".join(answer["question"].split()):
            st.caption("A follow-up: the earlier subject was searched along with your question.")
        if message.get("scope"):
            st.caption(f"Only in: {message['scope']}")
        st.caption(answers.decision_text(message))
        rows = answers.searched_rows(message)
        if rows:
            st.dataframe(rows, hide_index=True, width="stretch", column_config={
                "rank": st.column_config.NumberColumn("#", width=40),
                "section": st.column_config.TextColumn("Section", width="medium"),
                "note": st.column_config.TextColumn("Note#anchor", width="small"),
                "dense": st.column_config.NumberColumn("Dense", format="%.3f", width=70, help="cosine similarity"),
                "keyword": st.column_config.NumberColumn("Keyword", format="%.2f", width=70, help="BM25 score"),
                "fused": st.column_config.NumberColumn("Fused", format="%.4f", width=70,
                                                       help="weighted reciprocal rank"),
            })
        st.caption(answers.timing_caption(message))


def ask_example(question: str) -> None:
    st.session_state[PENDING_KEY] = question


def search_everywhere(question: str) -> None:
    """'Search all notes': drop the sidebar's limits and ask the same question again."""
    st.session_state[state.SCOPE_NOTE_KEY] = state.ALL_NOTES
    st.session_state.pop(state.SCOPE_SECTION_KEY, None)
    st.session_state[state.SCOPE_TAGS_KEY] = []
    st.session_state[PENDING_KEY] = question


def show_details(message: dict, key: str = "") -> None:
    if message["answer"]["abstained"]:
        reason = (message["answer"].get("decision") or {}).get("reason")
        if reason and reason != "supported":
            st.caption(f"Why: {escape_markdown(reason)}.")
        if message.get("scope"):
            st.button("Search all notes", icon=":material/travel_explore:", key=f"everywhere-{key}",
                      on_click=search_everywhere, args=(message["answer"]["question"],),
                      help=f"Only {message['scope']} was searched; ask the same question of every note.")
        show_closest(message)
    if message["answer"].get("mode") == "llm":
        st.caption(":material/smart_toy: Written by the language model; every sentence was checked against the "
                   "passage it cites.")
    if message["answer"].get("notice"):
        st.caption(escape_markdown(message["answer"]["notice"]))
    show_sources(message)
    show_searched(message)


def show_message(message: dict, key: str = "") -> None:
    with st.chat_message(message["role"], avatar=AVATARS[message["role"]]):
        if message["role"] == "user":
            st.markdown(escape_markdown(message["content"]))
        elif message.get("error"):
            st.error(message["error"], icon=":material/error:")
        else:
            st.markdown(answers.answer_html(message), unsafe_allow_html=True)  # sanitised by nh3 (ui/html.py)
            show_details(message, key)
            show_feedback(message, int(key))


def use_llm() -> bool:
    if st.session_state.get(sidebar.MODE_KEY) != sidebar.ANSWER_MODES[1]:
        return False
    return sidebar.chosen_chat_model(settings) is not None or qa.chat_model is not None


def ask(question: str, earlier: list[dict], on_token=None) -> dict:
    source, under = state.search_scope()
    tags = state.search_tags()
    history = answers.history_for_ask(earlier)
    started = time.perf_counter()
    if on_token is not None:
        answer = qa.answer(question, history=history, source=source, under=under, tags=tags, mode="llm",
                           on_token=on_token, chat_model=sidebar.chosen_chat_model(settings),
                           allow_general=bool(st.session_state.get(sidebar.GENERAL_KEY)))
    else:
        answer = qa.ask(question, history=history, source=source, under=under, tags=tags)
    server_ms = (time.perf_counter() - started) * 1000
    scope = None
    if source:
        section = st.session_state.get(state.SCOPE_SECTION_KEY)
        scope = source + (f" › {section[1]}" if under and section else "")
    elif tags:
        scope = "notes tagged " + ", ".join(tags)
    return answers.assistant_message(answer, server_ms, scope=scope)


# Pinned to the bottom wherever it is called; read first so the page knows a question is coming. No
# max_chars: a longer paste is trimmed by the pipeline, with a notice under the answer, not refused silently.
question = st.chat_input("Ask a question about your notes", disabled=(qa is None and build is None) or bool(elsewhere))
question = question or st.session_state.pop(PENDING_KEY, None) or st.query_params.pop(ASK_PARAM, None)
queue: list[str] = st.session_state.setdefault(QUEUE_KEY, [])
waited_for_build = False
if question and question.strip():
    queue.append(question)
asking = bool(queue)

title, tools = st.columns([3, 2], vertical_alignment="bottom")
title.title("Ask your notes")
toolbar = tools.container(horizontal=True, horizontal_alignment="right")
if store is None and state.records_error():
    st.caption(f":material/save: {escape_markdown(state.records_error())}")

source, under = state.search_scope()
if source:
    section = st.session_state.get(state.SCOPE_SECTION_KEY)
    st.caption(f":material/filter_alt: Searching only in {escape_markdown(source)}"
               + (f" › {escape_markdown(section[1])}" if under and section else "") + " (see the sidebar)")
elif state.search_tags():
    st.caption(":material/filter_alt: Searching only notes tagged "
               + ", ".join(f"`{t}`" for t in state.search_tags()) + " (see the sidebar)")


def show_reindex_line(text: str, *, icon: str, key: str) -> None:
    """One warning line above the chat with its *Re-index now* button."""
    note, act = st.columns([4, 1], vertical_alignment="center")
    note.warning(text, icon=icon)
    if act.button("Re-index now", icon=":material/refresh:", key=key, width="stretch"):
        sidebar.run_ingest(settings, qa, rebuild=False)


@st.fragment(run_every=NOTICES_EVERY_S)
def show_index_notices() -> None:
    """The lines above the chat about the index: notes changed on disk (with *Re-index now*), or the
    re-indexer's failure. A fragment on a timer, so an idle page shows them too."""
    watcher = state.start_watcher(settings, qa)
    if watcher is not None and watcher.error:
        st.error(f"Re-indexing automatically failed: {watcher.error}", icon=":material/error:")
    elif watcher is None and state.notes_changed(settings):
        show_reindex_line("Your notes changed on disk since they were indexed: answers may be out of date.",
                          icon=":material/update:", key="stale_reindex")


@st.fragment(run_every=BUILD_POLL_S)
def show_build_progress() -> None:
    """The first build's progress bar; the whole page runs again once the index is there."""
    if build.done.is_set():
        st.rerun(scope="app")
    st.progress(*reindex.progress_text(build))
    st.caption(f"First start: indexing the notes in {escape_markdown(str(settings.notes_dir))}. "
               "You can ask already: questions are answered as soon as the index is ready.")


if build is not None and settings is not None:
    show_build_progress()
elif elsewhere:
    show_reindex_line(escape_markdown(elsewhere), icon=":material/folder_off:", key="folder_reindex")
elif qa is not None and settings is not None:
    show_index_notices()
if not messages and not asking and settings is not None and (qa is not None or build is not None):
    examples = state.example_questions(settings)
    st.caption("Ask anything your notes cover: each sentence of an answer is quoted from your notes; click a [n] "
               "marker to open the note there." + (" For example:" if examples else ""))
    if examples:
        row = st.container(horizontal=True)
        for n, example in enumerate(examples):
            row.button(example, key=f"example-{n}", icon=":material/help:", on_click=ask_example, args=(example,))

for number, message in enumerate(messages):
    show_message(message, str(number))

# Questions wait here until their answer is kept: Streamlit stops a run when the user sends another
# question, and the stopped one is answered first on the next run (never left unanswered in the history).
while queue:
    question = queue[0]
    earlier = list(messages)
    show_message(answers.user_message(question))
    with st.chat_message("assistant", avatar=AVATARS["assistant"]):
        draft = st.empty()
        try:
            if qa is None and build is not None:  # asked during the first build: wait for it, then answer
                reindex.wait_for_ingest(build, draft)
                qa = state.open_service(settings)
                build, waited_for_build = None, True
            if qa is None:
                raise NotesQAError(state.load_error() or "The index is not available; see the message on the page.")
            if elsewhere:
                raise NotesQAError(elsewhere)
            if use_llm():
                tokens: list[str] = []

                def show_token(token: str) -> None:
                    tokens.append(token)
                    draft.markdown(escape_markdown("".join(tokens)) + " ▌")

                with st.spinner("Asking the language model…"):
                    reply = ask(question, earlier, on_token=show_token)
                draft.empty()
            else:
                with st.spinner("Searching your notes…"):
                    reply = ask(question, earlier)
        except NotesQAError as exc:
            reply = answers.error_message(str(exc))
        except Exception as exc:  # the page boundary: a message, never a stack trace
            reply = answers.error_message(state.unexpected(exc, "Answering"))
        queue.pop(0)  # the turn is kept whole: question and answer together
        messages += [answers.user_message(question), reply]
        conversation = conversations.conversation_to_write()
        if store is not None:
            state.kept(store.save_conversation, conversation, messages)
        if reply.get("error"):
            st.error(reply["error"], icon=":material/error:")
        else:
            shown = st.empty()
            for partial in answers.stream_html(reply, STREAM_DELAY_S):
                shown.markdown(partial, unsafe_allow_html=True)  # sanitised by nh3 (ui/html.py)
            show_details(reply, str(len(messages) - 1))
            show_feedback(reply, len(messages) - 1)

with toolbar:
    st.download_button("Download", conversation_markdown(messages), file_name="notes-qa-conversation.md",
                       mime="text/markdown", icon=":material/download:", on_click="ignore", disabled=not messages,
                       help="The conversation as Markdown, with each answer's sources")
    st.button("New chat", icon=":material/add_comment:", on_click=new_chat, disabled=not messages,
              help="Start over (this conversation stays at its own address)")
if waited_for_build:  # the sidebar was drawn while the index was being built: draw it again, with its counts
    st.rerun()

"""Which conversation a browser session shows, and which one it writes to.

A conversation's address (`?c=…`) brings it back after a reload. Its id is an unguessable token issued
by this server, and a session only ever writes to conversations it started itself: a link someone else
made (an id they chose, or one of their own conversations) can show a conversation, never collect this
session's questions. The first question asked from a conversation this session did not start continues
in a new one, with the earlier turns copied.
"""

from __future__ import annotations

import streamlit as st

from qa.records import new_conversation_id
from ui import state

CONVERSATION_KEY, CONVERSATION_PARAM = "conversation", "c"
MESSAGES_KEY = "messages"
OWNED_KEY = "owned_conversations"  # ids this session issued: the only ones it writes to


def _show(conversation: str, messages: list[dict]) -> str:
    st.session_state[CONVERSATION_KEY] = conversation
    st.session_state[MESSAGES_KEY] = messages
    if st.query_params.get(CONVERSATION_PARAM) != conversation:
        st.query_params[CONVERSATION_PARAM] = conversation
    return conversation


def start_conversation(messages: list[dict] | None = None) -> str:
    """A new conversation issued by this server and owned by this session (the old one keeps its address)."""
    conversation = new_conversation_id()
    st.session_state.setdefault(OWNED_KEY, set()).add(conversation)
    return _show(conversation, messages if messages is not None else [])


def current_conversation(store) -> str:
    """The conversation to show: the session's own, else the stored one the address names; an id nobody
    issued (or one that cannot be read) starts a new conversation instead."""
    wanted = st.query_params.get(CONVERSATION_PARAM) or st.session_state.get(CONVERSATION_KEY)
    if wanted and wanted == st.session_state.get(CONVERSATION_KEY) and MESSAGES_KEY in st.session_state:
        return _show(wanted, st.session_state[MESSAGES_KEY])
    stored = state.kept(store.load_conversation, wanted) if store is not None and wanted else None
    if stored or wanted in st.session_state.get(OWNED_KEY, ()):
        return _show(wanted, stored or [])
    return start_conversation()


def conversation_to_write() -> str:
    """The conversation the next question is saved under: this one when the session started it, else a new
    one carrying the earlier turns (so a shared or crafted link never receives this session's questions)."""
    conversation = st.session_state[CONVERSATION_KEY]
    if conversation in st.session_state.get(OWNED_KEY, ()):
        return conversation
    return start_conversation(st.session_state[MESSAGES_KEY])

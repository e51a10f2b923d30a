"""Helpers for the Streamlit app: pure functions the pages call and the tests reach.

`links`, `markdown`, `answers`, `export` and `notes` know nothing of Streamlit; `state` and `sidebar` hold the
Streamlit glue shared by the pages (cached loaders, the sidebar); `study` and `coverage` the Study page's session
and views.
"""

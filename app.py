"""Notes Q&A, the Streamlit app: `python -m streamlit run app.py`.

Page config, the shared sidebar and navigation only. The page scripts are in ui/pages/ (not pages/:
a `pages/` folder next to this file switches Streamlit to its old folder-based navigation, which
bypasses this file), their logic in ui/.
"""

import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # `streamlit run` from another folder
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import streamlit as st  # noqa: E402

from ui.sidebar import render_sidebar  # noqa: E402
from ui.state import load_error, open_service, settings_or_error  # noqa: E402

st.set_page_config(page_title="Notes Q&A", page_icon=":material/menu_book:", layout="wide")

pages = st.navigation([
    st.Page("ui/pages/chat.py", title="Ask", icon=":material/chat:", default=True),
    st.Page("ui/pages/notes.py", title="Notes", icon=":material/description:", url_path="notes"),
    st.Page("ui/pages/study.py", title="Study", icon=":material/school:", url_path="study"),
    st.Page("ui/pages/evaluation.py", title="Evaluation", icon=":material/analytics:", url_path="evaluation"),
])

settings = settings_or_error()
qa = open_service(settings) if settings else None
if settings and qa is None and load_error():  # no error: the first index is being built (ui/state.py)
    st.error(load_error(), icon=":material/error:")
if settings:
    render_sidebar(settings, qa)
pages.run()

"""Evaluation: the reports written by `python -m eval` (eval/reports/ and EVAL_REPORTS), newest first."""

import json
import os
from pathlib import Path

import streamlit as st

from ui import state
from ui.evaluation import REPORT_MD, REPORTS_DIR, report_folders, report_parts
from ui.markdown import escape_markdown
from ui.sidebar import ago


def shown_path(folder: Path) -> str:
    try:
        return str(folder.relative_to(REPORTS_DIR.parent.parent))
    except ValueError:
        return str(folder)

st.title("Evaluation")
settings = state.settings()
store = state.records(settings) if settings is not None else None
if store is None and state.records_error():
    st.caption(f":material/save: {escape_markdown(state.records_error())}")
up, down = (state.kept(store.counts) if store is not None else None) or (0, 0)
if up or down:
    st.markdown(f"**Feedback from the chat:** 👍 {up} · 👎 {down} — export it as questions to review with "
                "`python -m eval.feedback --export FILE`.")
    ratings = state.kept(store.feedback) or []
    if store.unreadable:
        st.caption(f"{store.unreadable} of the ratings in {escape_markdown(str(store.path))} are damaged and left out.")
    latest = next((f for f in reversed(ratings) if f.rating == 0), None)
    if latest is not None:
        why = f" ({latest.comment})" if latest.comment else ""
        st.caption(f"Latest 👎{escape_markdown(why)}: {escape_markdown(latest.question)}")
        st.page_link("ui/pages/chat.py", label="Ask it again", icon=":material/replay:",
                     query_params={"ask": latest.question})
extra = [Path(p) for p in (settings.eval_reports.split(os.pathsep) if settings and settings.eval_reports else []) if p]
folders = report_folders(extra)
if not folders:
    st.info("No evaluation report yet. Produce one with `python -m eval` (it runs the evaluation questions "
            "through the same pipeline as this chat and writes eval/reports/report.md, report.json and charts), "
            "or point EVAL_REPORTS at the folder you gave `python -m eval --out`; then reload this page.",
            icon=":material/info:")
    st.stop()

folder = st.selectbox("Report", folders, format_func=lambda f: f"{shown_path(f)} · {ago((f / REPORT_MD).stat().st_mtime)}",
                      help="Every folder with a report.md under eval/reports/ and EVAL_REPORTS, newest first.")
report_md = folder / REPORT_MD
shown_images = set()
for kind, value in report_parts(report_md):
    if kind == "markdown":
        st.markdown(value)
    else:
        st.image(str(value))
        shown_images.add(value.name)

charts = [p for p in sorted(folder.glob("*.png")) if p.name not in shown_images]
if charts:
    st.subheader("Charts")
    for chart in charts:
        st.image(str(chart), caption=chart.name)

report_json = folder / "report.json"
downloads = st.container(horizontal=True)
downloads.download_button("report.md", report_md.read_bytes(), file_name="report.md", mime="text/markdown",
                          icon=":material/download:", on_click="ignore")
if report_json.is_file():
    downloads.download_button("report.json", report_json.read_bytes(), file_name="report.json",
                              mime="application/json", icon=":material/download:", on_click="ignore")
    with st.expander("Raw report (JSON)"):
        try:
            st.json(json.loads(report_json.read_text(encoding="utf-8")), expanded=1)
        except ValueError:
            st.warning("report.json is not valid JSON.")

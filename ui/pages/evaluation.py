"""Evaluation: the latest report written by `python -m eval` (eval/reports/)."""

import json

import streamlit as st

from ui.evaluation import REPORTS_DIR, report_parts
from ui.sidebar import ago

st.title("Evaluation")
report_md = REPORTS_DIR / "report.md"
if not report_md.is_file():
    st.info("No evaluation report yet. Produce one with `python -m eval` (it runs the evaluation questions "
            "through the same pipeline as this chat and writes eval/reports/report.md, report.json and charts); "
            "then reload this page.", icon=":material/info:")
    st.stop()

st.caption(f"eval/reports/report.md · written {ago(report_md.stat().st_mtime)}")
shown_images = set()
for kind, value in report_parts(report_md):
    if kind == "markdown":
        st.markdown(value)
    else:
        st.image(str(value))
        shown_images.add(value.name)

charts = [p for p in sorted(REPORTS_DIR.glob("*.png")) if p.name not in shown_images]
if charts:
    st.subheader("Charts")
    for chart in charts:
        st.image(str(chart), caption=chart.name)

report_json = REPORTS_DIR / "report.json"
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

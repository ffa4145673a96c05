"""Vigil's dashboard, a Streamlit multipage app: ``vigil dashboard`` or
``streamlit run app/dashboard/main.py``. Thin over ``monitoring``: pages read through
``monitoring.store.dashboard_queries`` and act only through ``monitoring.registry.promotion``."""

import streamlit as st

from app.dashboard import common

st.set_page_config(page_title="Vigil", page_icon=":material/shield:", layout="wide")
page = st.navigation([
    st.Page("pages/overview.py", title="Overview", icon=":material/monitor_heart:", default=True),
    st.Page("pages/quality.py", title="Quality", icon=":material/insights:"),
    st.Page("pages/service_health.py", title="Service", icon=":material/speed:", url_path="service"),
    st.Page("pages/drift.py", title="Drift", icon=":material/stacked_line_chart:"),
    st.Page("pages/registry.py", title="Registry", icon=":material/inventory_2:"),
    st.Page("pages/alerts.py", title="Alerts", icon=":material/notifications:"),
])
st.session_state["vigil_view"] = common.sidebar()
page.run()

"""Vigil's dashboard, a Streamlit multipage app: ``vigil dashboard`` or
``streamlit run app/dashboard/main.py``. Thin over ``monitoring``: pages read through
``monitoring.store.dashboard_queries`` and act only through ``monitoring.registry.promotion``,
``monitoring.registry.releases`` and ``monitoring.watchdog.model_policy``."""

import streamlit as st

from app.dashboard import auth, common

# The pages live in views/, not pages/: Streamlit treats a pages/ folder beside the entry script as a
# v1 multipage app until st.navigation has run once in the process, so a first visit to /quality
# would run that page alone (without the sidebar below) and list the file names.
st.set_page_config(page_title="Vigil", page_icon=":material/shield:", layout="wide")
if not auth.may_view():  # VIGIL_DASHBOARD_ACCESS=login: no page, no query, until a login
    auth.login_gate()
    st.stop()
page = st.navigation([
    st.Page("views/overview.py", title="Overview", icon=":material/monitor_heart:", default=True),
    st.Page("views/quality.py", title="Quality", icon=":material/insights:"),
    st.Page("views/service_health.py", title="Service", icon=":material/speed:", url_path="service"),
    st.Page("views/drift.py", title="Drift", icon=":material/stacked_line_chart:"),
    st.Page("views/registry.py", title="Registry", icon=":material/inventory_2:"),
    st.Page("views/release.py", title="Release", icon=":material/call_split:", url_path="release"),
    st.Page("views/policy.py", title="Policy", icon=":material/tune:", url_path="policy"),
    st.Page("views/alerts.py", title="Alerts", icon=":material/notifications:"),
    st.Page("views/incidents.py", title="Incidents", icon=":material/history:"),
    st.Page("views/access.py", title="Access", icon=":material/key:"),
])
st.session_state["vigil_view"] = common.sidebar()
common.critical_banner()
page.run()

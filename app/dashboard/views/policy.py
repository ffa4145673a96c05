"""Policy: the watchdog's policy for the model chosen in the sidebar (each threshold it uses, and
whether that is the model's own value or the environment's ``VIGIL_*`` default), the last changes,
and for an operator a form to change values or give them back to the defaults. Viewers read only.
Acts only through ``monitoring.watchdog.model_policy`` (locked, validated, audited)."""

import pandas as pd
import streamlit as st

from app.dashboard import auth, common
from monitoring.settings import get_settings
from monitoring.store import dashboard_queries
from monitoring.watchdog import model_policy

ACTIONS = ("policy_set", "policy_reset")

st.title("Policy")


def policy_table(view: model_policy.PolicyView) -> None:
    st.caption("What the watchdog judges this model by. An override is this model's own value; every "
               "other field follows the environment's VIGIL_<FIELD> variable.")
    st.dataframe(pd.DataFrame([{"field": name, "value": str(value), "source": "override" if overridden else "default",
                                "default": str(default)} for name, value, default, overridden in view.rows()]),
                 hide_index=True, key="policy_table")
    if view.updated_by:
        st.caption(f"Last changed by {view.updated_by} at {view.updated_at:%Y-%m-%d %H:%M} UTC.")


def edit_form(view: model_policy.PolicyView) -> None:
    """Text fields holding the values used now; the fields edited become the model's own values."""
    st.subheader("Change the policy")
    version = view.updated_at.timestamp() if view.updated_at else 0  # a change elsewhere refills the form
    with st.form(f"policy_form_{view.model_name}"):
        columns = st.columns(3)
        typed = {name: columns[index % 3].text_input(name, value=str(value), key=f"policy_{view.model_name}_{name}_{version}",
                                                     help=f"default {default} (VIGIL_{name.upper()})")
                 for index, (name, value, default, _overridden) in enumerate(view.rows())}
        reason = st.text_input("Reason (goes into the audit trail)", key=f"policy_reason_{view.model_name}")
        submitted = st.form_submit_button("Save")
    if submitted:
        edited = {name: text.strip() for name, text in typed.items() if text.strip() != str(getattr(view.policy, name))}
        if not edited:
            st.info("Nothing to save: no value was changed.")
            return
        _act("policy_set", view.model_name, lambda actor: model_policy.set_fields(
            get_settings(), view.model_name, edited, actor=actor, channel="dashboard", reason=reason.strip()))
    overridden = [name for name, _value, _default, own in view.rows() if own]
    if not overridden:
        return
    chosen = st.multiselect("Overrides to give back to the defaults", overridden, key=f"policy_reset_{view.model_name}_{version}")
    if st.button("Reset to the defaults", key="policy_reset_button", disabled=not chosen):
        _act("policy_reset", view.model_name, lambda actor: model_policy.reset_fields(
            get_settings(), view.model_name, chosen, actor=actor, channel="dashboard"))


def _act(action: str, model_name: str, change) -> None:
    actor = auth.require_operator(action, model_name)
    if actor is None:
        return
    try:
        changes = change(actor)
    except model_policy.PolicyError as error:
        auth.record(actor, action, allowed=False, model_name=model_name, detail=f"refused: {error}")
        st.error(f"Refused, nothing changed: {error}")
        return
    common.after_action()
    st.session_state["vigil_flash"] = ("; ".join(str(c) for c in changes) + f" (by {actor})") if changes \
        else "Nothing changed: the values are the ones in use."
    st.rerun()


def recent_changes(model_name: str) -> None:
    changes = dashboard_queries.access_log(common.store_url(), model_name=model_name, actions=ACTIONS, limit=20)
    if not changes.empty:
        st.subheader("Recent changes")
        st.dataframe(changes[["created_at", "actor", "action", "allowed", "detail", "channel"]], hide_index=True,
                     key="policy_changes")


if flash := st.session_state.pop("vigil_flash", None):
    st.success(flash)
if not common.no_model():
    name = common.view().model_name
    shown = common.policy(common.store_url(), name)
    policy_table(shown)
    if auth.operator() is not None:
        edit_form(shown)
    else:
        st.caption("Changing the policy needs an operator login (sidebar).")
    recent_changes(name)

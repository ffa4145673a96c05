"""Access: the client keys (who may predict, label, correct, be trusted, act as an operator);
make one (its text is shown once) or revoke one. Operators only: the page shows nothing else to
a viewer. Writes go through ``monitoring.store.client_keys`` (each one in the access log)."""

import pandas as pd
import streamlit as st

from app.dashboard import auth
from monitoring.client_keys import SCOPE_HELP, SCOPES
from monitoring.settings import get_settings
from monitoring.store.client_keys import create_key, list_keys, revoke_keys

NEW_KEY = "vigil_new_key"  # the text of the key just made, shown once

st.title("Access")


def key_table(url: str) -> pd.DataFrame:
    rows = list_keys(url)
    return pd.DataFrame([{"id": r.id, "client": r.name, "prefix": r.prefix, "scopes": " ".join(r.scopes),
                          "created": r.created_at, "created by": r.created_by,
                          "revoked": r.revoked_at, "revoked by": r.revoked_by} for r in rows])


def create_form(url: str) -> None:
    with st.form("create_key", clear_on_submit=True):
        name = st.text_input("Client name (letters, digits, . _ @ -)", key="key_name")
        scopes = st.multiselect("Scopes", SCOPES, default=["predict"], key="key_scopes",
                                help="; ".join(f"{s}: {h}" for s, h in SCOPE_HELP.items()))
        submitted = st.form_submit_button("Make key")
    if not submitted:
        return
    actor = auth.require_operator("key_create", None, f"key for {name}")
    if actor is None:
        return
    try:
        row, text = create_key(url, name=name.strip(), scopes=list(scopes), actor=actor, channel="dashboard")
    except ValueError as error:
        st.error(f"Not made: {error}")
        return
    st.session_state[NEW_KEY] = (row.id, row.name, text)
    st.rerun()


def show_new_key() -> None:
    made = st.session_state.pop(NEW_KEY, None)
    if made is None:
        return
    key_id, name, text = made
    st.success(f"Key {key_id} for {name}. Copy it now: it is shown once and cannot be shown again.")
    st.code(text, language=None)


def revoke_form(url: str, table: pd.DataFrame) -> None:
    active = table[table["revoked"].isna()] if not table.empty else table
    if active.empty:
        st.caption("No active key to revoke.")
        return
    labels = {f"{r.id}: {r.client} ({r.prefix}; {r.scopes})": str(r.id) for r in active.itertuples()}
    with st.form("revoke_key"):
        chosen = st.selectbox("Key", list(labels), key="revoke_choice")
        submitted = st.form_submit_button("Revoke")
    if not submitted:
        return
    actor = auth.require_operator("key_revoke", None, f"key {labels[chosen]}")
    if actor is None:
        return
    try:
        revoked = revoke_keys(url, labels[chosen], actor=actor, channel="dashboard")
    except ValueError as error:
        st.error(f"Not revoked: {error}")
        return
    st.success(f"Revoked key {revoked[0].id} of {revoked[0].name}; the API refuses it within "
               f"{get_settings().key_refresh_seconds:g} s.")
    st.rerun()


if auth.operator() is None:
    st.info("The client keys are for operators: log in (sidebar) to see, make or revoke them.")
else:
    store = get_settings().database_url
    show_new_key()
    keys = key_table(store)
    st.subheader("Keys")
    if keys.empty:
        st.caption("No keys yet. Clients need one for /predict and /feedback unless VIGIL_OPEN_ACCESS=true.")
    else:
        st.dataframe(keys, hide_index=True)
    st.subheader("Make a key")
    create_form(store)
    st.subheader("Revoke a key")
    revoke_form(store, keys)

"""Registry: every version with its registration metrics, production record and health; promote
or roll back after a preview and with a reason; freeze or release automatic actions; the audit
trail of every alias move; adopt a registered model Vigil did not train. Acting goes only through
``monitoring.registry.promotion`` and ``monitoring.registry.adoption`` (locked, audited)."""

import importlib
from pathlib import Path

import pandas as pd
import streamlit as st

from app.dashboard import auth, common
from monitoring.registry.adoption import adopt
from monitoring.registry.mlflow_registry import RegistryError
from monitoring.registry.move_preview import preview_move
from monitoring.registry.promotion import PromotionError, promote, rollback
from monitoring.settings import get_settings
from monitoring.store import dashboard_queries, dashboard_summaries, history

PREVIEW_KEY = "vigil_move_preview"
ACTIONS = {"Roll back": "manual_rollback", "Promote": "promote"}
DEFAULT_TARGET = "former champion (default)"

st.title("Registry")


def _mlflow_versions(model_name: str) -> pd.DataFrame | None:
    try:
        infos = common.registry().list_versions(model_name)
    except Exception as error:  # noqa: BLE001 - the page stays useful when MLflow is unreachable
        st.warning(f"MLflow is not reachable ({type(error).__name__}); showing Vigil's own records only.")
        return None
    return pd.DataFrame([{"version": i.version, "aliases": ", ".join(f"@{a}" for a in i.aliases),
                          "registered": i.created_at, "mlflow_metrics": i.metrics} for i in infos])


def version_table(model_name: str) -> pd.DataFrame:
    url = common.store_url()
    record = dashboard_queries.versions(url, model_name)
    moves = dashboard_queries.registry_events(url, model_name, alias_only=True)
    table = record.merge(dashboard_summaries.production_record(moves, common.now_minute()), on="version", how="outer")
    metric = dashboard_summaries.primary_metric(next((e for e in record["eval_metrics"] if e), {}) if not record.empty else {})
    table = table.merge(dashboard_queries.version_quality(url, model_name, metric), on="version", how="left")
    mlflow = _mlflow_versions(model_name)
    if mlflow is not None and not mlflow.empty:
        table = table.merge(mlflow, on="version", how="outer")
    evals = table["eval_metrics"] if "eval_metrics" in table else pd.Series(dtype=object)
    if "mlflow_metrics" in table:
        evals = [e if isinstance(e, dict) and e else logged for e, logged in zip(evals, table["mlflow_metrics"], strict=False)]
    table["registration_" + metric] = [e.get(metric) if isinstance(e, dict) else None for e in evals]
    table["registration_metrics"] = list(evals)
    columns = ["version", "aliases", "state", "since", "registration_" + metric, "production_" + metric,
               "labelled_samples", "times_champion", "hours_champion", "last_champion_until", "registered_at",
               "registration_metrics", "run_id"]
    return table[[c for c in columns if c in table]].sort_values("version", ascending=False)


def champion_line(model_name: str) -> int | None:
    alias = get_settings().champion_alias
    history = dashboard_queries.champions(common.store_url(), alias)
    held = history[history["model_name"] == model_name]
    vigil_says = int(held["version"].iloc[0]) if not held.empty and pd.notna(held["version"].iloc[0]) else None
    try:
        mlflow_says = common.registry().alias_version(model_name, alias)
    except Exception:  # noqa: BLE001 - reported by the version table already
        mlflow_says = vigil_says
    st.markdown(f"**@{alias}: version {mlflow_says if mlflow_says is not None else '—'}**")
    if mlflow_says != vigil_says:
        st.warning(f"MLflow's @{alias} is version {mlflow_says}, Vigil's history says {vigil_says}: "
                   "the alias was moved outside Vigil.")
    return mlflow_says


def reference_line(model_name: str, version: int | None) -> None:
    """Say so when the champion's drift reference is still to be taken from production."""
    if version is not None and history.reference_uri(common.store_url(), model_name, version) \
            == history.PENDING_REFERENCE:
        st.info(f"Drift reference of v{version}: none yet. It was adopted without a logged dataset "
                f"or a reference file, so its first healthy production window becomes its "
                "reference; drift is not measured until then.")


def adopt_form() -> None:
    """Start watching a registered model Vigil did not train (operators only)."""
    st.subheader("Adopt a model")
    st.caption("Start watching a model registered in MLflow by your own code: Vigil records its "
               "@champion as it is now, and guards it from then on.")
    name = st.text_input("Registered model name", key="adopt_name").strip()
    path = st.text_input("Reference file on the dashboard's machine (CSV or Parquet; optional: "
                         "else the dataset logged with the version, else its first healthy "
                         "production window)", key="adopt_reference").strip()
    if not st.button("Adopt", key="adopt_button"):
        return
    actor = auth.require_operator("adopt", name or None)
    if actor is None:
        return
    try:
        adoption = adopt(common.runtime(), model_name=name, actor=actor,
                         reference=Path(path) if path else None, channel="dashboard")
    except (RegistryError, ValueError) as error:  # AdoptionError is a ValueError
        auth.record(actor, "adopt", allowed=False, model_name=name or None, detail=f"refused: {error}")
        st.error(f"Refused: {error}")
        return
    common.after_action()
    st.session_state["vigil_flash"] = str(adoption)
    st.rerun()


def move_form(model_name: str, versions: list[int]) -> None:
    st.subheader("Promote or roll back")
    action = st.radio("Action", list(ACTIONS), horizontal=True, key="move_action")
    kind = ACTIONS[action]
    choices = ([DEFAULT_TARGET] if kind == "manual_rollback" else []) + [f"v{v}" for v in versions]
    target = st.selectbox("Target version", choices, key="move_target")
    reason = st.text_area("Reason (required, goes into the audit trail and the Slack message)", key="move_reason")
    to_version = None if target == DEFAULT_TARGET else int(target[1:])
    request = (model_name, kind, to_version, reason.strip())
    if st.button("Preview", key="move_preview"):
        actor = auth.operator() or "dashboard:anonymous"
        with st.spinner("Loading the target version and scoring recent rows…"):
            st.session_state[PREVIEW_KEY] = (request, preview_move(
                common.runtime(), model_name=model_name, kind=kind, actor=actor,
                reason=reason, to_version=to_version))
    stored = st.session_state.get(PREVIEW_KEY)
    if not stored or stored[0] != request:
        st.caption("Preview first: the target's metrics and health, a smoke prediction and the Slack message.")
        return
    preview = stored[1]
    show_preview(preview)
    if preview.allowed and st.button(f"Confirm: {action.lower()} to v{preview.target_version}", type="primary",
                                     key="move_confirm"):
        act(preview, reason)


def show_preview(preview) -> None:
    with st.container(border=True):
        st.markdown(f"**Preview:** @champion v{preview.current_version} → v{preview.target_version} "
                    f"(health: {preview.target_health})")
        if preview.target_metrics:
            st.json({k: round(v, 4) for k, v in preview.target_metrics.items()}, expanded=False)
        smoke = preview.smoke
        if smoke is not None and smoke.error:
            st.warning(f"Smoke prediction on {smoke.rows} recent rows failed: {smoke.error}")
        elif smoke is not None:
            score = f", mean score {smoke.mean_score:.3f}" if smoke.mean_score is not None else ""
            st.success(f"Smoke prediction on {smoke.rows} recent logged rows: {smoke.label_counts}{score}")
        if preview.slack_text:
            st.caption("Slack will say:")
            st.code(preview.slack_text, language=None)
        for problem in preview.problems:
            st.error(f"Cannot go ahead: {problem}")


def act(preview, reason: str) -> None:
    action = "promote" if preview.kind == "promote" else "rollback"
    actor = auth.require_operator(action, preview.model_name, detail=f"to version {preview.target_version}")
    if actor is None:
        return
    try:
        if preview.kind == "promote":
            event = promote(common.runtime(), model_name=preview.model_name, version=preview.target_version,
                            actor=actor, reason=reason, channel="dashboard")
        else:
            event = rollback(common.runtime(), model_name=preview.model_name, actor=actor, reason=reason,
                             to_version=preview.target_version, channel="dashboard")
    except (PromotionError, RegistryError) as error:
        auth.record(actor, action, allowed=False, model_name=preview.model_name, detail=f"refused: {error}")
        st.error(f"Refused: {error}")
        return
    del st.session_state[PREVIEW_KEY]
    common.after_action()
    st.session_state["vigil_flash"] = (f"@champion moved from v{event.from_version} to v{event.to_version} "
                                       f"by {actor}")
    st.rerun()


def controls(model_name: str) -> None:
    """Freeze or release the watchdog's automatic actions, when the watchdog offers it."""
    try:
        service = importlib.import_module("monitoring.watchdog.evaluation")
    except ImportError:
        return
    if not (hasattr(service, "freeze") and hasattr(service, "release")):
        return
    state = dashboard_queries.model_control(common.store_url(), model_name) or {}
    st.subheader("Automatic actions")
    frozen = bool(state.get("frozen"))
    st.write(f"Automatic rollbacks are **{'frozen' if frozen else 'on'}**"
             + (f": {state.get('frozen_reason')}" if frozen and state.get("frozen_reason") else "."))
    reason = st.text_input("Reason", key="control_reason")
    label, action = ("Release", "release") if frozen else ("Freeze", "freeze")
    if st.button(label, key="control_button"):
        actor = auth.require_operator(action, model_name)
        if actor is None:
            return
        try:
            getattr(service, action)(common.runtime().store_url, model_name, actor, reason,
                                     channel="dashboard")
        except ValueError as error:
            st.error(str(error))
            return
        common.after_action()
        st.rerun()


def audit(model_name: str) -> None:
    st.subheader("Audit trail")
    events = dashboard_queries.registry_events(common.store_url(), model_name)
    st.dataframe(events.drop(columns=["id"]), hide_index=True, key="audit_trail",
                 column_config={"evidence": st.column_config.JsonColumn("evidence")})
    refused = dashboard_queries.access_log(common.store_url(), channel="dashboard", allowed=False, limit=20)
    refused = refused[refused["model_name"].isna() | (refused["model_name"] == model_name)]
    if not refused.empty:
        st.caption("Refused attempts on the dashboard")
        st.dataframe(refused, hide_index=True, key="refused_attempts")


if flash := st.session_state.pop("vigil_flash", None):
    st.success(flash)
if not common.no_model():
    name = common.view().model_name
    reference_line(name, champion_line(name))
    table = version_table(name)
    st.dataframe(table, hide_index=True, key="versions",
                 column_config={"registration_metrics": st.column_config.JsonColumn("registration metrics")})
    move_form(name, [int(v) for v in table["version"]])
    controls(name)
    audit(name)
adopt_form()

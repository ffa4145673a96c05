"""Who may read and act on the dashboard: acting needs an operator login, and so does reading
unless ``VIGIL_DASHBOARD_ACCESS=open`` (with OIDC, ``[vigil] viewer_emails`` may also read).

Three ways to log in as an operator:
- a client key with the ``operator`` scope (``vigil keys create alice --scope operator``), typed
  into the token field: a per-operator credential; the actor recorded is ``dashboard:key:<its
  name>``, and a session logged in with a key is logged out within a few seconds of its
  revocation (the key is checked again on every page run, cached ``KEY_CHECK_SECONDS``);
- the shared operator token (``VIGIL_OPERATOR_TOKEN``, a bootstrap), typed with a name, compared
  in constant time; the actor recorded is ``dashboard:<name>``;
- OIDC through ``st.login()`` when ``.streamlit/secrets.toml`` has an ``[auth]`` section; a
  logged-in user is an operator when their e-mail is listed in ``[vigil] operator_emails``.

Every refused attempt (a wrong token, an action without a login) is shown and recorded in the
access log with channel ``dashboard``. ``VIGIL_OPERATOR_MAX_FAILURES`` wrong tokens within the
window lock out the typed name (counted from the access log, so every session sees them) and the
browser session (whatever name it types next) for the lockout period; locked-out attempts are
refused without a row (``monitoring.lockout``).
"""

from __future__ import annotations

import hmac
import math
import re
from datetime import timedelta

import streamlit as st
from pydantic import SecretStr

from monitoring.client_keys import OPERATOR, prefix_of
from monitoring.lockout import lookback, retry_after
from monitoring.settings import get_settings
from monitoring.store import history
from monitoring.store.client_keys import active_key, find_key
from monitoring.store.engine import utcnow

OPERATOR_KEY = "vigil_operator"
FAILURES_KEY = "vigil_login_failures"  # this session's wrong tokens, whatever name was typed
KEY_ID_KEY = "vigil_operator_key_id"  # the operator key this session logged in with
KEY_CHECK_SECONDS = 2
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def token_matches(given: str, expected: SecretStr | None) -> bool:
    """Constant-time comparison; no configured token means nobody logs in with one."""
    if expected is None or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


def record(actor: str, action: str, *, allowed: bool, model_name: str | None = None, detail: str = "") -> None:
    history.record_attempt(get_settings().database_url, actor=actor, action=action, allowed=allowed,
                           channel="dashboard", model_name=model_name, detail=detail)


def _secret(section: str) -> dict:
    try:
        return dict(st.secrets.get(section, {}))
    except Exception:  # noqa: BLE001 - no secrets.toml at all is the common case
        return {}


def oidc_configured() -> bool:
    return bool(_secret("auth"))


def operator() -> str | None:
    """The logged-in operator's actor name, or None for a viewer."""
    key_id = st.session_state.get(KEY_ID_KEY)
    if key_id is not None and not _key_still_operator(get_settings().database_url, key_id):
        for name in (OPERATOR_KEY, KEY_ID_KEY):
            st.session_state.pop(name, None)
    if st.session_state.get(OPERATOR_KEY):
        return st.session_state[OPERATOR_KEY]
    if oidc_configured() and st.user.get("is_logged_in"):
        email = str(st.user.get("email") or "")
        if email and email in _secret("vigil").get("operator_emails", []):
            return f"dashboard:{email}"
    return None


@st.cache_data(ttl=KEY_CHECK_SECONDS, show_spinner=False)
def _key_still_operator(url: str, key_id: int) -> bool:
    row = active_key(url, key_id)
    return row is not None and OPERATOR in row.scopes


def may_view() -> bool:
    """Whether this session may read the pages (``VIGIL_DASHBOARD_ACCESS``)."""
    if get_settings().dashboard_access == "open" or operator() is not None:
        return True
    if oidc_configured() and st.user.get("is_logged_in"):
        return str(st.user.get("email") or "") in _secret("vigil").get("viewer_emails", [])
    return False


def login_gate() -> None:
    """What a session that may not read sees instead of the pages: the login, no data."""
    st.title("Vigil: log in")
    st.caption("This dashboard needs a login to read (VIGIL_DASHBOARD_ACCESS=login).")
    login_panel()


def login_panel() -> None:
    """The sidebar's login box: who you are, and the way to become an operator."""
    actor = operator()
    if actor:
        st.success(f"Operator: {actor.removeprefix('dashboard:')}")
        if st.session_state.get(OPERATOR_KEY) and st.button("Log out", key="operator_logout"):
            for name in (OPERATOR_KEY, KEY_ID_KEY):
                st.session_state.pop(name, None)
            st.rerun()
        return
    if get_settings().dashboard_access == "open":
        st.caption("Viewing is open. Promoting, rolling back, freezing, releasing or changing a policy needs "
                   "an operator login.")
    if oidc_configured():
        if st.user.get("is_logged_in"):
            st.warning(f"{st.user.get('email')} is not an operator.")
        elif st.button("Log in with SSO", key="oidc_login"):
            st.login()
    with st.form("operator_login", clear_on_submit=True):
        name = st.text_input("Your name (with the shared token)", key="operator_name")
        token = st.text_input("Operator key or token", type="password", key="operator_token")
        submitted = st.form_submit_button("Log in")
    if submitted:
        _try_token(name.strip(), token)


def _try_token(name: str, token: str) -> None:
    if prefix_of(token) is not None:
        _try_key(name, token.strip())
        return
    if not NAME_PATTERN.match(name):
        st.error("Give your name (letters, digits, . _ @ -), it goes into the audit trail.")
        return
    if _refused_while_locked(name):
        return
    if token_matches(token, get_settings().operator_token):
        st.session_state[OPERATOR_KEY] = f"dashboard:{name}"
        record(f"dashboard:{name}", "login", allowed=True)
        st.rerun()
    _wrong(name, "wrong operator token", "Wrong operator token; the attempt was recorded.")


def _try_key(name: str, text: str) -> None:
    """Log in with an operator key: the actor is the key's name, whatever name was typed."""
    who = name if NAME_PATTERN.match(name) else "key"
    if _refused_while_locked(who):
        return
    row = find_key(get_settings().database_url, text)
    if row is None or not row.active or OPERATOR not in row.scopes:
        why = ("unknown operator key" if row is None else "revoked key" if not row.active
               else "the key lacks the operator scope")
        _wrong(who, why, f"Refused: {why}; the attempt was recorded.")
        return
    actor = f"dashboard:key:{row.name}"
    st.session_state[OPERATOR_KEY], st.session_state[KEY_ID_KEY] = actor, row.id
    record(actor, "login", allowed=True, detail=f"key {row.id} ({row.prefix})")
    st.rerun()


def _refused_while_locked(name: str) -> bool:
    wait = _locked_out_for(name)
    if wait > 0:
        st.error(f"Too many wrong operator tokens: logins are locked for {math.ceil(wait)} s more.")
    return wait > 0


def _wrong(name: str, why: str, shown: str) -> None:
    st.session_state.setdefault(FAILURES_KEY, []).append(utcnow())
    record(f"dashboard:{name}", "login", allowed=False, detail=why + history.client_marker(f"name:{name}"))
    st.error(shown)


def _locked_out_for(name: str) -> float:
    """Seconds this name or this session must still wait before trying a token again."""
    settings = get_settings()
    window = timedelta(seconds=settings.operator_failure_window_seconds)
    lockout = timedelta(seconds=settings.operator_lockout_seconds)
    now = utcnow()
    by_name = history.refusal_times(settings.database_url, channel="dashboard", client=f"name:{name}",
                                    since=now - lookback(window, lockout))
    by_session = st.session_state.get(FAILURES_KEY, [])
    return max(retry_after(times, now, max_failures=settings.operator_max_failures,
                           window=window, lockout=lockout) for times in (by_name, by_session))


def require_operator(action: str, model_name: str | None, detail: str = "") -> str | None:
    """The operator's actor name, or None after showing and recording the refusal."""
    actor = operator()
    if actor is None:
        record("dashboard:anonymous", action, allowed=False, model_name=model_name,
               detail=f"refused: no operator login. {detail}".strip())
        st.error(f"Refused: {action} needs an operator login (sidebar). The attempt was recorded.")
    return actor

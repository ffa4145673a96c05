"""Attack: a guessable operator token. Weak ones are refused at start, with the reason, never echoed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from monitoring.settings import Settings, explain
from monitoring.token_strength import weakness

VIGIL = str(Path(sys.executable).with_name("vigil"))


@pytest.mark.parametrize(("token", "why"), [
    ("changeme", "weak word 'changeme'"),
    ("Password123", "weak word 'password'"),
    ("secret-secret-secret-secret", "weak word 'secret'"),
    ("admin", "weak word 'admin'"),
    ("short-but-mixed-9X", "18 characters"),
    ("a" * 40, "1 distinct"),
    ("abababababababababababababab", "2 distinct"),
    ("qwertyuiqwertyuiqwertyui", "8 distinct"),
    ("0123456701234567012345670", "weak word '123456'"),
])
def test_weak_tokens_are_named_weak(token, why):
    assert why in (weakness(token) or "")


@pytest.mark.parametrize("token", ["Xq3v9-LmT2pK8wZr_4NbYc7D", "test-operator-token-0123456789",
                                   "0f3a9c1e7b2d4f6a8c0e1b3d5f7a9c2e"])
def test_strong_tokens_pass(token):
    assert weakness(token) is None


def test_a_weak_token_in_the_environment_is_refused_without_echoing_it(monkeypatch):
    monkeypatch.setenv("VIGIL_OPERATOR_TOKEN", "changeme")
    with pytest.raises(ValidationError) as error:
        Settings()
    message = explain(error.value)
    assert "VIGIL_OPERATOR_TOKEN=(hidden)" in message and "too weak" in message
    assert "changeme" not in message.replace("'changeme'", "")  # named as the word, not as the input


def test_vigil_serve_refuses_to_start_with_a_weak_token(tmp_path):
    env = {**os.environ, "VIGIL_OPERATOR_TOKEN": "hunter2-hunter2", "VIGIL_VAR_DIR": str(tmp_path)}
    result = subprocess.run([VIGIL, "serve", "--port", "0"], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert "VIGIL_OPERATOR_TOKEN=(hidden)" in result.stderr and "15 characters" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr

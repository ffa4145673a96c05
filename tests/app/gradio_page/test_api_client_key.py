"""The Gradio page's API client sends its own client key (VIGIL_CLIENT_KEY) to a closed API."""

from __future__ import annotations

import pytest

from app.gradio_page.api_client import ApiRejected, PredictionApi
from monitoring.store.client_keys import create_key
from tests.api.conftest import demo_rows, make_settings, running_api, train_version


def test_the_page_predicts_and_labels_with_its_key_and_not_without(sqlite_url, mlflow_store, tmp_path):
    settings = make_settings(sqlite_url, mlflow_store, tmp_path / "var", open_access=False)
    train_version(settings)
    _, key = create_key(sqlite_url, name="gradio", scopes=["predict", "feedback"], actor="test", channel="cli")
    with running_api(settings) as base:
        keyed = PredictionApi(base, key=key)
        answer = keyed.predict(demo_rows(1)[0])
        assert keyed.feedback(answer["prediction_id"], answer["prediction"])["received"] == 1
        keyed.close()
        bare = PredictionApi(base)
        with pytest.raises(ApiRejected) as refused:
            bare.predict(demo_rows(1)[0])
        bare.close()
    assert refused.value.status == 401

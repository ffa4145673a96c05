"""The Gradio page end to end: a real Gradio server on loopback, driven through ``gradio_client``,
asking a real prediction API (uvicorn on loopback) that serves a model trained into a real MLflow
store and logs into a real SQLite store.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from monitoring.store.engine import dispose_engines, session_scope
from monitoring.store.tables import Feedback, Prediction
from tests.net import free_port, wait_until_healthy
from tests.runtimes import runtime_for

pytestmark = pytest.mark.slow  # trains models and starts servers


def make_settings(root: Path, mlflow_store: str):
    from monitoring.settings import Settings
    from monitoring.store.migrations import upgrade

    settings = Settings(
        database_url=f"sqlite:///{root / 'vigil.db'}", mlflow_tracking_uri=mlflow_store, var_dir=root / "var",
        mlflow_artifact_root=str(Path(mlflow_store[len("sqlite:///"):]).parent / "artifacts"),
        model_name=f"gradio-model-{uuid.uuid4().hex[:8]}", alias_poll_seconds=0.2, log_flush_seconds=0.05,
        open_access=True,  # the page's own key: tests/app/gradio_page/test_api_client_key.py
    )
    upgrade(settings.database_url)
    return settings


def train_version(settings, dataset=None, promote: bool | None = True) -> int:
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.training import datasets
    from monitoring.training.trainer import train

    result = train(dataset or datasets.generate(400, 0), registry=Registry(settings),
                   store_url=settings.database_url, model_name=settings.model_name, actor="test",
                   promote=promote)
    return result.version


@contextmanager
def running_api(settings) -> Iterator[str]:
    import uvicorn

    from api.main import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(f"{url}/health", what="the API")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(15)


@contextmanager
def running_page(api_url: str, settings=None) -> Iterator[str]:
    from app.gradio_page.actions import PageActions
    from app.gradio_page.api_client import PredictionApi
    from app.gradio_page.hints import ReferenceHints
    from app.gradio_page.page import launch

    api = PredictionApi(api_url, timeout=5.0)
    port = free_port()
    page = launch(PageActions(api, ReferenceHints(settings) if settings else None),
                  host="127.0.0.1", port=port, block=False)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        page.close()
        api.close()


def client(page_url: str):
    from gradio_client import Client

    return Client(page_url, verbose=False)


def demo_row(seed: int = 1) -> dict:
    from monitoring.training import datasets

    return datasets.generate_features(1, seed).to_dict("records")[0]


def prediction_id(markdown: str) -> str:
    match = re.search(r"prediction id `([0-9a-f-]{36})`", markdown)
    assert match, markdown
    return match.group(1)


def wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@dataclass
class Stack:
    settings: object
    api_url: str
    page_url: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, mlflow_store: str) -> Iterator[Stack]:
    """Version 1 as champion, the API serving it, and the page asking the API."""
    settings = make_settings(tmp_path_factory.mktemp("gradio"), mlflow_store)
    train_version(settings)
    with running_api(settings) as api_url, running_page(api_url, settings) as page_url:
        yield Stack(settings, api_url, page_url)
    dispose_engines()


def test_the_page_loads_a_form_for_the_champion(stack):
    status = client(stack.page_url).predict(api_name="/load_form")
    assert status.startswith(f"Serving **{stack.settings.model_name}** version **1**")
    assert "14 features" in status


def test_the_form_has_widgets_from_the_features_and_their_reference_data(stack):
    from app.gradio_page.actions import PageActions
    from app.gradio_page.api_client import PredictionApi
    from app.gradio_page.hints import ReferenceHints

    form = PageActions(PredictionApi(stack.api_url), ReferenceHints(stack.settings)).load_form().form
    fields = {f.name: f for f in form.fields}
    assert form.version == 1
    assert set(fields["home_ownership"].choices) == {"rent", "own", "mortgage"}
    assert fields["home_ownership"].widget == "dropdown"
    assert fields["home_ownership"].example in {"rent", "own", "mortgage"}
    credit = fields["credit_score"]
    assert credit.widget == "number"
    assert 250 <= credit.minimum < credit.example < credit.maximum <= 900
    # the example row is one the API accepts as it is
    assert httpx.post(f"{stack.api_url}/predict", json=form.example_row()).status_code == 200


def test_a_prediction_shows_its_probability_and_the_version_that_made_it(stack):
    row = demo_row(seed=3)
    expected = httpx.post(f"{stack.api_url}/predict", json=row).json()
    answer, outcome, _thanks, _status = client(stack.page_url).predict(row, api_name="/predict")
    assert f"### Prediction: **{expected['prediction']}**" in answer
    assert f"({expected['probability']:.4f})" in answer
    assert f"**{stack.settings.model_name} version 1**" in answer
    assert [value for _label, value in outcome["choices"]] == [0, 1]
    # the page's traffic went through the API and is logged like any client's
    pid = prediction_id(answer)
    def logged():
        with session_scope(stack.settings.database_url) as session:
            row_ = session.scalars(select(Prediction).where(Prediction.id == pid)).one_or_none()
            return (row_.model_version, row_.features) if row_ else None
    assert wait_for(logged) == (1, row)


def test_the_true_outcome_is_sent_back_and_recorded(stack):
    session_client = client(stack.page_url)
    answer = session_client.predict(demo_row(seed=4), api_name="/predict")[0]
    pid = prediction_id(answer)
    thanks = session_client.predict(1, api_name="/feedback")
    assert thanks == f"Thank you: the true outcome **1** of prediction `{pid}` (version 1) was recorded."
    with session_scope(stack.settings.database_url) as session:
        stored = session.get(Feedback, pid)
        assert (stored.label, stored.model_name) == ("1", stack.settings.model_name)


def test_an_outcome_before_any_prediction_is_refused_politely(stack):
    assert client(stack.page_url).predict(0, api_name="/feedback") == \
        "Make a prediction first, then send its true outcome."


def test_a_bad_value_is_named_and_nothing_is_sent(stack):
    row = demo_row() | {"credit_score": "very good"}
    answer = client(stack.page_url).predict(row, api_name="/predict")[0]
    assert answer.startswith("**Check the form.** please fix: credit_score:")
    assert "Traceback" not in answer


def test_when_the_api_is_down_the_page_says_so(tmp_path: Path):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with running_page(dead) as page_url:
        session_client = client(page_url)
        status = session_client.predict(api_name="/load_form")
        answer = session_client.predict(demo_row(), api_name="/predict")[0]
    message = (f"**The prediction service is unavailable.** the prediction service at {dead} is not "
               f"reachable right now; please try again in a moment")
    assert status == message
    assert answer == message


def test_before_any_model_is_served_the_page_says_so(tmp_path: Path, mlflow_store: str):
    settings = make_settings(tmp_path, mlflow_store)
    with running_api(settings) as api_url, running_page(api_url) as page_url:
        session_client = client(page_url)
        status = session_client.predict(api_name="/load_form")
        answer = session_client.predict(demo_row(), api_name="/predict")[0]
    assert status == (f"The prediction service is up, but no version of **{settings.model_name}** is being "
                      f"served yet. Try again once a model has been promoted.")
    assert answer == status
    dispose_engines()


def test_a_model_swap_while_the_page_is_open(tmp_path: Path, mlflow_store: str):
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.registry.promotion import promote
    from monitoring.training import datasets

    settings = make_settings(tmp_path, mlflow_store)
    train_version(settings)
    v2 = train_version(settings, datasets.generate(400, 7), promote=False)
    with running_api(settings) as api_url, running_page(api_url, settings) as page_url:
        session_client = client(page_url)
        assert "version **1**" in session_client.predict(api_name="/load_form")
        row = demo_row()
        assert "version 1**" in session_client.predict(row, api_name="/predict")[0]

        # the alias moves while the page is open: the next answer carries the new version
        promote(runtime_for(settings.database_url, Registry(settings)), model_name=settings.model_name, version=v2,
                actor="test", reason="swap under the page")
        assert wait_for(lambda: httpx.get(f"{api_url}/model").json()["version"] == v2)
        answer, _outcome, _thanks, status = session_client.predict(row, api_name="/predict")
        assert f"**{settings.model_name} version {v2}**" in answer
        assert f"the model was replaced while the page was open (version 1 -> {v2}); it takes the same " \
               f"features" in answer
        assert status == f"Serving **{settings.model_name}** version **{v2}**"
        assert "replaced" not in session_client.predict(row, api_name="/predict")[0]

        # a version with other features: the page notices, rebuilds the form and says what changed
        full = datasets.generate(400, 8)
        fewer = datasets.TabularDataset(full.frame.drop(columns="region"), full.target, full.numeric,
                                        [c for c in full.categorical if c != "region"])
        Registry(settings).delete_alias(settings.model_name, settings.champion_alias)
        v3 = train_version(settings, fewer, promote=True)
        assert wait_for(lambda: httpx.get(f"{api_url}/model").json()["version"] == v3)
        answer, _outcome, _thanks, status = session_client.predict(row, api_name="/predict")
        assert answer.startswith(f"**The model changed while this page was open.** Version {v3} now answers "
                                 f"instead of version {v2}, and its features changed (removed region).")
        assert status == f"Serving **{settings.model_name}** version **{v3}**"
        answer = session_client.predict({k: v for k, v in row.items() if k != "region"}, api_name="/predict")[0]
        assert f"**{settings.model_name} version {v3}**" in answer
    dispose_engines()


SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "gradio"


@pytest.mark.browser
def test_in_a_browser_the_rendered_form_predicts_and_sends_the_outcome(stack, browser):
    """The widgets rendered from the champion's features reach the API with what the user typed."""
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.goto(stack.page_url)
    expect(page.get_by_text(f"Serving {stack.settings.model_name} version 1")).to_be_visible(timeout=60_000)
    credit = page.get_by_label("credit_score")
    expect(credit).to_be_visible()
    credit.fill("823")
    page.get_by_role("button", name="Predict", exact=True).click()
    answer = page.get_by_text("Answered by")
    expect(answer).to_contain_text(f"{stack.settings.model_name} version 1", timeout=30_000)
    expect(page.get_by_text("Probability of the positive class")).to_be_visible()
    pid = prediction_id(answer.inner_text().replace("prediction id ", "prediction id `") + "`")
    page.screenshot(path=str(SCREENSHOTS / "answer.png"), full_page=True)

    page.get_by_label("True outcome").click()
    page.get_by_role("option", name="1", exact=True).click()
    page.get_by_role("button", name="Send the true outcome").click()
    expect(page.get_by_text("was recorded")).to_be_visible(timeout=30_000)
    page.screenshot(path=str(SCREENSHOTS / "outcome.png"), full_page=True)

    def logged():
        with session_scope(stack.settings.database_url) as session:
            prediction = session.scalars(select(Prediction).where(Prediction.id == pid)).one_or_none()
            feedback = session.get(Feedback, pid)
            return (prediction.features, feedback.label) if prediction and feedback else None
    features, label = wait_for(logged)
    assert features["credit_score"] == 823.0
    assert label == "1"

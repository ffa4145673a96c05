"""The champion holder against a real MLflow store: load, follow the alias, keep serving on a bad load."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from monitoring.registry.mlflow_registry import Registry
from monitoring.serving.champion import ChampionHolder, load_champion
from monitoring.training import datasets
from tests.api.conftest import demo_rows, make_settings, train_version


@pytest.fixture
def api_settings(sqlite_url, mlflow_store, tmp_path):
    return make_settings(sqlite_url, mlflow_store, tmp_path / "var")


@pytest.fixture
def two_versions(api_settings):
    """Versions 1 (champion) and 2 (not promoted) of a fresh model."""
    train_version(api_settings, seed=0)
    train_version(api_settings, seed=1, promote=False)
    return api_settings


def test_a_loaded_champion_scores_like_its_model_with_a_checked_fast_path(two_versions):
    registry = Registry(two_versions)
    champion = load_champion(registry, two_versions.model_name, 2)
    assert champion.version == 2 and champion.model_name == two_versions.model_name
    assert champion.schema.names == datasets.NUMERIC + datasets.CATEGORICAL
    assert champion.scorer is not None
    rows = demo_rows(50, seed=9)
    labels, scores = champion.predict(rows)
    frame = pd.DataFrame(rows)
    assert labels == champion.servable.native.predict(frame).tolist()
    assert scores == pytest.approx(champion.servable.native.predict_proba(frame)[:, 1].tolist(), rel=1e-9)
    slow = type(champion)(servable=champion.servable, scorer=None)
    assert slow.predict(rows) == (labels, pytest.approx(scores, rel=1e-9))


def test_the_holder_follows_the_alias_and_keeps_serving_when_a_version_cannot_load(two_versions):
    registry = Registry(two_versions)
    name = two_versions.model_name
    holder = ChampionHolder(registry, name, "champion", poll_seconds=3600)
    holder.start()
    try:
        first = holder.current
        assert first.version == 1
        assert holder.refresh() is first  # alias unchanged: same object, nothing reloaded

        registry.set_alias(name, "champion", 2)
        second = holder.refresh()
        assert second.version == 2
        assert holder.stats.swaps == 2

        registry.set_alias(name, "champion", 1)  # a rollback: the replaced version is still loaded
        assert holder.refresh() is first
        registry.set_alias(name, "champion", 2)
        assert holder.refresh() is second
        assert holder.stats.swaps == 4

        broken = registry.client.create_model_version(name, source="file:///nonexistent/model")
        registry.set_alias(name, "champion", int(broken.version))
        assert holder.refresh().version == 2
        assert holder.stats.load_errors == 1
        assert f"version {broken.version}" in holder.stats.last_error
        assert holder.stats.alias_version == int(broken.version)

        registry.delete_alias(name, "champion")
        assert holder.refresh().version == 2  # no alias: keep what we have
    finally:
        holder.stop()


@pytest.mark.slow
def test_the_poller_notices_an_alias_move_by_itself(two_versions):
    registry = Registry(two_versions)
    holder = ChampionHolder(registry, two_versions.model_name, "champion", poll_seconds=0.1)
    holder.start()
    try:
        assert holder.current.version == 1
        Registry(two_versions).set_alias(two_versions.model_name, "champion", 2)
        deadline = time.monotonic() + 30
        while holder.current.version != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert holder.current.version == 2
    finally:
        holder.stop()
    assert not holder._thread.is_alive()


def test_no_alias_means_nothing_loaded_and_no_error(api_settings):
    holder = ChampionHolder(Registry(api_settings), api_settings.model_name, "champion", poll_seconds=3600)
    holder.start()
    try:
        assert holder.current is None
        assert holder.stats.alias_version is None and holder.stats.last_error is None
    finally:
        holder.stop()

"""One model an API process serves: its champion (loaded from ``@champion``, the alias followed and
hot-swapped by its own holder), its running release with the challenger, and its load-failure alert.

An API serves each name of ``Settings.served_model_names`` as one ``ServedModel``; nothing is shared
between them but the scoring path, the prediction log and the shadow worker, which already key
everything by model name and version. One model that cannot be loaded leaves the others serving:
each holder keeps its own failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from monitoring.registry import releases
from monitoring.runtime import Runtime
from monitoring.serving import local_copy
from monitoring.serving.champion import Champion, ChampionHolder
from monitoring.serving.feedback_intake import LabelRules
from monitoring.serving.load_alert import LoadAlert
from monitoring.serving.release_follower import CHALLENGER_ALIAS, ReleaseFollower


@dataclass
class ServedModel:
    name: str
    holder: ChampionHolder  # the champion, following @champion
    release: ReleaseFollower  # the running release and its challenger (@challenger)
    load_alert: LoadAlert  # a champion version that cannot be loaded, as a critical alert

    @classmethod
    def build(cls, runtime: Runtime, name: str, rules: LabelRules) -> ServedModel:
        """Holders that tell ``rules`` of each version they load; each champion swapped in from
        the registry is kept as the model's local copy (served when MLflow is down at start)."""
        settings, registry = runtime.settings, runtime.registry
        keep = local_copy.saver(settings.var_dir)

        def swapped(champion: Champion) -> None:
            rules.learn(champion)
            keep(champion)

        holder = ChampionHolder(registry, name, settings.champion_alias, settings.alias_poll_seconds,
                                fallback=local_copy.fallback(registry, settings.var_dir, name),
                                on_swap=swapped)

        def challenger_holder() -> ChampionHolder:
            return ChampionHolder(registry, name, CHALLENGER_ALIAS, settings.alias_poll_seconds,
                                  on_swap=rules.learn)

        release = ReleaseFollower(settings.database_url, name, challenger_holder, settings.alias_poll_seconds,
                                  on_load_failure=_aborter(runtime))
        return cls(name, holder, release, LoadAlert(settings.database_url, holder))

    @property
    def champion(self) -> Champion | None:
        return self.holder.current

    def start(self) -> None:
        """Load the champion (when the alias points at a loadable version) and start following."""
        self.holder.start()
        self.release.start()
        self.load_alert.start()

    def stop(self) -> None:
        self.holder.stop()
        self.release.stop()
        self.load_alert.stop()


def _aborter(runtime: Runtime) -> Callable:
    """Aborts a release whose challenger cannot be loaded (waiting would keep it open forever)."""

    def abort_unloadable(running, failure) -> None:
        releases.abort_unloadable(runtime, model_name=running.model_name, release_id=running.id,
                                  version=failure.version, reason=failure.reason)

    return abort_unloadable

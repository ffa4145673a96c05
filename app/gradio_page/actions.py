"""What the page does when a user loads it, asks for a prediction or sends the true outcome:
calls the API, and turns the answer (or the failure) into text for the user. No Gradio here.

A model swap while the page is open is expected: every answer names the version that really
produced it (taken from the API's answer, not from the form), and when that is not the version
the form was built for, the form is rebuilt from ``GET /model`` and the user is told what
changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.gradio_page.api_client import ApiRejected, ApiUnavailable, PredictionApi
from app.gradio_page.form import (
    Form,
    FormError,
    build_form,
    changed_features,
    feedback_choices,
    label_like,
    row_from_mapping,
    row_from_values,
)
from app.gradio_page.hints import HintSource

UNAVAILABLE = "**The prediction service is unavailable.**"


@dataclass(frozen=True)
class FormView:
    form: Form | None
    status: str


@dataclass(frozen=True)
class Answer:
    markdown: str
    prediction: dict[str, Any] | None = None  # what /feedback needs: id, value, version
    form: Form | None = None  # a rebuilt form when the model changed under the page
    choices: list[Any] = field(default_factory=list)


class PageActions:
    def __init__(self, api: PredictionApi, hints: HintSource | None = None):
        self.api = api
        self.hints = hints

    def load_form(self) -> FormView:
        try:
            model = self.api.model()
        except (ApiUnavailable, ApiRejected) as error:
            return FormView(None, f"{UNAVAILABLE} {error}")
        if not model.get("loaded"):
            return FormView(None, f"The prediction service is up, but no version of "
                                  f"**{model.get('model_name', '?')}** is being served yet. "
                                  f"Try again once a model has been promoted.")
        hints = self.hints(model["model_name"], int(model["version"])) if self.hints else {}
        try:
            form = build_form(model, hints)
        except FormError as error:
            return FormView(None, f"The form cannot be built: {error}")
        return FormView(form, f"Serving **{form.model_name}** version **{form.version}** "
                              f"({len(form.fields)} features; the example values are typical ones)")

    def predict(self, form: Form | None, values: list[Any] | dict[str, Any]) -> Answer:
        loaded = None
        if form is None:  # a script posting a row before the page was loaded
            view = self.load_form()
            if view.form is None:
                return Answer(view.status)
            form = loaded = view.form
        try:
            row = row_from_mapping(form, values) if isinstance(values, dict) else row_from_values(form, values)
        except FormError as error:
            return Answer(f"**Check the form.** {error}")
        try:
            answer = self.api.predict(row)
        except ApiUnavailable as error:
            return Answer(f"{UNAVAILABLE} {error}")
        except ApiRejected as error:
            return self._rejected(form, error)
        prediction = {key: answer.get(key) for key in
                      ("prediction_id", "prediction", "probability", "model_name", "model_version")}
        markdown = answer_markdown(prediction)
        rebuilt = loaded
        if prediction["model_version"] != form.version:
            notice, rebuilt = self._swapped(form, prediction["model_version"])
            markdown = f"{markdown}\n\n{notice}"
        return Answer(markdown, prediction=prediction, form=rebuilt,
                      choices=feedback_choices(prediction["prediction"], prediction["probability"]))

    def feedback(self, prediction: dict[str, Any] | None, label: Any) -> str:
        if not prediction:
            return "Make a prediction first, then send its true outcome."
        try:
            value = label_like(prediction["prediction"], label)
        except FormError as error:
            return f"**Check the outcome.** {error}"
        try:
            self.api.feedback(prediction["prediction_id"], value)
        except ApiUnavailable as error:
            return f"**The outcome was not recorded.** {error}"
        except ApiRejected as error:
            return f"**The service refused the outcome:** {error.detail}"
        return (f"Thank you: the true outcome **{value}** of prediction `{prediction['prediction_id']}` "
                f"(version {prediction['model_version']}) was recorded.")

    def _rejected(self, form: Form, error: ApiRejected) -> Answer:
        """A refusal may mean the model changed and now expects other features: check before blaming the user."""
        if error.status == 422:
            fresh = self.load_form().form
            if fresh is not None and changed_features(form, fresh):
                return Answer(f"**The model changed while this page was open.** Version {fresh.version} "
                              f"now answers instead of version {form.version}, and its features changed "
                              f"({changed_features(form, fresh)}). The form has been rebuilt for it: "
                              f"check the values and predict again.", form=fresh)
        return Answer(f"**The service refused these values:** {error.detail}")

    def _swapped(self, form: Form, answered_by: int) -> tuple[str, Form | None]:
        fresh = self.load_form().form
        if fresh is None:
            return (f"Note: version {answered_by} answered, not version {form.version} that this form "
                    f"was built for (the model was replaced while the page was open)."), None
        change = changed_features(form, fresh)
        if change:
            return (f"Note: the model was replaced while the page was open (version {form.version} -> "
                    f"{answered_by}) and its features changed ({change}); the form has been rebuilt."), fresh
        return (f"Note: the model was replaced while the page was open (version {form.version} -> "
                f"{answered_by}); it takes the same features."), fresh


def answer_markdown(prediction: dict[str, Any]) -> str:
    lines = [f"### Prediction: **{prediction['prediction']}**"]
    probability = prediction.get("probability")
    if probability is not None:
        lines.append(f"Probability of the positive class: **{probability:.1%}** ({probability:.4f})")
    lines.append(f"Answered by **{prediction['model_name']} version {prediction['model_version']}** "
                 f"· prediction id `{prediction['prediction_id']}`")
    return "\n\n".join(lines)

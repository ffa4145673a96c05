"""The Gradio page: the form (rendered per session from the champion's features), the answer, and
the true outcome sent back. Every action goes through ``PageActions`` (the API over HTTP).

Besides the widgets, three named endpoints serve scripts and tests through ``gradio_client``:
``/load_form`` (what the page shows on load), ``/predict`` (a row as a JSON object, scored with
the session's form exactly as the Predict button does) and ``/feedback`` (the true outcome of the
session's last prediction).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from app.gradio_page.actions import Answer, PageActions
from app.gradio_page.api_client import PredictionApi
from app.gradio_page.form import Field, Form
from app.gradio_page.hints import ReferenceHints
from monitoring.settings import Settings

TITLE = "Vigil: ask the model"
CSS = ".vigil-answer h3 { margin-top: 0; }"


def build_page(actions: PageActions) -> gr.Blocks:
    with gr.Blocks(title=TITLE, analytics_enabled=False) as page:
        form_state = gr.State(None)
        prediction_state = gr.State(None)
        gr.Markdown(f"# {TITLE}\nFill in the applicant's details and ask the model in production. "
                    f"When you learn the true outcome, send it back: it is how the model is watched.")
        with gr.Row():
            status = gr.Markdown()
            reload_button = gr.Button("Reload the form", size="sm", scale=0)
        with gr.Row():
            with gr.Column(scale=3):
                @gr.render(inputs=form_state)
                def render_form(form: Form | None) -> None:
                    if form is None:
                        gr.Markdown("The form appears once the prediction service answers.")
                        return
                    widgets = []
                    for start in range(0, len(form.fields), 2):
                        with gr.Row():
                            widgets.extend(_widget(f) for f in form.fields[start:start + 2])
                    predict_button = gr.Button("Predict", variant="primary", key="predict")
                    predict_button.click(_from_widgets, [form_state, *widgets], answer_outputs,
                                         api_visibility="private", key="predict-click")
            with gr.Column(scale=2):
                answer = gr.Markdown(elem_classes="vigil-answer")
                outcome = gr.Dropdown(label="True outcome", choices=[], value=None, allow_custom_value=True,
                                      interactive=True, info="what really happened, once you know it")
                send_button = gr.Button("Send the true outcome")
                thanks = gr.Markdown()
        row_json = gr.JSON(visible=False, label="row")
        row_button = gr.Button(visible=False)

        answer_outputs = [answer, prediction_state, outcome, thanks, form_state, status]

        def _load() -> tuple[Form | None, str]:
            view = actions.load_form()
            return view.form, view.status

        def _show(result: Answer) -> tuple[Any, ...]:
            outcome_update = gr.update(choices=[(str(c), c) for c in result.choices], value=None)
            if result.form is None:
                return result.markdown, result.prediction, outcome_update, "", gr.skip(), gr.skip()
            status_text = f"Serving **{result.form.model_name}** version **{result.form.version}**"
            return result.markdown, result.prediction, outcome_update, "", result.form, status_text

        def _from_widgets(form: Form | None, *values: Any) -> tuple[Any, ...]:
            return _show(actions.predict(form, list(values)))

        def _from_row(form: Form | None, row: dict[str, Any] | None) -> tuple[Any, ...]:
            return _show(actions.predict(form, row or {}))

        page.load(_load, None, [form_state, status], api_name="load_form")
        reload_button.click(_load, None, [form_state, status], api_visibility="private")
        row_button.click(_from_row, [form_state, row_json], answer_outputs, api_name="predict")
        send_button.click(actions.feedback, [prediction_state, outcome], thanks, api_name="feedback")
    return page


def _widget(f: Field) -> gr.components.Component:
    # the key keeps what the user typed when the form is rebuilt for a new version with this feature
    common = {"label": f.name, "key": f"{f.name}:{f.widget}", "interactive": True}
    if f.widget == "dropdown":
        return gr.Dropdown(choices=list(f.choices), value=f.example, **common)
    if f.widget == "checkbox":
        return gr.Checkbox(value=bool(f.example), **common)
    if f.widget == "text":
        return gr.Textbox(value=f.example, **common)
    # the training range is shown, not enforced: production values outside it are exactly what
    # drift monitoring is for, and the model still answers
    return gr.Number(value=f.example, info=f.info(), precision=0 if f.widget == "integer" else None, **common)


def launch(actions: PageActions, *, host: str, port: int, block: bool = True) -> gr.Blocks:
    """Start the page's server (``block=False`` returns at once; close it with ``page.close()``)."""
    page = build_page(actions)
    page.queue(default_concurrency_limit=8)
    page.launch(server_name=host, server_port=port, prevent_thread_lock=not block, quiet=True,
                show_error=False, theme=gr.themes.Soft(), css=CSS, footer_links=["api"],
                run_history=False)
    return page


def serve(settings: Settings, *, host: str, port: int, api_url: str) -> None:
    """Run the page until interrupted: answers from the API at ``api_url``, hints from the store."""
    api = PredictionApi(api_url, key=settings.client_key.get_secret_value() if settings.client_key else None)
    try:
        launch(PageActions(api, ReferenceHints(settings)), host=host, port=port, block=True)
    except OSError as error:  # Gradio's way of saying the port is taken
        raise ValueError(f"the Gradio page cannot listen on {host}:{port}: {error}") from None
    finally:
        api.close()

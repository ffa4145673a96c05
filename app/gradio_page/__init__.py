"""The Gradio page for end users: a form built from the champion's features, its answer, and the
true outcome sent back, all through the prediction API over HTTP (``vigil gradio``)."""

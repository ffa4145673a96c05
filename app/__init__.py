"""Vigil's thin clients: the Streamlit dashboard and the Gradio page."""

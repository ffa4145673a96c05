"""Vigil's FastAPI service: validates requests, calls `monitoring`, answers."""

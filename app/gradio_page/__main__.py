"""``python -m app.gradio_page --host H --port P --api-url URL``: the Gradio page as its own process.

``vigil gradio`` starts this module by name (the launcher never imports the page). A port that is
taken or a bad option ends with a one-line message and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vigil gradio", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--api-url", required=True)
    options = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from app.gradio_page.page import serve
    from monitoring.settings import get_settings

    print(f"gradio page on http://{options.host}:{options.port} (answers from {options.api_url})",
          file=sys.stderr)
    try:
        serve(get_settings(), host=options.host, port=options.port, api_url=options.api_url)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

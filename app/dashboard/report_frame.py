"""The page that shows a stored Evidently report inside the dashboard without the dashboard's rights.

Streamlit embeds HTML in an iframe that keeps the dashboard's origin (and may run scripts), which
would hand a report's scripts the operator's session. So the report goes one level deeper: into an
``iframe`` sandboxed with ``allow-scripts`` only, whose document has an opaque origin - its charts
run, but it cannot read or script the dashboard, open pop-ups, submit forms or navigate the page.
The report is passed in ``srcdoc``, HTML-attribute-escaped, so it cannot leave the attribute.
"""

from __future__ import annotations

import html

SANDBOX = "allow-scripts"


def sandboxed_report(page: str) -> str:
    """A small trusted page that shows ``page`` (a whole HTML document) in a script-only sandbox."""
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><style>'
        "html,body{margin:0;height:100%;overflow:hidden}iframe{border:0;width:100%;height:100%}"
        f'</style></head><body><iframe sandbox="{SANDBOX}" referrerpolicy="no-referrer" '
        f'title="Evidently drift report" srcdoc="{html.escape(page, quote=True)}"></iframe>'
        "</body></html>"
    )

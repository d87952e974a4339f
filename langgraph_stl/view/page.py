"""View → one self-contained HTML page: the app's CSS and JS inlined, the data in a JSON script element.

The page fetches nothing: a Content-Security-Policy forbids every network source (only inline code and ``data:``
images run), so it works from ``file://``, offline, and mailed around. Python never lays out the tree; the inlined
app (``assets/app.js``, handwritten, no dependencies) renders the data in the browser.
"""

from __future__ import annotations

import html
import json
import os
from importlib.resources import files
from pathlib import Path
from typing import Any

from langgraph_stl.view.load import View

CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"


def _asset(name: str) -> str:
    return files("langgraph_stl.view").joinpath("assets", name).read_text(encoding="utf-8")


def embed_json(data: Any) -> str:
    """JSON safe inside ``<script>``: every ``<`` escaped, so text holding ``</script>`` or ``<!--`` cannot end or
    confuse the data block (``\\u003c`` decodes back to ``<``)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def render_html(view: View, *, inline: bool = False) -> str:
    """The page for ``view``; ``inline`` wraps it in an ``<iframe srcdoc>`` for notebook output cells."""
    page = (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(view.title)}</title><style>{_asset('app.css')}</style></head>"
        "<body><div id='app' aria-live='polite'></div>"
        f"<script type='application/json' id='stl-data'>{embed_json(view.to_json())}</script>"
        f"<script>{_asset('app.js')}</script></body></html>\n"
    )
    if not inline:
        return page
    return (
        f"<iframe title='{html.escape(view.title)}' srcdoc=\"{html.escape(page)}\" "
        "style='width:100%;height:640px;border:1px solid #ddd;border-radius:4px'></iframe>"
    )


def write_html(view: View, out: str | Path) -> Path:
    """Write the page to ``out`` atomically (temporary file beside it, then ``os.replace``)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(render_html(view), encoding="utf-8")
    os.replace(tmp, out)
    return out

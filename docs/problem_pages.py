"""MkDocs hook: a page at each problem ``type`` URI, so that the URI opens its documentation.

The library's problem types are ``https://fastapi-serdes.dev/problems/<slug>`` (stable identifiers,
never changed); their documentation is a section of ``reference/problems/``. After the build, this
hook writes ``problems/<slug>/index.html`` for every slug of ``PROBLEM_TYPES``: a small page that
sends the browser on to ``reference/problems/#<slug>`` (and says where, for clients without
redirects). Static hosts serve ``/problems/<slug>`` from it (redirecting to the trailing slash).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from fastapi_serdes.problems import PROBLEM_DOCS_URI, PROBLEM_TYPES


def problem_pages(site_dir: Path) -> list[Path]:
    """Write the page of every problem type under ``site_dir``; return their paths."""
    written = []
    for slug, (status, title) in PROBLEM_TYPES.items():
        target = html.escape(f"{PROBLEM_DOCS_URI}#{slug}", quote=True)
        page = site_dir / "problems" / slug / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f"<title>{status} {html.escape(title)} ({slug}) - fastapi-serdes</title>\n"
            f'<link rel="canonical" href="{target}">\n'
            f'<meta http-equiv="refresh" content="0; url={target}">\n'
            f"</head><body><p>Problem type <code>{slug}</code> ({status} {html.escape(title)}): "
            f'see <a href="{target}">its documentation</a>.</p></body></html>\n',
            encoding="utf-8",
        )
        written.append(page)
    return written


def on_post_build(config: Any, **kwargs: Any) -> None:
    problem_pages(Path(config["site_dir"]))

"""Every problem ``type`` URI opens its documentation: the docs build writes a page there."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from fastapi_serdes.problems import PROBLEM_BASE_URI, PROBLEM_DOCS_URI, PROBLEM_TYPES

DOCS = Path(__file__).parent.parent / "docs"


def test_each_problem_type_uri_has_a_page_leading_to_its_section(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("problem_pages", DOCS / "problem_pages.py")
    assert spec is not None
    assert spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    written = hook.problem_pages(tmp_path)
    reference = (DOCS / "reference" / "problems.md").read_text()
    site_url = re.search(r"^site_url: (\S+)$", (DOCS.parent / "mkdocs.yml").read_text(), re.M)
    assert site_url is not None
    assert len(written) == len(PROBLEM_TYPES)
    for slug in PROBLEM_TYPES:
        # The URI's path under the site is where the page is written.
        path = (PROBLEM_BASE_URI + slug).removeprefix(site_url.group(1))
        page = (tmp_path / path / "index.html").read_text()
        assert f'content="0; url={PROBLEM_DOCS_URI}#{slug}"' in page
        assert "{ #" + slug + " }" in reference  # the section the page leads to

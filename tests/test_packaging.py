"""Packaging as a user sees it: a project using the installed fastapi-serdes type-checks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

USER_CODE = """
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

from fastapi_serdes import SerdesMiddleware, SerdesRoute


class User(BaseModel):
    id: int
    name: str


app = FastAPI()
app.add_middleware(SerdesMiddleware, strict=True, problem_details=True)
router = APIRouter(route_class=SerdesRoute)
route_class: type[APIRoute] = SerdesRoute


@router.get("/users/{user_id}")
async def get_user(user_id: int) -> User:
    return User(id=user_id, name="Ada")


app.include_router(router)
"""

# Proof that mypy sees the real types, not ``Any`` from an unresolved or untyped module.
WRONG_CODE = """
from fastapi_serdes import SerdesRoute

not_a_route: int = SerdesRoute
Lenient = SerdesRoute.with_settings(strictt=True)  # misspelt: a type error, not a runtime one
"""


def test_a_user_project_type_checks_against_the_installed_package(tmp_path: Path) -> None:
    # mypy cannot follow import hooks: the package must be reachable through a plain path entry
    # (the editable install's .pth, or site-packages) and ship py.typed. mypy runs in a directory
    # outside the repository, with the interpreter running the tests (.venv), as in a user's
    # project whose virtualenv has fastapi-serdes installed.
    pytest.importorskip("mypy", reason="mypy is a development tool (the dev group)")
    (tmp_path / "pyproject.toml").write_text("[tool.mypy]\nstrict = true\n")
    (tmp_path / "user_app.py").write_text(textwrap.dedent(USER_CODE))
    (tmp_path / "wrong.py").write_text(textwrap.dedent(WRONG_CODE))
    env = {k: v for k, v in os.environ.items() if k not in {"MYPYPATH", "PYTHONPATH"}}
    mypy = [sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", str(tmp_path / ".c")]
    result = subprocess.run(
        [*mypy, "user_app.py", "wrong.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2, result.stdout + result.stderr
    assert errors[0].startswith("wrong.py:4: error: Incompatible types in assignment"), errors
    assert 'type "type[SerdesRoute]"' in errors[0], errors
    assert errors[1].startswith('wrong.py:5: error: Unexpected keyword argument "strictt"'), errors

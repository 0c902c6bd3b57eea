"""Inject fastapi-serdes into every FastAPI app, as ``SERDES_COMPAT_MODE`` says.

Modes: ``stock`` (nothing), ``route`` (``APIRouter``, and so each app's own router, defaults to
``route_class=SerdesRoute`` when the caller passes none), ``middleware`` (each ``FastAPI`` app gets
``SerdesMiddleware`` with default settings, added as the app is constructed) and ``both``.

Used by the pytest plugin ``compat.inject`` and by ``_site/sitecustomize.py`` (so that the
subprocesses some of FastAPI's tests start are injected too), it imports no pytest. Each process
writes what it patched to ``$SERDES_COMPAT_STATS/<pid>.json``: the harness checks those counts.
"""

from __future__ import annotations

import atexit
import functools
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

MODES = ("stock", "middleware", "route", "both")
counts: Counter[str] = Counter()
_installed = False


def mode() -> str:
    value = os.environ.get("SERDES_COMPAT_MODE", "stock")
    if value not in MODES:
        raise ValueError(f"SERDES_COMPAT_MODE={value!r}; expected one of {MODES}")
    return value


def _counted(cls: type, key: str) -> None:
    """Count the instances of ``cls`` (and its subclasses) that get constructed."""
    original = cls.__init__

    @functools.wraps(original)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        counts[key] += 1
        original(self, *args, **kwargs)

    cls.__init__ = init  # type: ignore[misc]


def install() -> None:
    """Patch FastAPI for the current mode (once per process; nothing for ``stock``)."""
    global _installed
    current = mode()
    if _installed or current == "stock":
        return
    _installed = True
    import fastapi
    import fastapi.routing

    from fastapi_serdes import SerdesMiddleware, SerdesRoute

    if current in ("route", "both"):
        router_init = fastapi.routing.APIRouter.__init__

        @functools.wraps(router_init)
        def init_router(self: Any, *args: Any, **kwargs: Any) -> None:
            if "route_class" in kwargs:
                counts["routers_explicit"] += 1
            else:
                kwargs["route_class"] = SerdesRoute
                counts["routers_defaulted"] += 1
            router_init(self, *args, **kwargs)

        fastapi.routing.APIRouter.__init__ = init_router  # type: ignore[method-assign]
        _counted(SerdesRoute, "serdes_routes")

    if current in ("middleware", "both"):
        app_init = fastapi.FastAPI.__init__

        @functools.wraps(app_init)
        def init_app(self: Any, *args: Any, **kwargs: Any) -> None:
            app_init(self, *args, **kwargs)
            self.add_middleware(SerdesMiddleware)
            counts["apps_with_middleware"] += 1

        fastapi.FastAPI.__init__ = init_app  # type: ignore[method-assign]
        _counted(SerdesMiddleware, "serdes_middlewares")

    atexit.register(write_counts)


class _AfterFastAPIImport(importlib.abc.MetaPathFinder):
    """Calls :func:`install` right after the ``fastapi`` package has been imported."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "fastapi":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module: Callable[[ModuleType], None] = spec.loader.exec_module

        def exec_then_install(module: ModuleType) -> None:
            exec_module(module)
            install()

        spec.loader.exec_module = exec_then_install  # type: ignore[method-assign]
        return spec


def install_when_imported() -> None:
    """Install now if FastAPI is loaded, else as soon as it is (keeps stock import order)."""
    if mode() == "stock" or _installed:
        return
    if "fastapi" in sys.modules:
        install()
    elif not any(isinstance(f, _AfterFastAPIImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterFastAPIImport())


def write_counts() -> None:
    folder = os.environ.get("SERDES_COMPAT_STATS")
    if folder and mode() != "stock":
        record = {"mode": mode(), "argv": sys.argv[:4], **counts}
        Path(folder, f"{os.getpid()}.json").write_text(json.dumps(record))

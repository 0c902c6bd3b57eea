"""A griffe extension for the API reference: Sphinx roles in docstrings become Markdown.

The library's docstrings are Google style but name other objects with Sphinx roles
(``:class:`~fastapi_serdes.Telemetry```, ``:meth:`with_settings```), which Markdown would show
as they are. This turns each role into a code span, linked (through mkdocs-autorefs) when its
target is rendered on the reference page: a public name of ``fastapi_serdes``, one of the
``rendered`` objects configured in mkdocs.yml, or a documented public member of either. Any
other target stays a plain code span, so a link never points nowhere. It also drops the reST
``::`` that introduces a literal block (``Example::`` reads ``Example:``).

Configured in mkdocs.yml (mkdocstrings, ``extensions``); it changes only what the docs show.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(class|func|meth|attr|data|const|mod|exc|obj):`(~?)\.?([^`<>\s]+)`")
LITERAL_MARKER = re.compile(r"(?m)(\S)::$")
PACKAGE = "fastapi_serdes"


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring of the package once it is loaded."""

    def __init__(self, rendered: list[str] | None = None) -> None:
        super().__init__()
        self.rendered = list(rendered or [])

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.path != PACKAGE:
            return
        # Short name -> the identifier its section on the page has.
        targets = {str(name): f"{PACKAGE}.{name}" for name in pkg.exports or ()}
        targets.update({path.rsplit(".", 1)[-1]: path for path in self.rendered})
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = _rewrite(obj.docstring.value, obj, pkg, targets)


def _walk(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias and member.parent is obj:
            found.extend(_walk(member))  # type: ignore[arg-type]
    return found


def _rewrite(text: str, owner: griffe.Object, pkg: griffe.Module, targets: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        role, tilde, target = match.groups()
        shown = target.rsplit(".", 1)[-1] if tilde else target
        if role in ("func", "meth"):
            shown += "()"
        identifier = _identifier(target, owner, pkg, targets)
        return f"[`{shown}`][{identifier}]" if identifier else f"`{shown}`"

    return LITERAL_MARKER.sub(r"\1:", ROLE.sub(replace, text))


def _identifier(
    target: str, owner: griffe.Object, pkg: griffe.Module, targets: dict[str, str]
) -> str | None:
    """The page identifier of ``target`` as written in ``owner``'s docstring, if it is rendered."""
    parts = target.removeprefix(f"{PACKAGE}.").split(".")
    head, rest = parts[0], parts[1:]
    if head not in targets:
        # A bare member name (`:meth:`with_settings``) of the class the docstring belongs to.
        cls = owner if owner.is_class else owner.parent
        if rest or cls is None or not cls.is_class:
            return None
        for short, identifier in targets.items():
            if identifier.endswith(f".{cls.name}") and _documented(pkg, identifier, head):
                return f"{targets[short]}.{head}"
        return None
    if not rest:
        return targets[head]
    if len(rest) == 1 and _documented(pkg, targets[head], rest[0]):
        return f"{targets[head]}.{rest[0]}"
    return None


def _documented(pkg: griffe.Module, identifier: str, member: str) -> bool:
    """Whether ``identifier.member`` has a section of its own (public, with a docstring)."""
    try:
        obj = pkg.modules_collection[identifier]
    except KeyError:
        return False
    if obj.is_alias:
        obj = obj.final_target
    found = obj.members.get(member)
    return found is not None and not member.startswith("_") and found.docstring is not None

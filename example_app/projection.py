"""Load only what a response view serialises: the SQL select list, and models from partial rows.

A route with views learns from ``Depends(selection)`` which top-level fields the response will
hold (``Selection.fields``; None means all of them). The routers select only those columns and
fetch nested data (a user's recent videos, a video's tags, metadata and owner) only when it is
selected, so ``?view=minimal`` costs the database less as well as the encoder.
"""

from collections.abc import Collection, Mapping, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends
from pydantic import BaseModel

from fastapi_serdes import Selection, selection

SelectionParam = Annotated[Selection, Depends(selection)]
"""Annotate an endpoint parameter with this to receive the client's selection."""

M = TypeVar("M", bound=BaseModel)


def wants(sel: Selection, field: str) -> bool:
    """Whether the response will hold the top-level ``field``."""
    return sel.fields is None or field in sel.fields


def select_list(
    columns: Sequence[str], fields: Collection[str] | None, always: Collection[str] = ("id",)
) -> str:
    """The SQL select list for the selected fields.

    Args:
        columns: the table columns that are model fields of the same name, in table order.
        fields: the selected top-level fields (``Selection.fields``); None selects every column.
        always: columns loaded whatever the selection: the id that cursors and nested queries
            key on, a foreign key a nested object is fetched by.

    Returns:
        The columns to load, comma-separated, in table order. Only names from ``columns`` reach
        the SQL, never text from the request.
    """
    if fields is None:
        return ", ".join(columns)
    return ", ".join(c for c in columns if c in fields or c in always)


def partial(model: type[M], values: Mapping[str, Any]) -> M:
    """A ``model`` built from the values that were loaded, each one validated.

    Fields that were not loaded stay unset: they are absent from the instance (reading one
    raises ``AttributeError``) and the encoder skips them. That is safe only because the view
    leaves them out of the response; the tests check each view's keys.
    """
    if values.keys() >= model.model_fields.keys():
        return model.model_validate(values)
    instance = model.model_construct()
    validator = model.__pydantic_validator__
    for name, value in values.items():
        # Validates (and converts) this one field, as assigning it with validate_assignment would.
        validator.validate_assignment(instance, name, value)
    return instance

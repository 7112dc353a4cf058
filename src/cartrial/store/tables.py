"""The Core table of a mapped class, typed as a ``Table``.

SQLAlchemy's declarative ``__table__`` is annotated as a ``FromClause`` (a mapping may
target a join or a select); cartrial maps every class to one table, and Core statements
(``insert``/``update``, ``table.c``) want the ``Table``.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.orm import DeclarativeBase


def table_of(model: type[DeclarativeBase]) -> Table:
    """``model.__table__`` as a ``Table``; a TypeError if the class is not mapped to one."""
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is mapped to {type(table).__name__}, not a Table")
    return table

"""Errors of the trial database layer, with what to do about them."""

from __future__ import annotations


class DatabaseError(RuntimeError):
    """A database that cannot be opened or migrated, with what to do about it."""


class KeyMissing(DatabaseError):
    """A key kept outside the database (session secret, audit key) cannot be found."""

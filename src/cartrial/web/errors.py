"""The web service's errors, each with its HTTP status (records and bedside grading
raise them; one handler in ``cartrial.web.app`` turns them into pages or JSON)."""

from __future__ import annotations

from collections.abc import Mapping


class ServiceError(Exception):
    status = 400

    def __init__(self, message: str, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = dict(errors or {})


class Invalid(ServiceError):
    status = 422


class Refused(ServiceError):
    """The request cannot go on at all: shown as an error page (one handler in
    ``cartrial.web.app``), never as a message beside a form."""


class NotFound(Refused):
    status = 404


class Forbidden(Refused):
    status = 403


class Conflict(ServiceError):
    status = 409


class LockedError(ServiceError):
    status = 409

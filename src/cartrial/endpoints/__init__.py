"""Endpoint derivation: time-to-event datasets and response rates (DESIGN.md)."""

from cartrial.endpoints.derive import (
    COLUMNS,
    EndpointOptions,
    best_response,
    derive_competing,
    derive_dfs,
    derive_dor,
    derive_efs,
    derive_endpoints,
    derive_os,
    derive_pfs,
    last_known_alive,
)
from cartrial.endpoints.rates import response_rates

__all__ = [
    "COLUMNS",
    "EndpointOptions",
    "best_response",
    "derive_competing",
    "derive_dfs",
    "derive_dor",
    "derive_efs",
    "derive_endpoints",
    "derive_os",
    "derive_pfs",
    "last_known_alive",
    "response_rates",
]

"""Endpoint derivation: populations, declared endpoints, time-to-event datasets, rates.

See DESIGN.md: populations are decided in one place (``populations``), endpoints are
declared as data (``definitions``) and evaluated by ``derive``, consolidation SCT is
classified in ``sct``, and ``checks`` lists the records the rules had to interpret.
"""

from cartrial.endpoints.checks import endpoint_warnings
from cartrial.endpoints.definitions import (
    ENDPOINTS,
    AdverseEventKind,
    DefinitionError,
    EndpointDefinition,
    load_definitions,
)
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
    evaluate,
    last_known_alive,
)
from cartrial.endpoints.populations import (
    POPULATIONS,
    analysis_populations,
    population_counts,
    population_ids,
    subset_cohort,
)
from cartrial.endpoints.rates import response_rates
from cartrial.endpoints.sct import consolidation_sct

__all__ = [
    "COLUMNS",
    "ENDPOINTS",
    "POPULATIONS",
    "AdverseEventKind",
    "DefinitionError",
    "EndpointDefinition",
    "EndpointOptions",
    "analysis_populations",
    "best_response",
    "consolidation_sct",
    "derive_competing",
    "derive_dfs",
    "derive_dor",
    "derive_efs",
    "derive_endpoints",
    "derive_os",
    "derive_pfs",
    "endpoint_warnings",
    "evaluate",
    "last_known_alive",
    "load_definitions",
    "population_counts",
    "population_ids",
    "response_rates",
    "subset_cohort",
]

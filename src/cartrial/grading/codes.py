"""Integer codes of the categorical grading observations.

They are part of the cohort contract (the loader checks the words), so they live in
``cartrial.cohort.categories``; this module re-exports them for the grading engines.
"""

from cartrial.cohort.categories import (  # noqa: F401
    ALIASES,
    CATEGORIES,
    CEREBRAL_EDEMA,
    CONSCIOUSNESS,
    INFECTION,
    OXYGEN,
    SEIZURE,
    SEX,
    _key,
    decode,
    describe,
    encode,
    lookup_table,
)

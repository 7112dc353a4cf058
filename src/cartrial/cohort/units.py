"""Calendar units shared by every layer, declared once.

Months are days / 30.4375 (the mean Gregorian month, 365.25 / 12 days), as in DESIGN.md
and the published CAR-T follow-up times they are compared with.
"""

from __future__ import annotations

DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12  # 30.4375

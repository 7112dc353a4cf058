"""De-identification of ADaM-like exports.

Rules applied (each is stated in the ``DEIDENTIFICATION.txt`` written with the export):

1. Study IDs only: variables flagged ``identifier`` in ``cartrial.io.adam.VARIABLES``
   (date of birth) are dropped, and only documented variables are written, so names,
   medical record numbers and other extra cohort columns never reach the export.
2. Free text dropped: variables flagged ``free_text`` (verbatim AE term, organ/site
   typed by hand) are dropped.
3. Dates: ``shift`` mode moves every date of a patient by one random whole number of
   days drawn once per patient (intervals between a patient's dates are kept; seedable
   with ``seed``); ``days`` mode removes every date, leaving the days-since-infusion and
   CDISC study-day variables.
4. Ages of 90 or more: AGE is set missing and AGEGR1 reads "90+" (HIPAA Safe Harbor,
   45 CFR 164.514(b)(2)(i)(C)).

Shifted dates are NOT HIPAA Safe Harbor de-identification: Safe Harbor requires removing
all elements of dates (except year) directly related to an individual
(45 CFR 164.514(b)(2)(i)(C)); a date-shifted dataset needs an Expert Determination
(45 CFR 164.514(b)(1)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cartrial.io.adam import VARIABLES

DATE_MODES = ("shift", "days")


def _flagged(flag: str) -> dict[str, list[str]]:
    return {ds: [v for v, spec in spec_map.items() if getattr(spec, flag)]
            for ds, spec_map in VARIABLES.items()}


def patient_offsets(usubjids: pd.Series, seed: int | None,
                    shift_range: tuple[int, int] = (-365, 365)) -> pd.Series:
    """One non-zero whole-day offset per subject, uniform on ``shift_range`` (inclusive).

    Subjects are taken in sorted order so a given seed gives the same offset to the same
    subject whatever the row order.
    """
    lo, hi = int(shift_range[0]), int(shift_range[1])
    choices = np.array([d for d in range(lo, hi + 1) if d != 0])
    if choices.size == 0:
        raise ValueError(f"shift range {shift_range} holds no non-zero offset")
    ids = sorted(pd.unique(usubjids.dropna().astype(str)))
    rng = np.random.default_rng(seed)
    return pd.Series(rng.choice(choices, size=len(ids)), index=ids, dtype="int64")


def deidentify(
    adam: dict[str, pd.DataFrame],
    date_mode: str = "shift",
    seed: int | None = None,
    shift_range: tuple[int, int] = (-365, 365),
) -> tuple[dict[str, pd.DataFrame], str]:
    """De-identified copies of the datasets and the statement text (see module rules)."""
    if date_mode not in DATE_MODES:
        raise ValueError(f"date mode {date_mode!r}; expected one of {', '.join(DATE_MODES)}")
    identifiers, free_text = _flagged("identifier"), _flagged("free_text")
    offsets = None
    if date_mode == "shift":
        offsets = patient_offsets(adam["ADSL"]["USUBJID"], seed, shift_range)
    out: dict[str, pd.DataFrame] = {}
    dropped: dict[str, list[str]] = {}
    for name, df in adam.items():
        spec = VARIABLES[name]
        drop = [c for c in df.columns if c not in spec or c in identifiers[name]
                or c in free_text[name]]
        dates = [c for c in df.columns if c in spec and spec[c].type == "date" and c not in drop]
        if date_mode == "days":
            drop += dates
        d = df.drop(columns=drop).copy()
        if offsets is not None and dates:
            shift = pd.to_timedelta(d["USUBJID"].astype(str).map(offsets).astype("float64"),
                                    unit="D")
            for c in dates:
                d[c] = pd.to_datetime(d[c]) + shift.to_numpy()
        if name == "ADSL" and "AGE" in d.columns:
            old = d["AGE"] >= 90
            d["AGE"] = d["AGE"].where(~old.fillna(False))
            d["AGEGR1"] = d["AGEGR1"].where(~old.fillna(False), "90+")
        d.attrs = dict(df.attrs)
        out[name] = d
        if drop:
            dropped[name] = drop
    return out, statement(dropped, date_mode, shift_range, seeded=seed is not None)


def statement(dropped: dict[str, list[str]], date_mode: str, shift_range: tuple[int, int],
              seeded: bool) -> str:
    """The text of DEIDENTIFICATION.txt."""
    lines = [
        "De-identification statement (cartrial export adam --deidentify)",
        "",
        "Rules applied:",
        "1. Study IDs only. Subjects are identified by STUDYID/USUBJID/SUBJID (trial numbers).",
        "   Identifier-flagged variables were dropped and only documented variables (define.csv)",
        "   were written: names, medical record numbers and other cohort columns are not exported.",
        "2. Free-text fields were dropped (verbatim terms and other text typed by people).",
    ]
    if dropped:
        lines.append("   Variables dropped: " + "; ".join(
            f"{ds}: {', '.join(cols)}" for ds, cols in dropped.items()))
    if date_mode == "shift":
        lines += [
            "3. Dates shifted: every date of a patient was moved by one random whole number of",
            f"   days, drawn once per patient from [{shift_range[0]}, {shift_range[1]}] (never 0).",
            "   Intervals between one patient's dates, and all study days, are unchanged.",
            "   The offsets are not stored." + (" The seed used regenerates them: keep it as "
                                                "confidential as a key." if seeded else ""),
        ]
    else:
        lines += [
            "3. Dates removed: every date variable was dropped; times are given only as days",
            "   since CAR-T infusion (day 0; *DAY, ADYPUB, AVAL) and CDISC study days (ADY, no day 0).",
        ]
    lines += [
        "4. Ages of 90 years or more: AGE set missing and AGEGR1 = '90+'.",
        "",
        "HIPAA status:",
    ]
    if date_mode == "shift":
        lines += [
            "Shifted dates are NOT HIPAA Safe Harbor de-identification. Safe Harbor",
            "(45 CFR 164.514(b)(2)(i)(C)) requires removal of all elements of dates (except year)",
            "directly related to an individual; a dataset with shifted dates needs an",
            "Expert Determination (45 CFR 164.514(b)(1)) before it is shared as de-identified.",
        ]
    else:
        lines += [
            "No dates are exported and ages of 90 or more are grouped, as Safe Harbor",
            "(45 CFR 164.514(b)(2)) requires for dates and ages. Shifted dates would NOT be Safe",
            "Harbor (they need Expert Determination). Whether the export as a whole meets Safe",
            "Harbor (e.g. site names smaller than a state, no actual knowledge of re-identification)",
            "remains for the data holder to confirm.",
        ]
    return "\n".join(lines) + "\n"

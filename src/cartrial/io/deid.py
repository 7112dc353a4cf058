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
5. Pseudonyms: SUBJID, USUBJID and SITEID are replaced by keyed pseudonyms
   (HMAC-SHA256 of the value under a secret key the site keeps; RFC 2104). The table
   back to the real IDs is returned (``Deidentified.key_map``) and written only outside
   the export folder; with the same key a later export gets the same pseudonyms.
6. Date shifts are drawn away from 0: |offset| >= ``min_shift`` days (a shift of a few
   days would leave the real dates guessable).
7. k-anonymity: combinations of the quasi-identifiers site, age group, diagnosis and sex
   shared by fewer than ``k`` subjects (default 5; Sweeney 2002) are listed as warnings in
   the statement; nothing is suppressed silently.

Shifted dates are NOT HIPAA Safe Harbor de-identification: Safe Harbor requires removing
all elements of dates (except year) directly related to an individual
(45 CFR 164.514(b)(2)(i)(C)); a date-shifted dataset needs an Expert Determination
(45 CFR 164.514(b)(1)).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import NamedTuple

import numpy as np
import pandas as pd

from cartrial.io.adam import VARIABLES

DATE_MODES = ("shift", "days")
QUASI_IDENTIFIERS = ("SITEID", "AGEGR1", "DISEASE", "SEX")


class Deidentified(NamedTuple):
    """What ``deidentify`` returns."""

    datasets: dict[str, pd.DataFrame]
    statement: str
    key_map: pd.DataFrame  # kind, original, pseudonym — the site keeps it, never exported
    warnings: list[str]
    key: str  # the secret key used (generated when none was given)


def pseudonym(key: str, kind: str, value: str, prefix: str, length: int = 10) -> str:
    """A keyed pseudonym: ``prefix`` + the first ``length`` hex digits of
    HMAC-SHA256(key, kind:value), upper case (RFC 2104)."""
    digest = hmac.new(key.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return prefix + digest[:length].upper()


def keyed_offset(key: str, value: str, shift_range: tuple[int, int], min_shift: int) -> int:
    """A date offset for one subject from the key alone (same key, same offset)."""
    choices = _offset_choices(shift_range, min_shift)
    digest = hmac.new(key.encode(), f"SHIFT:{value}".encode(), hashlib.sha256).digest()
    return int(choices[int.from_bytes(digest[:8], "big") % choices.size])


def _offset_choices(shift_range: tuple[int, int], min_shift: int) -> np.ndarray:
    lo, hi = int(shift_range[0]), int(shift_range[1])
    choices = np.array([d for d in range(lo, hi + 1) if abs(d) >= max(int(min_shift), 1)])
    if choices.size == 0:
        raise ValueError(
            f"shift range {shift_range} holds no offset of at least {min_shift} days from 0"
        )
    return choices


def _flagged(flag: str) -> dict[str, list[str]]:
    return {
        ds: [v for v, spec in spec_map.items() if getattr(spec, flag)]
        for ds, spec_map in VARIABLES.items()
    }


def patient_offsets(
    usubjids: pd.Series,
    seed: int | None,
    shift_range: tuple[int, int] = (-365, 365),
    min_shift: int = 1,
) -> pd.Series:
    """One whole-day offset per subject, uniform on ``shift_range`` (inclusive) without the
    offsets closer to 0 than ``min_shift``.

    Subjects are taken in sorted order so a given seed gives the same offset to the same
    subject whatever the row order.
    """
    choices = _offset_choices(shift_range, min_shift)
    ids = sorted(pd.unique(usubjids.dropna().astype(str)))
    rng = np.random.default_rng(seed)
    return pd.Series(rng.choice(choices, size=len(ids)), index=ids, dtype="int64")


def deidentify(
    adam: dict[str, pd.DataFrame],
    date_mode: str = "shift",
    seed: int | None = None,
    shift_range: tuple[int, int] = (-365, 365),
    min_shift: int = 30,
    key: str | None = None,
    k: int = 5,
    pseudonymise: bool = True,
) -> Deidentified:
    """De-identified copies of the datasets, the statement text, the key map the site keeps,
    the k-anonymity warnings and the key (see module rules). Offsets come from ``seed``
    when given, else from the key."""
    if date_mode not in DATE_MODES:
        raise ValueError(f"date mode {date_mode!r}; expected one of {', '.join(DATE_MODES)}")
    key = key or secrets.token_hex(32)
    identifiers, free_text = _flagged("identifier"), _flagged("free_text")
    offsets = None
    if date_mode == "shift":
        if seed is not None:
            offsets = patient_offsets(adam["ADSL"]["USUBJID"], seed, shift_range, min_shift)
        else:
            ids = sorted(pd.unique(adam["ADSL"]["USUBJID"].dropna().astype(str)))
            offsets = pd.Series(
                [keyed_offset(key, i, shift_range, min_shift) for i in ids],
                index=ids,
                dtype="int64",
            )
    out: dict[str, pd.DataFrame] = {}
    dropped: dict[str, list[str]] = {}
    for name, df in adam.items():
        spec = VARIABLES[name]
        drop = [
            c for c in df.columns if c not in spec or c in identifiers[name] or c in free_text[name]
        ]
        dates = [c for c in df.columns if c in spec and spec[c].type == "date" and c not in drop]
        if date_mode == "days":
            drop += dates
        d = df.drop(columns=drop).copy()
        if offsets is not None and dates:
            shift = pd.to_timedelta(
                d["USUBJID"].astype(str).map(offsets).astype("float64"), unit="D"
            )
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
    key_map = pd.DataFrame(columns=["kind", "original", "pseudonym"])
    if pseudonymise:
        out, key_map = _pseudonymise(out, key)
    warnings = k_anonymity(out["ADSL"], k)  # on what is exported: pseudonymised sites
    text = statement(
        dropped,
        date_mode,
        shift_range,
        seeded=seed is not None,
        min_shift=min_shift,
        pseudonymised=pseudonymise,
        k=k,
        warnings=warnings,
    )
    return Deidentified(out, text, key_map, warnings, key)


def _pseudonymise(
    adam: dict[str, pd.DataFrame], key: str
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Replace SUBJID, USUBJID (STUDYID-pseudonym) and SITEID in every dataset."""
    adsl = adam["ADSL"]
    subj = {str(s): pseudonym(key, "SUBJID", str(s), "S") for s in adsl["SUBJID"].dropna()}
    sites = (
        {str(s): pseudonym(key, "SITEID", str(s), "SITE", 6) for s in adsl["SITEID"].dropna()}
        if "SITEID" in adsl
        else {}
    )
    out = {}
    for name, df in adam.items():
        d = df.copy()
        if "SUBJID" in d:
            d["SUBJID"] = d["SUBJID"].astype("string").map(subj).astype("string")
        if "USUBJID" in d and "STUDYID" in d:
            d["USUBJID"] = (d["STUDYID"].astype("string") + "-" + d["SUBJID"]).astype("string")
        if "SITEID" in d:
            d["SITEID"] = d["SITEID"].astype("string").map(sites).astype("string")
        d.attrs = dict(df.attrs)
        out[name] = d
    rows = [("SUBJID", a, b) for a, b in subj.items()] + [
        ("SITEID", a, b) for a, b in sites.items()
    ]
    return out, pd.DataFrame(rows, columns=["kind", "original", "pseudonym"])


def k_anonymity(
    adsl: pd.DataFrame, k: int = 5, quasi: tuple[str, ...] = QUASI_IDENTIFIERS
) -> list[str]:
    """Combinations of the quasi-identifiers shared by fewer than ``k`` subjects, as text."""
    cols = [c for c in quasi if c in adsl.columns]
    if not cols or k <= 1:
        return []
    q = adsl[cols].astype("string").fillna("(missing)")
    counts = q.value_counts(sort=False)
    small = counts[counts < k]
    return [
        f"{n} subject(s) share "
        + ", ".join(f"{c}={v}" for c, v in zip(cols, combo, strict=True))
        + f" (fewer than k = {k})"
        for combo, n in small.items()
    ]


def statement(
    dropped: dict[str, list[str]],
    date_mode: str,
    shift_range: tuple[int, int],
    seeded: bool,
    min_shift: int = 1,
    pseudonymised: bool = False,
    k: int = 5,
    warnings: list[str] | None = None,
) -> str:
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
        lines.append(
            "   Variables dropped: "
            + "; ".join(f"{ds}: {', '.join(cols)}" for ds, cols in dropped.items())
        )
    if date_mode == "shift":
        lines += [
            "3. Dates shifted: every date of a patient was moved by one random whole number of",
            f"   days, drawn once per patient from [{shift_range[0]}, {shift_range[1]}], at least",
            f"   {max(min_shift, 1)} day(s) away from 0 (|offset| >= {max(min_shift, 1)}).",
            "   Intervals between one patient's dates, and all study days, are unchanged.",
            "   The offsets are not stored."
            + (
                " The seed used regenerates them: keep it as confidential as a key."
                if seeded
                else " The site's key regenerates them."
            ),
        ]
    else:
        lines += [
            "3. Dates removed: every date variable was dropped; times are given only as days",
            "   since CAR-T infusion (day 0; *DAY, ADYPUB, AVAL) and CDISC study days (ADY, no day 0).",
        ]
    lines += ["4. Ages of 90 years or more: AGE set missing and AGEGR1 = '90+'."]
    if pseudonymised:
        lines += [
            "5. SUBJID, USUBJID and SITEID are keyed pseudonyms (HMAC-SHA256 under a key the",
            "   site keeps). The table back to the real IDs is NOT in this export.",
        ]
    lines += [
        f"6. k-anonymity check (k = {k}) on site, age group, diagnosis and sex: "
        + (f"{len(warnings)} combination(s) below k:" if warnings else "none below k.")
    ]
    lines += [f"   WARNING: {w}" for w in warnings or []]
    lines += ["", "HIPAA status:"]
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

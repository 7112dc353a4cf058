"""Time-to-event endpoints, derived from declared definitions and traceable to source rows.

``derive_endpoints`` evaluates the :class:`~cartrial.endpoints.definitions.EndpointDefinition`
objects of ``cartrial.endpoints.definitions`` (OS, PFS, EFS, DFS, DOR, CIR, NRM and any
user-defined endpoint) on a cohort, in the style of pharmaverse admiral's
``derive_param_tte()``: the event time is the **earliest** qualifying event on or after
the origin; a competing event that comes first ends follow-up with its cause code; a
censoring event (SCT, new therapy — options) that comes first censors; otherwise the
patient is censored at the **latest** day known alive (any events, adverse-event or
observation row; admiral's "last known alive date"). Each definition names its
population (``cartrial.endpoints.populations``); only that population gets rows.

Every output row carries its provenance as columns — ``source_table``, ``source_file``,
``source_row`` — and as the display string ``source``. Times are days since infusion
(day 0) as publications count them; DOR counts from the first objective response.

Evidence of relapse or progression (DESIGN.md; CIBMTR: NRM is death without evidence of
relapse or progression): a ``relapse`` or ``progression`` event; a response assessment of
PD or REL; a death whose recorded cause is the disease with no earlier such row (dated at
the death). Same-day ties: relapse, progression, PD/REL assessment, death from disease,
then death; then file and row order — never row order alone.

Option ``censor_at_sct`` (and ``censor_at_new_therapy``) censors every endpoint whose
definition allows it (all but OS) at SCT (new therapy) when that comes before the event:
the sensitivity analysis ELN 2022 recommends when SCT often follows CAR-T.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

from cartrial.cohort.model import Cohort
from cartrial.cohort.vocab import OBJECTIVE_RESPONSES
from cartrial.endpoints.definitions import (
    ENDPOINTS,
    AdverseEventKind,
    EndpointDefinition,
    EventKind,
)
from cartrial.endpoints.pointers import _display
from cartrial.endpoints.populations import POPULATIONS, analysis_populations
from cartrial.endpoints.response import RESPONSE_RANK, best_response

COLUMNS = [
    "patient_id",
    "endpoint",
    "time_days",
    "event",
    "event_desc",
    "censor_desc",
    "source",
    "cause",
    "source_table",
    "source_file",
    "source_row",
]
PROGRESSION_EVENTS = ("relapse", "progression")
#: response assessments that document relapse or progression
PROGRESSION_RESPONSES = ("PD", "REL")
#: same-day ties: relapse, then progression, then death (a death on the day of relapse
#: follows it); other kinds after these, then file order
TIE_ORDER = {"relapse": 0, "progression": 1, "death": 4}
_RANK_PD_RESPONSE = 2
_RANK_DISEASE_DEATH = 3
_RANK_OTHER = 5


@dataclass(frozen=True)
class EndpointOptions:
    """Derivation settings (all stated in the report's methods).

    response_window: days (inclusive) in which a response assessment counts as the
        day-28–30 response; default 0–35 allows for visits a few days late.
    efs_nonresponse_event: EFS counts failure to reach ``required_response`` in the window
        as an event (ELN 2022 treatment failure). Default on.
    required_response: the responses that are success for EFS; default CR/CRh/CRi, the
        leukaemia convention (ELN 2022; NCCN ALL; pivotal CAR-T ALL trials). A lymphoma
        trial would add PR.
    efs_failure_day: the day that treatment failure is dated: 0 on the publications'
        day-0 axis, 1 as ELN 2022's calendar counts it.
    censor_at_sct / censor_at_new_therapy: sensitivity analyses (see module docstring).
    definitions: user-defined endpoints (name → EndpointDefinition) evaluated beside
        the built-in ones (``cartrial.endpoints.definitions.load_definitions``).
    """

    response_window: tuple[float, float] = (0.0, 35.0)
    efs_nonresponse_event: bool = True
    required_response: tuple[str, ...] = ("CR", "CRh", "CRi")
    efs_failure_day: float = 0.0
    censor_at_sct: bool = False
    censor_at_new_therapy: bool = False
    definitions: Mapping[str, EndpointDefinition] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = [r for r in self.required_response if r not in RESPONSE_RANK]
        if bad or not self.required_response:
            raise ValueError(
                f"required_response: found {bad or '(none)'}; expected responses among "
                f"{', '.join(RESPONSE_RANK)}"
            )
        if self.efs_failure_day not in (0, 1, 0.0, 1.0):
            raise ValueError(f"efs_failure_day: found {self.efs_failure_day!r}; expected 0 or 1")


def _rows(row: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Source row numbers as ``Int64`` (-1: missing)."""
    row = np.asarray(row, dtype=np.int64)
    return pd.arrays.IntegerArray(row, row < 0)


@dataclass
class Hits:
    """Candidate source rows as parallel arrays (structure of arrays: no per-row objects).

    ``pos``: the patient's position in ``cohort.patients``; ``file``: a code into the
    context's sorted file names (so ties break by file name, then row, as before).
    """

    pos: np.ndarray
    day: np.ndarray
    rank: np.ndarray
    desc: np.ndarray
    table: np.ndarray
    file: np.ndarray
    row: np.ndarray
    flag: np.ndarray

    def __len__(self) -> int:
        return len(self.pos)

    def display(self, files: list[str]) -> np.ndarray:
        """``file row N (desc)`` for every hit, computed once per Hits object."""
        cached = self.__dict__.get("_display")
        if cached is None:
            names = np.asarray([*files, None], dtype=object)
            cached = self.__dict__["_display"] = _display(names[self.file], self.row, self.desc)
        return cached

    def display_at(self, files: list[str], idx: np.ndarray) -> np.ndarray:
        """``display`` of the hits at ``idx`` only (the whole column when cached)."""
        cached = self.__dict__.get("_display")
        if cached is not None:
            return cached[idx]
        names = np.asarray([*files, None], dtype=object)
        return _display(names[self.file[idx]], self.row[idx], self.desc[idx])

    def take(self, idx: np.ndarray) -> Hits:
        return Hits(**{f: getattr(self, f)[idx] for f in _HIT_FIELDS})

    @staticmethod
    def concat(parts: list[Hits]) -> Hits:
        parts = [p for p in parts if len(p)]
        if not parts:
            return _EMPTY_HITS
        if len(parts) == 1:
            return parts[0]
        return Hits(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in _HIT_FIELDS})

    def with_flag(self, value: bool) -> Hits:
        return replace(self, flag=np.full(len(self), value))

    def first(self, n: int, origin: np.ndarray | None = None) -> np.ndarray:
        """Index (into these hits) of each patient's earliest row on or after the origin.

        -1 where a patient has none. Order: day, rank (same-day tie order), file, row.
        """
        out = np.full(n, -1, dtype=np.int64)
        if not len(self):
            return out
        start = 0.0 if origin is None else origin[self.pos]
        sel = np.flatnonzero(self.day >= start)  # NaN origin: never
        if not len(sel):
            return out
        order = np.lexsort(
            (self.row[sel], self.file[sel], self.rank[sel], self.day[sel], self.pos[sel])
        )
        idx = sel[order]
        ps = self.pos[idx]
        keep = np.ones(len(idx), dtype=bool)
        keep[1:] = ps[1:] != ps[:-1]
        out[ps[keep]] = idx[keep]
        return out

    def first_day(self, n: int, origin: np.ndarray | None = None) -> np.ndarray:
        """Each patient's earliest day (NaN where none): ``first`` as days."""
        i = self.first(n, origin)
        out = np.full(n, np.nan)
        ok = i >= 0
        out[ok] = self.day[i[ok]]
        return out


_HIT_FIELDS = ("pos", "day", "rank", "desc", "table", "file", "row", "flag")
_EMPTY_HITS = Hits(
    np.empty(0, np.int64),
    np.empty(0, float),
    np.empty(0, np.int64),
    np.empty(0, object),
    np.empty(0, object),
    np.empty(0, np.int64),
    np.empty(0, np.int64),
    np.empty(0, bool),
)


class _Context:
    """Per-cohort sources, computed once and shared by every endpoint definition."""

    def __init__(self, cohort: Cohort, options: EndpointOptions) -> None:
        self.cohort = cohort
        self.options = options
        self.ids = pd.Index(cohort.patients["patient_id"].astype(str), name="patient_id")
        self.n = len(self.ids)
        files: set[str] = set()
        for df in (cohort.patients, cohort.events, cohort.adverse_events, cohort.observations):
            if len(df):
                col = np.asarray(df["source_file"].array, dtype=object)
                if (col == col[0]).all():  # one file per table: no hashing of every row
                    files.add(str(col[0]))
                else:
                    files.update(map(str, pd.unique(col)))
        self.files = sorted(files)
        self._file_index = pd.Index(self.files)
        ev = cohort.events
        self.events = ev[ev["day"].notna().to_numpy()]
        self.ev_pos = self.pos_of(self.events)
        self.ev_file = self.file_of(self.events)
        # the words of the event, response and cause columns, factorised once: every
        # selection below is then an integer comparison, not a string match per call
        self._codes = {
            col: pd.factorize(self.events[col].astype(object), use_na_sentinel=True)
            for col in ("event", "response", "cause")
        }

    def is_in(self, column: str, words) -> np.ndarray:
        """Boolean mask over ``self.events``: ``column`` is one of ``words``."""
        codes, uniques = self._codes[column]
        wanted = [i for i, u in enumerate(uniques) if u in set(words)]
        return np.isin(codes, wanted) if wanted else np.zeros(len(codes), dtype=bool)

    def pos_of(self, df: pd.DataFrame) -> np.ndarray:
        """Each row's patient position (-1: not a patient of the cohort).

        A hash lookup in the (unique) patient index, once per run of rows of one patient
        (tables are grouped by patient, so 10⁷ observation rows are ~10⁵ lookups)."""
        ids = np.asarray(df["patient_id"].array, dtype=object)  # no copy of text columns
        n = len(ids)
        if n > 1:
            head = np.empty(n, dtype=bool)
            head[0] = True
            try:
                np.not_equal(ids[1:], ids[:-1], out=head[1:])
            except TypeError:  # a missing id (pd.NA) cannot be compared: every row
                head[:] = True
            starts = np.flatnonzero(head)
            if len(starts) * 4 < n:
                pos = self.ids.get_indexer(ids[starts]).astype(np.int64)
                return np.repeat(pos, np.diff(np.append(starts, n)))
        return self.ids.get_indexer(ids).astype(np.int64)

    def file_of(self, df: pd.DataFrame) -> np.ndarray:
        return self._file_index.get_indexer(df["source_file"].astype(str)).astype(np.int64)

    def hits(self, df, pos, file, day, rank, desc, table: str) -> Hits:
        k = len(df)
        return Hits(
            pos,
            np.asarray(day, dtype=float),
            np.broadcast_to(np.asarray(rank, dtype=np.int64), (k,)).copy(),
            np.broadcast_to(np.asarray(desc, dtype=object), (k,)).copy(),
            np.full(k, table, dtype=object),
            file,
            df["source_row"].fillna(-1).to_numpy(dtype=np.int64),
            np.ones(k, dtype=bool),
        )

    def _event_rows(self, mask: np.ndarray, rank, desc) -> Hits:
        ev = self.events[mask]
        return self.hits(
            ev,
            self.ev_pos[mask],
            self.ev_file[mask],
            ev["day"].to_numpy(float),
            rank(ev) if callable(rank) else rank,
            desc(ev) if callable(desc) else desc,
            "events",
        )

    def _kind_mask(self, kinds) -> np.ndarray:
        return self.is_in("event", kinds)

    @cached_property
    def best(self) -> pd.DataFrame:
        return best_response(self.cohort, self.options.response_window)

    @cached_property
    def populations(self) -> pd.DataFrame:
        return analysis_populations(self.cohort, self.options.response_window, best=self.best)

    def population(self, code: str) -> np.ndarray:
        """Boolean mask over patients (``cohort.patients`` order)."""
        return self.populations[POPULATIONS[code].column].to_numpy(dtype=bool)

    @cached_property
    def last_alive(self) -> pd.DataFrame:
        return last_known_alive(self.cohort, _ctx=self)

    @cached_property
    def deaths(self) -> Hits:
        def desc(ev: pd.DataFrame) -> np.ndarray:
            cause = ev["cause"].astype(object)
            return np.where(
                cause.isna(), "death", "death (" + cause.fillna("").astype(str) + ")"
            ).astype(object)

        return self._event_rows(self._kind_mask(["death"]), TIE_ORDER["death"], desc)

    @cached_property
    def progression(self) -> Hits:
        """Every row that is evidence of relapse or progression (see module docstring)."""
        ev = self.events
        kinds = self._kind_mask(PROGRESSION_EVENTS)
        rel = self._event_rows(
            kinds,
            lambda e: e["event"].map(TIE_ORDER).to_numpy(dtype=np.int64),
            lambda e: e["event"].to_numpy(dtype=object),
        )
        resp = ev["event"].eq("response").fillna(False).to_numpy(dtype=bool) & ev["response"].isin(
            list(PROGRESSION_RESPONSES)
        ).fillna(False).to_numpy(dtype=bool)
        pd_rows = self._event_rows(
            resp,
            _RANK_PD_RESPONSE,
            lambda e: ("response assessment " + e["response"].astype(str)).to_numpy(dtype=object),
        )
        dd = self._kind_mask(["death"]) & self.is_in("cause", ["relapse"])
        deaths = self._event_rows(dd, _RANK_DISEASE_DEATH, DISEASE_DEATH)
        return Hits.concat([rel, pd_rows, deaths])

    @cached_property
    def treatment_failure(self) -> Hits:
        """No required response in the window: an event on ``efs_failure_day``."""
        best = self.best
        br = best["best_response"]
        failed = (
            (br.notna() & br.ne("NE") & ~br.isin(list(self.options.required_response)))
            .fillna(False)
            .to_numpy(dtype=bool)
        )
        pos = np.flatnonzero(failed)
        sub = best.iloc[pos]
        k = len(pos)
        return Hits(
            pos.astype(np.int64),
            np.full(k, float(self.options.efs_failure_day)),
            np.full(k, -1, dtype=np.int64),
            ("no required response (best " + sub["best_response"].astype(str) + ")").to_numpy(
                dtype=object
            ),
            np.full(k, "events", dtype=object),
            self._file_index.get_indexer(sub["source_file"].astype(str)).astype(np.int64),
            sub["source_row"].fillna(-1).to_numpy(dtype=np.int64),
            np.ones(k, dtype=bool),
        )

    @cached_property
    def first_response(self) -> np.ndarray:
        """Day of each patient's first objective response on or after day 0 (NaN: none)."""
        m = self.is_in("event", ["response"]) & self.is_in("response", OBJECTIVE_RESPONSES)
        return self._event_rows(m, 0, "first response").first_day(self.n)

    def candidates(self, kind: EventKind) -> Hits:
        if isinstance(kind, AdverseEventKind):
            ae = self.cohort.adverse_events
            sel = (
                ae["term"].eq(kind.term).fillna(False).to_numpy(dtype=bool)
                & (ae["grade"] >= kind.min_grade).fillna(False).to_numpy(dtype=bool)
                & ae["onset_day"].notna().to_numpy(dtype=bool)
            )
            sub = ae[sel]
            desc = (kind.term + " grade " + sub["grade"].astype(str)).to_numpy(dtype=object)
            return self.hits(
                sub,
                self.pos_of(sub),
                self.file_of(sub),
                sub["onset_day"].to_numpy(float),
                _RANK_OTHER,
                desc,
                "adverse_events",
            )
        if kind == "death":
            return self.deaths
        if kind == "progression":
            return self.progression
        if kind == "treatment_failure":
            return self.treatment_failure
        rank = TIE_ORDER.get(kind, _RANK_OTHER)
        return self._event_rows(self._kind_mask([kind]), rank, kind.replace("_", " "))

    def kinds(self, kinds: tuple[EventKind, ...]) -> Hits:
        return Hits.concat([self.candidates(k) for k in kinds])


#: how a death from the disease without an earlier relapse row is described
DISEASE_DEATH = "death from the disease (no earlier relapse or progression row)"


def last_known_alive(cohort: Cohort, _ctx: _Context | None = None) -> pd.DataFrame:
    """Latest day each patient is known alive, from every table (admiral's LSTALVDT).

    A death row counts too (the patient was alive until then). Patients with no dated
    row get day 0 ("no follow-up recorded"). Among rows on the same latest day, the last
    row of the file decides. Columns ``day``, ``src`` (display pointer),
    ``source_table``, ``source_file``, ``source_row``; index ``patient_id``.
    """
    ctx = _ctx or _Context(cohort, EndpointOptions())
    n = ctx.n
    day = np.full(n, -np.inf)
    table = np.full(n, "patients", dtype=object)
    file = np.full(n, None, dtype=object)
    row = np.full(n, -1, dtype=np.int64)
    what = np.full(n, "", dtype=object)
    tables = (
        ("events", cohort.events, None),
        ("adverse_events", cohort.adverse_events, "adverse event"),
        ("observations", cohort.observations, "observation"),
    )
    for name, df, label in tables:
        if df.empty:
            continue
        if name == "adverse_events":
            d = df["resolution_day"].where(df["resolution_day"].notna(), df["onset_day"])
        else:
            d = df["day"]
        d = d.to_numpy(dtype=float)
        if np.isnan(d).all():
            continue
        pos = ctx.pos_of(df)
        # latest day per patient (fmax: a missing day never wins), then the last row of
        # the file among the rows on that day: unbuffered ufunc reductions over the
        # integer positions (no sort, no hash, no copy of the table)
        top = np.full(n, -np.inf)
        np.fmax.at(top, pos, d)
        at_top = np.flatnonzero(d == top[pos])
        last_row = np.full(n, -1, dtype=np.int64)
        np.maximum.at(last_row, pos[at_top], at_top)
        wpos = np.flatnonzero(last_row >= 0)
        win = last_row[wpos]
        wday = d[win]
        better = wday >= day[wpos]  # a later table wins ties, as rows later in the file
        wpos, win, wday = wpos[better], win[better], wday[better]
        day[wpos] = wday
        table[wpos] = name
        file[wpos] = df["source_file"].iloc[win].to_numpy(dtype=object)
        row[wpos] = df["source_row"].iloc[win].fillna(-1).to_numpy(dtype=np.int64)
        what[wpos] = df["event"].iloc[win].to_numpy(dtype=object) if label is None else label
    none = ~np.isfinite(day)
    src = _display(file, row, what)
    src[none] = "no follow-up recorded"
    return pd.DataFrame(
        {
            "day": np.where(none, 0.0, np.clip(day, 0.0, None)),
            "src": src,
            "source_table": table,
            "source_file": file,
            "source_row": _rows(row),
        },
        index=ctx.ids,
    )


def evaluate(
    defn: EndpointDefinition,
    cohort: Cohort,
    options: EndpointOptions | None = None,
    _ctx: _Context | None = None,
) -> pd.DataFrame:
    """One endpoint definition on a cohort: one row per patient of its population."""
    options = options or EndpointOptions()
    ctx = _ctx or _Context(cohort, options)
    member = ctx.population(defn.population)
    origin = None
    if defn.origin == "first_response":
        origin = ctx.first_response
        member = member & ~np.isnan(origin)
    kinds = tuple(
        k
        for k in defn.events
        if not (k == "treatment_failure" and not options.efs_nonresponse_event)
    )
    cands = ctx.kinds(kinds)
    if defn.competing:
        cands = Hits.concat([cands, ctx.kinds(defn.competing).with_flag(False)])
    first = cands.first(ctx.n, origin)
    idx = np.flatnonzero(member)
    f = first[idx]
    has = f >= 0
    fi = np.maximum(f, 0)
    la = ctx.last_alive
    la_day = la["day"].to_numpy(float)[idx]
    is_event = has & cands.flag[fi] if len(cands) else np.zeros(len(idx), bool)
    is_comp = has & ~is_event
    pick = (lambda a, b: np.where(has, a[fi], b)) if len(cands) else (lambda a, b: b)
    day = pick(cands.day, la_day)
    desc = pick(cands.desc, np.full(len(idx), "", dtype=object))
    table = pick(cands.table, la["source_table"].to_numpy(object)[idx])
    files = np.asarray(ctx.files + [None], dtype=object)
    la_file = la["source_file"].to_numpy(object)[idx]
    file = np.where(has, files[cands.file[fi]], la_file) if len(cands) else la_file.copy()
    la_row = la["source_row"].fillna(-1).to_numpy(np.int64)[idx]
    row = pick(cands.row, la_row)
    src = la["src"].to_numpy(object)[idx]
    if len(cands) and has.any():  # pointers made only for the rows shown
        src[has] = cands.display_at(ctx.files, fi[has])
    censor_desc = np.where(has, "", "censored at last known alive").astype(object)

    censor_kinds = list(defn.censors)
    if defn.censor_on_sct:
        censor_kinds += [
            k
            for k, on in (
                ("sct", options.censor_at_sct),
                ("new_therapy", options.censor_at_new_therapy),
            )
            if on
        ]
    if censor_kinds:
        cc = ctx.kinds(tuple(censor_kinds))
        cf = cc.first(ctx.n, origin)[idx]
        ok = cf >= 0
        ci = np.maximum(cf, 0)
        cday = np.where(ok, cc.day[ci], np.nan) if len(cc) else np.full(len(idx), np.nan)
        earlier = ok & np.where(has, cday < day, cday <= day)
        if earlier.any():
            day = np.where(earlier, cday, day)
            is_event &= ~earlier
            is_comp &= ~earlier
            desc = np.where(earlier, "", desc)
            censor_desc = np.where(earlier, "censored at " + cc.desc[ci].astype(str), censor_desc)
            table = np.where(earlier, cc.table[ci], table)
            file = np.where(earlier, files[cc.file[ci]], file)
            row = np.where(earlier, cc.row[ci], row)
            src[earlier] = cc.display_at(ctx.files, ci[earlier])
    censor_desc = np.where(is_comp, "competing event: " + desc.astype(str), censor_desc)
    event_desc = np.where(is_event, desc, "")
    start = 0.0 if origin is None else origin[idx]
    time = np.clip(day - start, 0.0, None)
    out = pd.DataFrame(
        {
            "patient_id": ctx.ids.to_numpy(dtype=object)[idx],
            "endpoint": defn.name,
            "time_days": time.astype(float),
            "event": is_event.astype(int),
            "event_desc": event_desc.astype(object),
            "censor_desc": censor_desc.astype(object),
            "source": src.astype(object),
            "cause": pd.array(np.full(len(idx), None), dtype="Int64"),
            "source_table": table.astype(object),
            "source_file": file.astype(object),
            "source_row": _rows(row),
        }
    )
    if defn.competing:
        cause = np.where(is_event, defn.event_cause, np.where(is_comp, defn.competing_cause, 0))
        out["cause"] = pd.array(cause, dtype="Int64")
    return out


def _derive(name: str):
    defn = ENDPOINTS[name]

    def derive(cohort: Cohort, options: EndpointOptions | None = None) -> pd.DataFrame:
        return evaluate(defn, cohort, options)

    derive.__name__ = f"derive_{name.lower()}"
    derive.__doc__ = f"{defn.label} ({name}): {defn.text} Source: {defn.source}."
    return derive


derive_os = _derive("OS")
derive_pfs = _derive("PFS")
derive_efs = _derive("EFS")
derive_dfs = _derive("DFS")
derive_dor = _derive("DOR")


def derive_competing(cohort: Cohort, options: EndpointOptions | None = None) -> pd.DataFrame:
    """CIR and NRM rows (competing risks of each other; Gooley et al., Stat Med 1999).

    Both rows of a patient share one ``cause`` coding: 1 relapse/progression first, 2
    death without evidence of relapse or progression first, 0 censored.
    """
    options = options or EndpointOptions()
    ctx = _Context(cohort, options)
    return pd.concat(
        [evaluate(ENDPOINTS[n], cohort, options, ctx) for n in ("CIR", "NRM")],
        ignore_index=True,
    )


DERIVATIONS = {
    "OS": derive_os,
    "PFS": derive_pfs,
    "EFS": derive_efs,
    "DFS": derive_dfs,
    "DOR": derive_dor,
}


def derive_endpoints(
    cohort: Cohort, options: EndpointOptions | None = None, endpoints: list[str] | None = None
) -> pd.DataFrame:
    """All time-to-event endpoints, one row per patient of each endpoint's population.

    Columns ``COLUMNS``: ``patient_id, endpoint, time_days, event (1/0), event_desc,
    censor_desc, source, cause`` (cause codes only for endpoints with a competing event:
    CIR/NRM) and the provenance ``source_table, source_file, source_row``. Definitions:
    ``cartrial.endpoints.definitions.ENDPOINTS`` plus ``options.definitions``. For a wide
    per-patient table only the endpoints it states (e.g. OS from
    ``followup_months``/``os_event``) are returned, for the safety population: relapse and
    SCT dates are not in such tables, so PFS-type endpoints cannot be derived honestly.
    """
    options = options or EndpointOptions()
    defs = {**ENDPOINTS, **dict(options.definitions)}
    wanted = [e.upper() for e in endpoints] if endpoints else list(defs)
    unknown = [e for e in wanted if e not in defs]
    if unknown:
        raise ValueError(
            f"unknown endpoint(s) {', '.join(unknown)}; expected one of {', '.join(defs)}"
        )
    if cohort.layout == "wide":
        return _given_endpoints(cohort, options, wanted)
    ctx = _Context(cohort, options)
    parts = [evaluate(defs[e], cohort, options, ctx) for e in wanted]
    return pd.concat(parts, ignore_index=True)[COLUMNS]


def _given_endpoints(cohort: Cohort, options: EndpointOptions, wanted: list[str]) -> pd.DataFrame:
    given = cohort.given_endpoints
    if given is None or given.empty:
        return pd.DataFrame(columns=COLUMNS)
    pops = analysis_populations(cohort, options.response_window)
    safety = set(pops.loc[pops["safety"].to_numpy(dtype=bool), "patient_id"])
    out = given[given["patient_id"].astype(str).isin(safety)].copy()
    out["cause"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["event"] = out["event"].astype(int)
    for col, default in (("source_table", "patients"), ("source_file", ""), ("source_row", pd.NA)):
        if col not in out:
            out[col] = default
    out["source_row"] = out["source_row"].astype("Int64")
    out = out[out["endpoint"].isin(wanted)]
    return out[COLUMNS].reset_index(drop=True)

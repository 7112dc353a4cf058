"""Mapping typed REDCap instruments to cohort tables through an editable YAML file.

The mapping (``templates/cd7_cart_mapping.yaml`` documents every key) says which
instrument rows become ``patients``, ``events``, ``adverse_events`` and ``observations``
rows and which field fills which cohort column. The converted tables are validated by
``cartrial.cohort.cohort_from_frames`` — the same rules as a folder of CSVs — and every
problem found there is reported back against the REDCap export: records file, line,
field, record, event, instrument and instance. The cohort's ``source_file``/``source_row``
point at the REDCap records file and line, so endpoint ``source`` pointers trace back.

The mapping file itself is checked against a schema (``_TOP_KEYS``, ``_PATIENT_KEYS``,
``_RULE_KEYS``): an unknown key (``colums:``), a key in the wrong block, a field that is
not in the dictionary or a recode of an unmapped column is an error naming the mapping
file, its line and the key path, with the closest known name. ``values`` recodes and
``scale`` factors apply to every table; ``missing_codes``, ``queries`` (cells under a data
query, read as missing), ``identifiers`` and ``not_infused_origin`` are top-level keys.
Fields with ``Identifier? = y`` and declared identifiers are listed in
``Cohort.identifiers`` so every analysis output leaves them out.

``cohort_to_redcap`` does the reverse for the same mapping: it writes a cohort as a
REDCap raw records export (e.g. to migrate a trial's tables into a REDCap project built
from the shipped template).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cartrial.cohort import cohort_from_frames, vocab
from cartrial.cohort.errors import CohortError, Problem
from cartrial.cohort.model import TABLES, Cohort
from cartrial.cohort.vocab import canonical
from cartrial.io.redcap.instruments import (
    Dictionary,
    RedcapExport,
    checkbox_column,
    read_dictionary,
    read_event_mapping,
    read_export,
    read_project_info,
    read_repeating,
)

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
TEMPLATE_FILES = {
    "dictionary": TEMPLATES / "cd7_cart_redcap_dictionary.csv",
    "event_mapping": TEMPLATES / "cd7_cart_event_mapping.csv",
    "repeating": TEMPLATES / "cd7_cart_repeating_instruments.csv",
    "mapping": TEMPLATES / "cd7_cart_mapping.yaml",
    "example_records": TEMPLATES / "cd7_cart_example_records.csv",
}
SPECIAL_SOURCES = ("redcap_data_access_group", "redcap_event_name")
#: cohort columns holding dates, and the day column the loader turns them into
DATE_TO_DAY = {"date": "day", "onset_date": "onset_day", "resolution_date": "resolution_day"}
#: days-since-infusion windows used by ``cohort_to_redcap`` to place a repeating form on
#: the template's events (the first designated event whose window holds the day)
TEMPLATE_EVENT_WINDOWS = {
    "screening_arm_1": (-np.inf, 0.0),
    "infusion_arm_1": (0.0, 7.0),
    "day28_arm_1": (7.0, 36.0),
    "followup_arm_1": (36.0, np.inf),
}


@dataclass(frozen=True)
class Rule:
    """One mapping block: instrument rows -> rows of a cohort table."""

    table: str
    instrument: str
    columns: dict[str, str]
    when: str | None = None
    set: dict[str, Any] | None = None
    values: dict[str, dict[str, Any]] | None = None
    redcap_events: tuple[str, ...] = ()
    key: str = ""  # where it is in the mapping file, for messages
    scale: dict[str, float] | None = None


@dataclass(frozen=True)
class Mapping:
    patient_instruments: tuple[str, ...]
    patient_columns: dict[str, str]
    rules: tuple[Rule, ...]
    file: str
    patient_values: dict[str, dict[str, Any]] = field(default_factory=dict)
    patient_scale: dict[str, float] = field(default_factory=dict)
    missing_codes: dict[str, str] = field(default_factory=dict)
    identifiers: tuple[str, ...] = ()  # cohort patients columns declared identifiers
    not_infused_origin: str | None = "enrollment_date"
    queries: tuple[dict, ...] = ()


# --------------------------------------------------------------------------- mapping schema

_SCALAR = (str, int, float, bool)
_RULE_KEYS = {
    "instrument": "the REDCap form the rows come from",
    "when": "a field: a row becomes a cohort row only when it is filled",
    "redcap_events": "a list of unique event names",
    "set": "constant cohort values {column: value}",
    "columns": "cohort column -> REDCap field",
    "values": "recodes {column: {label: value}}",
    "scale": "factors {column: number} (e.g. dose_per_kg: 1.0e6, mrd_value: 0.01)",
}
_PATIENT_KEYS = {
    "instruments": "a list of non-repeating forms merged into one row per record",
    "columns": "cohort column -> REDCap field",
    "values": "recodes {column: {label: value}}",
    "scale": "factors {column: number}",
}
_TOP_KEYS = {
    "version": "the mapping format version (1)",
    "patients": "the patients block",
    "events": "a list of blocks",
    "adverse_events": "a list of blocks",
    "observations": "a list of blocks",
    "missing_codes": "the project's missing-data codes {code: label}",
    "identifiers": "a list of cohort patients columns that are direct identifiers",
    "not_infused_origin": "the patients date column that is day 0 of a patient never infused",
    "queries": "a list of cells under a data query, read as missing",
}
_QUERY_KEYS = {
    "record": "a record id",
    "event": "a unique event name",
    "instrument": "the repeating instrument",
    "instance": "a repeat instance number",
    "field": "a field",
    "reason": "why (the query text)",
}


class _Checker:
    """Walks the YAML node tree (with line numbers) and collects problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def bad(self, node, key: str, value: object, expected: str) -> None:
        line = None if node is None else node.start_mark.line + 1
        self.problems.append(
            Problem(self.file, line, key, None if value is None else str(value), expected)
        )

    def keys(self, node, key: str, allowed: dict[str, str]) -> dict[str, Any]:
        """A mapping node's {key: value node}; unknown keys are problems (with a suggestion)."""
        import difflib

        import yaml

        if not isinstance(node, yaml.MappingNode):
            self.bad(
                node, key, getattr(node, "value", None), "a mapping of keys: " + ", ".join(allowed)
            )
            return {}
        out = {}
        for k, v in node.value:
            name = str(k.value)
            if name not in allowed:
                near = difflib.get_close_matches(name, list(allowed), n=1)
                self.bad(
                    k,
                    f"{key}.{name}" if key else name,
                    name,
                    (f"a known key (did you mean '{near[0]}'?); " if near else "a known key; ")
                    + "allowed here: "
                    + ", ".join(allowed),
                )
                continue
            out[name] = v
        return out

    def seq(self, node, key: str) -> list:
        import yaml

        if not isinstance(node, yaml.SequenceNode):
            self.bad(node, key, getattr(node, "value", None), "a list")
            return []
        return list(node.value)

    def scalars(self, node, key: str, kinds=_SCALAR, what: str = "a value") -> dict:
        """A flat {scalar: scalar} mapping node -> (python dict, {key: node})."""
        import yaml

        if not isinstance(node, yaml.MappingNode):
            self.bad(node, key, getattr(node, "value", None), f"a mapping {{name: {what}}}")
            return {}
        out = {}
        for k, v in node.value:
            py = _construct(v)
            if not isinstance(v, yaml.ScalarNode) or not isinstance(py, kinds):
                self.bad(v, f"{key}.{k.value}", getattr(v, "value", None), what)
                continue
            out[str(k.value)] = (py, v)
        return out


def _construct(node) -> Any:
    """The Python value of a YAML node."""
    import yaml

    return None if node is None else yaml.safe_load(yaml.serialize(node))


def load_mapping(path: str | os.PathLike[str] | None, dictionary: Dictionary) -> Mapping:
    """Read and check a mapping YAML against its schema and the dictionary (default: the
    CD7 template). Every problem names the file, the line and the key (``patients.colums``,
    ``events[2].columns.date``) with what was expected."""
    import yaml

    file = str(path or TEMPLATE_FILES["mapping"])
    if not Path(file).is_file():
        raise CohortError([Problem(file, None, None, None, "an existing mapping YAML file")], file)
    try:
        root = yaml.compose(Path(file).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CohortError(
            [
                Problem(
                    file, None if mark is None else mark.line + 1, None, None, f"valid YAML ({exc})"
                )
            ],
            file,
        ) from exc
    c = _Checker(file)
    top = c.keys(root, "", _TOP_KEYS) if root is not None else {}
    if "patients" not in top:
        raise CohortError(
            c.problems
            + [Problem(file, None, "patients", None, "a mapping with a 'patients' block")],
            file,
        )
    forms = set(dictionary.forms)
    fields = set(dictionary.fields) | set(SPECIAL_SOURCES)

    def check_field(node, key: str, value: object) -> None:
        if not isinstance(value, str) or value not in fields:
            import difflib

            near = difflib.get_close_matches(str(value), list(fields), n=1)
            c.bad(
                node,
                key,
                value,
                f"a field of the data dictionary {dictionary.file}"
                + (f" (did you mean '{near[0]}'?)" if near else ""),
            )

    def columns(node, key: str) -> dict[str, str]:
        out = {}
        for col, (fld, vnode) in c.scalars(node, key, (str,), "a REDCap field name").items():
            check_field(vnode, f"{key}.{col}", fld)
            out[col] = fld
        return out

    def recodes(node, key: str, cols: dict[str, str]) -> dict[str, dict[str, Any]]:
        out = {}
        for col, vnode in c.keys(node, key, {k: "" for k in _names(node)}).items():
            if col not in cols:
                c.bad(
                    vnode, f"{key}.{col}", col, "a cohort column mapped in 'columns' of this block"
                )
            out[col] = {
                str(k): v
                for k, (v, _n) in c.scalars(
                    vnode, f"{key}.{col}", (*_SCALAR, type(None)), "a value or null"
                ).items()
            }
        return out

    def scales(node, key: str, cols: dict[str, str]) -> dict[str, float]:
        out = {}
        for col, (v, vnode) in c.scalars(node, key, _SCALAR, "a number").items():
            try:
                v = float(v)
            except ValueError:
                c.bad(vnode, f"{key}.{col}", v, "a number (e.g. 1.0e+6 or 0.01)")
                continue
            if col not in cols:
                c.bad(
                    vnode, f"{key}.{col}", col, "a cohort column mapped in 'columns' of this block"
                )
            out[col] = float(v)
        return out

    pat = c.keys(top["patients"], "patients", _PATIENT_KEYS)
    instruments: list[str] = []
    for n in c.seq(pat["instruments"], "patients.instruments") if "instruments" in pat else []:
        if n.value not in forms:
            c.bad(
                n,
                "patients.instruments",
                n.value,
                f"an instrument of the data dictionary {dictionary.file}",
            )
        instruments.append(str(n.value))
    pcols = columns(pat["columns"], "patients.columns") if "columns" in pat else {}
    pcols.setdefault("patient_id", dictionary.record_field)
    pvalues = recodes(pat["values"], "patients.values", pcols) if "values" in pat else {}
    pscale = scales(pat["scale"], "patients.scale", pcols) if "scale" in pat else {}
    rules = []
    for table in TABLES[1:]:
        if table not in top:
            continue
        for k, bnode in enumerate(c.seq(top[table], table)):
            key = f"{table}[{k}]"
            b = c.keys(bnode, key, _RULE_KEYS)
            inode = b.get("instrument")
            ins = _construct(inode) if inode is not None else None
            if ins not in forms:
                c.bad(
                    inode or bnode,
                    f"{key}.instrument",
                    ins,
                    f"an instrument of the data dictionary {dictionary.file}",
                )
                continue
            cols = columns(b["columns"], f"{key}.columns") if "columns" in b else {}
            cols.setdefault("patient_id", dictionary.record_field)
            when = None
            if "when" in b:
                when = _construct(b["when"])
                check_field(b["when"], f"{key}.when", when)
            st = (
                {col: v for col, (v, _n) in c.scalars(b["set"], f"{key}.set").items()}
                if "set" in b
                else {}
            )
            events = (
                [str(n.value) for n in c.seq(b["redcap_events"], f"{key}.redcap_events")]
                if "redcap_events" in b
                else []
            )
            rules.append(
                Rule(
                    table=table,
                    instrument=ins,
                    columns=cols,
                    when=when,
                    set=st,
                    values=recodes(b["values"], f"{key}.values", cols) if "values" in b else {},
                    redcap_events=tuple(events),
                    key=key,
                    scale=scales(b["scale"], f"{key}.scale", cols) if "scale" in b else {},
                )
            )
    codes = (
        {k: str(v) for k, (v, _n) in c.scalars(top["missing_codes"], "missing_codes").items()}
        if "missing_codes" in top
        else {}
    )
    idents = []
    for n in c.seq(top["identifiers"], "identifiers") if "identifiers" in top else []:
        if n.value not in pcols:
            c.bad(n, "identifiers", n.value, "a cohort column mapped under patients.columns")
        idents.append(str(n.value))
    origin = "enrollment_date"
    if "not_infused_origin" in top:
        origin = _construct(top["not_infused_origin"])
        if origin is not None and origin not in pcols:
            c.bad(
                top["not_infused_origin"],
                "not_infused_origin",
                origin,
                "a date column mapped under patients.columns (e.g. enrollment_date), or null",
            )
    queries = []
    for k, qnode in enumerate(c.seq(top["queries"], "queries") if "queries" in top else []):
        q = {name: _construct(v) for name, v in c.keys(qnode, f"queries[{k}]", _QUERY_KEYS).items()}
        for need in ("record", "field"):
            if need not in q:
                c.bad(qnode, f"queries[{k}].{need}", None, _QUERY_KEYS[need])
        q.update(file=file, line=qnode.start_mark.line + 1, key=f"queries[{k}]")
        queries.append(q)
    if c.problems:
        raise CohortError(c.problems, file)
    return Mapping(
        patient_instruments=tuple(instruments),
        patient_columns=pcols,
        rules=tuple(rules),
        file=file,
        patient_values=pvalues,
        patient_scale=pscale,
        missing_codes=codes,
        identifiers=tuple(idents),
        not_infused_origin=origin,
        queries=tuple(queries),
    )


def _names(node) -> list[str]:
    import yaml

    return [str(k.value) for k, _v in node.value] if isinstance(node, yaml.MappingNode) else []


# --------------------------------------------------------------------------- REDCap -> cohort


def _source(table: pd.DataFrame, fld: str, rid: str) -> pd.Series:
    return table[rid] if fld == rid else table[fld]


def _patients(export: RedcapExport, m: Mapping) -> tuple[pd.DataFrame, list[dict]]:
    rid = export.dictionary.record_field
    ids = pd.Index(export.records, name=rid)
    merged = pd.DataFrame(index=ids)
    where: dict[str, pd.Series] = {}
    problems: list[Problem] = []
    for ins in m.patient_instruments:
        t = export.instruments[ins]
        dup = t[rid].duplicated(keep="first")
        for _, r in t[dup].iterrows():
            problems.append(
                Problem(
                    export.records_file,
                    int(r["source_row"]),
                    rid,
                    str(r[rid]),
                    f"at most one {ins!r} form per record (record {r[rid]}, event "
                    f"{r['redcap_event_name']}); map a repeated form as events",
                )
            )
        t = t[~dup].set_index(rid)
        for col in t.columns:
            if col in export.dictionary.fields and export.dictionary.fields[col].form == ins:
                merged[col] = t[col].reindex(ids)
                where[col] = t["source_row"].reindex(ids)
                where[col + "@event"] = t["redcap_event_name"].reindex(ids)
    if problems:
        raise CohortError(problems, export.records_file)
    out = pd.DataFrame(index=range(len(ids)))
    for col, fld in m.patient_columns.items():
        if fld == rid:
            out[col] = list(ids)
        elif fld == "redcap_data_access_group":
            out[col] = pd.array([export.dag.get(r) for r in ids], dtype="string")
        elif fld in merged.columns:
            out[col] = merged[fld].to_numpy()
        else:
            out[col] = pd.NA
    _recode(out, m.patient_values, m.patient_scale)
    prov = []
    for i, r in enumerate(ids):
        row_of = {col: where[fld].iloc[i] for col, fld in m.patient_columns.items() if fld in where}
        event_of = {
            col: where[fld + "@event"].iloc[i]
            for col, fld in m.patient_columns.items()
            if fld in where
        }
        prov.append(
            {
                "record": r,
                "rows": row_of,
                "events": event_of,
                "fields": m.patient_columns,
                "instrument": "/".join(m.patient_instruments),
                "instance": None,
            }
        )
    return out, prov


def _rule_rows(export: RedcapExport, rule: Rule) -> tuple[pd.DataFrame, list[dict]]:
    rid = export.dictionary.record_field
    t = export.instruments[rule.instrument]
    if rule.redcap_events:
        t = t[t["redcap_event_name"].isin(list(rule.redcap_events))]
    if rule.when is not None:
        t = t[t[rule.when].notna()]
    out = pd.DataFrame(index=t.index)
    for col, fld in rule.columns.items():
        out[col] = t[rid] if fld == rid else t[fld]
    for col, value in (rule.set or {}).items():
        const = pd.Series(value, index=t.index)
        out[col] = out[col].astype(object).where(out[col].notna(), const) if col in out else const
    _recode(out, rule.values or {}, rule.scale or {})
    out["redcap_event"] = t["redcap_event_name"]
    out["redcap_instance"] = t["redcap_repeat_instance"]
    prov = [
        {
            "record": r,
            "row": int(s),
            "event": e,
            "instance": (None if pd.isna(n) else int(n)),
            "fields": rule.columns,
            "instrument": rule.instrument,
        }
        for r, s, e, n in zip(
            t[rid],
            t["source_row"],
            t["redcap_event_name"],
            t["redcap_repeat_instance"],
            strict=True,
        )
    ]
    return out.reset_index(drop=True), prov


def _recode(out: pd.DataFrame, values: dict[str, dict[str, Any]], scale: dict[str, float]) -> None:
    """Apply a block's ``values`` recodes (label -> value) and ``scale`` factors in place."""
    for col, recode in values.items():
        if col in out:
            rc = {str(k): v for k, v in recode.items()}
            out[col] = out[col].map(lambda v, rc=rc: rc.get(str(v), v) if pd.notna(v) else v)
    for col, factor in scale.items():
        if col in out:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64") * factor


def _translate(
    exc: CohortError, export: RedcapExport, source: str, prov: dict[str, list[dict]]
) -> CohortError:
    """Re-address the cohort loader's problems to the REDCap export (file, line, field)."""
    problems = []
    for p in exc.problems:
        table = p.file.rsplit(":", 1)[-1] if p.file.startswith(source + ":") else None
        if table not in prov or p.row is None or not 2 <= p.row < len(prov[table]) + 2:
            problems.append(p)
            continue
        info = prov[table][p.row - 2]
        col = p.column or ""
        date_col = {v: k for k, v in DATE_TO_DAY.items()}.get(col, col)
        fld = info["fields"].get(col) or info["fields"].get(date_col) or col
        if table == "patients":
            row = info["rows"].get(col) or info["rows"].get(date_col)
            event = info["events"].get(col) or info["events"].get(date_col)
        else:
            row, event = info["row"], info["event"]
        ctx = f"record {info['record']}"
        if event:
            ctx += f", event {event}"
        ctx += f", instrument {info['instrument']}"
        if info.get("instance"):
            ctx += f" instance {info['instance']}"
        problems.append(
            Problem(
                export.records_file,
                None if row is None or pd.isna(row) else int(row),
                fld,
                p.value,
                f"{p.expected} ({ctx}; cohort {table}.{col})",
            )
        )
    return CohortError(problems, export.records_file)


def export_to_cohort(export: RedcapExport, mapping: Mapping, provenance: bool = True) -> Cohort:
    """Apply a mapping to a typed export and validate the result as a cohort."""
    patients, pprov = _patients(export, mapping)
    frames: dict[str, pd.DataFrame | None] = {"patients": patients}
    prov: dict[str, list[dict]] = {"patients": pprov}
    for table in TABLES[1:]:
        parts = [_rule_rows(export, r) for r in mapping.rules if r.table == table]
        parts = [p for p in parts if len(p[0])]
        if not parts:
            frames[table] = None
            continue
        df = pd.concat([p[0] for p in parts], ignore_index=True)
        if not provenance:
            df = df.drop(columns=["redcap_event", "redcap_instance"])
        frames[table] = df
        prov[table] = [x for p in parts for x in p[1]]
    source = f"redcap:{export.records_file}"
    _missing_columns(export, mapping, frames, prov)
    declared = [
        col
        for col, fld in mapping.patient_columns.items()
        if fld in export.dictionary.fields and export.dictionary.fields[fld].identifier
    ]
    try:
        cohort = cohort_from_frames(
            frames["patients"],
            frames["events"],
            frames["adverse_events"],
            frames["observations"],
            source=source,
            not_infused_origin=mapping.not_infused_origin,
            identifiers=tuple(dict.fromkeys([*declared, *mapping.identifiers])),
        )
    except CohortError as exc:
        raise _translate(exc, export, source, prov) from None
    # point provenance at the REDCap records file and line
    updates = {}
    for table in TABLES:
        df = cohort.table(table)
        if table not in prov or df.empty:
            continue
        df = df.copy()
        if table == "patients":
            first = [
                min((int(v) for v in info["rows"].values() if pd.notna(v)), default=pd.NA)
                for info in prov[table]
            ]
            df["source_row"] = pd.array(first, dtype="Int64")
        else:
            df["source_row"] = pd.array([info["row"] for info in prov[table]], dtype="Int64")
        df["source_file"] = pd.Series(export.records_file, index=df.index, dtype="string")
        updates[table] = df
    return replace(
        cohort, source=export.records_file, notes=cohort.notes + _missing_notes(export), **updates
    )


def _missing_columns(export: RedcapExport, m: Mapping, frames: dict, prov: dict) -> None:
    """Add ``<column>_missing`` (the missing-data code) beside each mapped column that had one."""
    miss = export.missing
    if miss.empty:
        return
    # "code (label)": text, never read back as a number (-999)
    text = [
        c if c == "QUERY" else f"{c} ({lab})"
        for c, lab in zip(miss["code"].astype(str), miss["label"].astype(str), strict=True)
    ]
    by_record = dict(
        zip(zip(miss["record"].astype(str), miss["field"], strict=True), text, strict=True)
    )
    by_row = dict(
        zip(zip(miss["source_row"].astype(int), miss["field"], strict=True), text, strict=True)
    )
    for table, df in frames.items():
        if df is None or table not in prov:
            continue
        for i, info in enumerate(prov[table]):
            for col, fld in info["fields"].items():
                if table == "patients":
                    code = by_record.get((str(info["record"]), fld))
                else:
                    code = by_row.get((int(info["row"]), fld))
                if code is None:
                    continue
                name = f"{col}_missing"
                if name not in df.columns:
                    df[name] = pd.Series(pd.NA, index=df.index, dtype="string")
                df.loc[df.index[i], name] = code


def _missing_notes(export: RedcapExport) -> tuple[str, ...]:
    """One note per field: how many cells held each missing-data code."""
    miss = export.missing
    if miss.empty:
        return ()
    notes = []
    for fld, grp in miss.groupby("field", sort=False):
        counts = grp.groupby(["code", "label"], sort=False).size()
        notes.append(
            f"REDCap field {fld}: read as missing "
            + ", ".join(f"{n} × {code} ({label})" for (code, label), n in counts.items())
        )
    return tuple(notes)


def read_redcap(
    records_csv: str | os.PathLike[str],
    dictionary_csv: str | os.PathLike[str] | None,
    event_mapping_csv: str | os.PathLike[str] | None = None,
    repeating_csv: str | os.PathLike[str] | None = None,
    mapping_yaml: str | os.PathLike[str] | None = None,
    provenance: bool = True,
    project_info: str | os.PathLike[str] | None = None,
) -> Cohort:
    """Import a REDCap export as a validated ``Cohort``.

    Missing-data codes come from ``project_info`` (REDCap's project-information export,
    ``missing_data_codes``) and the mapping's ``missing_codes`` (which wins); a cell holding
    one is missing, with the code kept in a ``<column>_missing`` column and in
    ``cohort.notes``. Fields marked ``Identifier? = y`` and columns in the mapping's
    ``identifiers`` are listed in ``cohort.identifiers``.

    ``mapping_yaml`` defaults to the shipped CD7 CAR-T mapping. The data access group
    becomes ``patients.site`` in that mapping. With ``provenance`` the events, adverse
    events and observations keep ``redcap_event`` and ``redcap_instance`` columns; every
    table's ``source_file``/``source_row`` is the records file and its line.
    Raises ``CohortError`` (file, line, field, record and event of every problem).
    """
    d = read_dictionary(dictionary_csv)
    mapping = load_mapping(mapping_yaml, d)
    codes = {**read_project_info(project_info), **mapping.missing_codes}
    export = read_export(
        records_csv,
        dictionary_csv,
        event_mapping_csv,
        repeating_csv,
        missing_codes=codes,
        queries=list(mapping.queries),
        dictionary=d,
    )
    return export_to_cohort(export, mapping, provenance=provenance)


def find_export_files(folder: str | os.PathLike[str]) -> dict[str, Path | None]:
    """Locate the files of an export folder by name.

    records: ``*records*.csv`` or ``*DATA*.csv``; dictionary: ``*dictionary*.csv`` or
    ``*DataDictionary*.csv``; event mapping: ``*event*mapping*.csv`` or
    ``*InstrumentDesignations*.csv``; repeating: ``*repeating*.csv``; mapping: ``*.yaml``.
    """
    p = Path(folder)
    files = sorted(p.glob("*"))

    def pick(*needles: str, ext: tuple[str, ...] = (".csv",)) -> Path | None:
        for f in files:
            name = f.name.lower()
            if f.suffix.lower() in ext and any(n in name for n in needles):
                return f
        return None

    return {
        "dictionary": pick("dictionary", "metadata"),
        "event_mapping": pick(
            "event_mapping",
            "eventmapping",
            "instrumentdesignation",
            "designation",
            "formeventmapping",
        ),
        "repeating": pick("repeating"),
        "records": pick("records", "_data_", "data.csv", "export"),
        "mapping": pick("mapping", ext=(".yaml", ".yml")),
        "project_info": pick("projectinfo", "project_info", "project-info", ext=(".csv", ".json")),
        "odm": pick("odm", "cdisc", ext=(".xml",)),
    }


# --------------------------------------------------------------------------- cohort -> REDCap


def _vocabularies() -> list:
    return [
        vocab.SEX,
        vocab.PRODUCT_SOURCES,
        vocab.RESPONSES,
        vocab.AE_TERMS,
        vocab.EVENTS,
        vocab.CD7_STATUS,
        vocab.DEATH_CAUSES,
        vocab.GRADING_SYSTEMS,
        vocab.MRD,
        {k: a for k, (a, _u) in vocab.ANALYTES.items()},
    ]


def _choice_code(choices: dict[str, str], value: str) -> str | None:
    """The code whose label is ``value`` itself or a vocabulary spelling of it ("Female" ~ F)."""
    for code, lab in choices.items():
        if lab.lower() == value.lower():
            return code
    for code, lab in choices.items():
        for v in _vocabularies():
            if canonical(lab, v) is not None and canonical(lab, v) == canonical(value, v):
                return code
    return None


def _encode(value: Any, fld, d: Dictionary) -> str:
    """A typed value as the raw export writes it (choice labels -> codes)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if fld.type in ("yesno", "truefalse"):
        return "1" if bool(value) and str(value).lower() not in ("no", "false", "0") else "0"
    if fld.kind == "choice":
        code = _choice_code(fld.choices, str(value))
        if code is None:
            raise ValueError(
                f"value {value!r} is not a choice label of field {fld.name!r}: "
                + ", ".join(fld.choices.values())
            )
        return code
    if fld.kind in ("date", "datetime"):
        return pd.Timestamp(value).strftime("%Y-%m-%d")
    if fld.kind == "integer":
        return str(int(round(float(value))))
    if isinstance(value, float | np.floating):
        v = float(value)
        return str(int(v)) if v.is_integer() else repr(v)
    return str(value)


def cohort_to_redcap(
    cohort: Cohort,
    dictionary_csv: str | os.PathLike[str] | None = None,
    event_mapping_csv: str | os.PathLike[str] | None = None,
    repeating_csv: str | os.PathLike[str] | None = None,
    mapping_yaml: str | os.PathLike[str] | None = None,
    event_windows: dict[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """Write a cohort as a REDCap raw records export (defaults: the CD7 template).

    Days become dates from ``patients.infusion_date`` (required for dated rows); a
    repeating form is placed on the first designated event whose ``event_windows`` range
    [lo, hi) holds the row's day; non-repeating forms (e.g. ``outcome``) hold one row per
    record, so a second relapse or death of one patient is an error.
    """
    d = read_dictionary(dictionary_csv or TEMPLATE_FILES["dictionary"])
    designations = read_event_mapping(
        event_mapping_csv or (TEMPLATE_FILES["event_mapping"] if dictionary_csv is None else None),
        d,
    )
    repeat_forms = {
        f
        for _e, f in read_repeating(
            repeating_csv or (TEMPLATE_FILES["repeating"] if dictionary_csv is None else None), d
        )
    }
    m = load_mapping(mapping_yaml, d)
    windows = event_windows or TEMPLATE_EVENT_WINDOWS
    rid = d.record_field
    events_of = {}
    for form in d.forms:
        events_of[form] = [e for e, fs in (designations or {"": d.forms}).items() if form in fs]
    event_order = list(designations) if designations else [""]
    pts = cohort.patients.set_index("patient_id")
    infusion = pd.to_datetime(pts["infusion_date"]) if "infusion_date" in pts else None
    rows: dict[tuple, dict[str, str]] = {}
    dag = pts["site"] if "site" in pts else None

    def put(
        record: str, event: str, form: str, instance: int | None, values: dict[str, str]
    ) -> None:
        key = (record, event, form if instance else "", instance or 0)
        row = rows.setdefault(key, {})
        for k, v in values.items():
            if v != "" and row.get(k, "") not in ("", v):
                raise ValueError(
                    f"record {record}: field {k!r} of form {form!r} on event "
                    f"{event!r} would hold two values ({row[k]!r}, {v!r}); a "
                    "non-repeating form holds one row per record"
                )
            if v != "":
                row[k] = v
        if values:
            row[f"{form}_complete"] = "2"

    def as_date(pid: str, day: Any) -> object:
        if day is None or pd.isna(day):
            return None
        if infusion is None or pd.isna(infusion.get(pid)):
            raise ValueError(f"patient {pid}: a dated row needs patients.infusion_date")
        return infusion[pid] + pd.Timedelta(days=float(day))

    def event_for(form: str, day: Any) -> str:
        evs = events_of[form]
        if not evs:
            raise ValueError(f"form {form!r} is designated for no event")
        if day is not None and not pd.isna(day):
            for e in evs:
                lo, hi = windows.get(e, (np.nan, np.nan))
                if lo <= float(day) < hi:
                    return e
        return evs[-1] if day is not None and not pd.isna(day) else evs[0]

    # patients: each field on the first event its form is designated for
    for pid, prow in pts.iterrows():
        for col, fld in m.patient_columns.items():
            if fld in (rid, *SPECIAL_SOURCES) or col not in prow.index:
                continue
            f = d.fields[fld]
            value = _unmap(prow[col], col, m.patient_values, m.patient_scale)
            if f.type == "checkbox":
                raise ValueError("checkbox fields are not supported for patients columns")
            put(str(pid), events_of[f.form][0], f.form, None, {fld: _encode(value, f, d)})
    # event-like tables
    day_cols = {"events": "day", "adverse_events": "onset_day", "observations": "day"}
    for table in TABLES[1:]:
        df = cohort.table(table)
        rules = [r for r in m.rules if r.table == table]
        if df.empty or not rules:
            continue
        counters: dict[tuple, int] = {}
        for _, r in df.iterrows():
            rule = _pick_rule(rules, r, d)
            if rule is None:
                raise ValueError(f"{table} row {r.get('source_row')}: no mapping rule for it")
            pid = str(r["patient_id"])
            day = r[day_cols[table]]
            form = rule.instrument
            repeating = form in repeat_forms
            event = event_for(form, day)
            values: dict[str, str] = {}
            for col, fld in rule.columns.items():
                if fld == rid or fld in SPECIAL_SOURCES:
                    continue
                f = d.fields[fld]
                src_col = DATE_TO_DAY.get(col, col)
                value = r.get(src_col) if src_col in r.index else None
                value = _unmap(value, col, rule.values or {}, rule.scale or {})
                if col in DATE_TO_DAY:
                    value = as_date(pid, value)
                if (
                    col == "event"
                    and rule.set
                    and value == rule.set.get("event")
                    and value not in f.choices.values()
                ):
                    continue
                if f.type == "checkbox":
                    chosen = (
                        {s.strip().lower() for s in str(value).split(";")}
                        if (value is not None and not pd.isna(value))
                        else set()
                    )
                    for code, lab in f.choices.items():
                        values[checkbox_column(fld, code)] = "1" if lab.lower() in chosen else "0"
                    continue
                values[fld] = _encode(value, f, d)
            instance = None
            if repeating:
                k = (pid, event, form)
                counters[k] = counters.get(k, 0) + 1
                instance = counters[k]
            put(pid, event, form, instance, values)
    columns = [rid]
    if designations:
        columns.append("redcap_event_name")
    columns += ["redcap_repeat_instrument", "redcap_repeat_instance"]
    if dag is not None and dag.notna().any():
        columns.append("redcap_data_access_group")
    for form in d.forms:
        for f in d.form_fields(form):
            columns += d.columns_of(f)
        columns.append(f"{form}_complete")
    order = {pid: i for i, pid in enumerate(pts.index.astype(str))}
    ev_rank = {e: i for i, e in enumerate(event_order)}
    out = []
    for (pid, event, form, inst), vals in sorted(
        rows.items(), key=lambda kv: (order[kv[0][0]], ev_rank.get(kv[0][1], 0), kv[0][2], kv[0][3])
    ):
        row = {c: "" for c in columns}
        row.update(vals)
        row[rid] = pid
        if designations:
            row["redcap_event_name"] = event
        row["redcap_repeat_instrument"] = form
        row["redcap_repeat_instance"] = str(inst) if inst else ""
        if "redcap_data_access_group" in row and dag is not None and pd.notna(dag.get(pid)):
            row["redcap_data_access_group"] = str(dag[pid])
        out.append(row)
    # checkbox columns of rows that hold the form but not the field: REDCap writes 0
    frame = pd.DataFrame(out, columns=columns)
    for form in d.forms:
        has = frame[f"{form}_complete"] != ""
        for f in d.form_fields(form):
            if f.type == "checkbox":
                for c in d.columns_of(f):
                    frame.loc[has & (frame[c] == ""), c] = "0"
    return frame


def _unmap(
    value: Any, col: str, values: dict[str, dict[str, Any]], scale: dict[str, float]
) -> object:
    """Undo a mapping's ``scale`` and ``values`` recode for one cohort value."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return value
    if col in scale:
        return float(value) / scale[col]
    if col in values:
        back = {str(v): k for k, v in values[col].items() if v is not None}
        return back.get(str(value), value)
    return value


def _pick_rule(rules: list[Rule], row: pd.Series, d: Dictionary) -> Rule | None:
    """The mapping rule that would have produced this cohort row."""
    if len(rules) == 1 or "event" not in row.index:
        return rules[0] if rules else None
    kind = row["event"]
    for rule in rules:
        if (rule.set or {}).get("event") == kind:
            return rule
        fld = rule.columns.get("event")
        if fld and kind in {v.lower() for v in d.fields[fld].choices.values()}:
            return rule
    return None

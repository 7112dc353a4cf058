"""REDCap's "CDISC ODM (XML)" export read with odmlib (CDISC's ODM library).

REDCap writes ODM 1.3.1 ClinicalData: ``SubjectData`` (SubjectKey = record) >
``StudyEventData`` (``Event.<unique_event_name>``) > ``FormData`` (``Form.<form>``,
``FormRepeatKey`` = repeat instance) > ``ItemGroupData`` > ``ItemData`` (ItemOID = field or
checkbox column ``field___code``, Value = the raw code). Its vendor attributes
(``redcap:DataAccessGroup``, ``redcap:UniqueEventName``, ``redcap:RecordIdField``) are not
ODM, and odmlib rejects unknown attributes, so they are read with ElementTree first and
removed; odmlib then parses the ClinicalData. The project metadata REDCap writes in the
same file (data dictionary, events, repeating forms, missing-data codes) is read by
``project_files``, so an ODM file can be imported alone. The result is laid out exactly as the raw
CSV export (one row per record and event, one per repeating-form instance) and typed,
mapped and validated by the same code as a CSV export. Problems name the ODM file and the
row of that flattened table (``flattened row N``), record, event, instrument and field.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pandas as pd

from cartrial.cohort.errors import CohortError, Problem
from cartrial.cohort.model import Cohort
from cartrial.io.redcap.instruments import read_dictionary, read_repeating
from cartrial.io.redcap.mapping import read_redcap

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
REDCAP_NS = "https://projectredcap.org"


def _vendor_attributes(root: ET.Element) -> dict[str, str]:
    """DAG per SubjectKey; strips every redcap: attribute from the tree (in place)."""
    dags: dict[str, str] = {}
    for elem in root.iter():
        redcap = [k for k in elem.attrib if k.startswith("{" + REDCAP_NS + "}")]
        if elem.tag == f"{{{ODM_NS}}}SubjectData":
            dag = elem.attrib.get(f"{{{REDCAP_NS}}}DataAccessGroup")
            if dag:
                dags[elem.attrib.get("SubjectKey", "")] = dag
        for k in redcap:
            del elem.attrib[k]
    return dags


def _parse(path: str | os.PathLike[str]) -> ET.Element:
    file = str(path)
    try:
        return ET.parse(file).getroot()
    except (ET.ParseError, OSError) as exc:
        raise CohortError(
            [Problem(file, None, None, None, f"a well-formed ODM XML file ({exc})")], file
        ) from exc


#: REDCap's internal field and validation types -> the data dictionary's names
_FIELD_TYPES = {"select": "dropdown", "textarea": "notes"}
_VALIDATIONS = {"int": "integer", "float": "number"}


def project_files(path: str | os.PathLike[str], folder: Path) -> dict[str, Path | None]:
    """The project metadata REDCap writes into an ODM export (``Study/MetaDataVersion`` with
    its ``redcap:`` attributes) as the CSV files of an offline export, written to ``folder``:
    data dictionary, instrument-event mapping, repeating instruments, project information
    (missing-data codes). Values are None for what the file does not hold.

    Read with ElementTree: the metadata is mostly REDCap's vendor extension, and REDCap
    writes ``DataType="boolean"`` on the code lists of yes/no and checkbox fields, which
    ODM 1.3.2 does not allow (odmlib rejects it)."""
    root = _parse(path)
    o, r = f"{{{ODM_NS}}}", f"{{{REDCAP_NS}}}"
    mdv = root.find(f"{o}Study/{o}MetaDataVersion")
    out: dict[str, Path | None] = dict.fromkeys(
        ("dictionary", "event_mapping", "repeating", "project_info")
    )
    if mdv is None or mdv.find(f"{o}ItemDef[@{r}FieldType]") is None:
        return out
    items = {i.get("OID"): i for i in mdv.iter(f"{o}ItemDef")}
    codelists = {c.get("OID"): c for c in mdv.iter(f"{o}CodeList")}
    groups = {g.get("OID"): g for g in mdv.iter(f"{o}ItemGroupDef")}
    record_field = mdv.get(f"{r}RecordIdField", "")
    rows: dict[str, dict[str, str]] = {}
    for form_def in mdv.iter(f"{o}FormDef"):
        form = form_def.get(f"{r}FormName") or _strip(form_def.get("OID", ""), "Form.")
        for gref in form_def.iter(f"{o}ItemGroupRef"):
            group = groups.get(gref.get("ItemGroupOID"))
            for iref in [] if group is None else group.iter(f"{o}ItemRef"):
                item = items.get(iref.get("ItemOID"))
                if item is None or item.get(f"{r}FieldType") is None:
                    continue  # form status, DAG and survey pseudo-fields
                name: str = item.get(f"{r}Variable") or item.get("Name") or ""
                if name in rows or name == f"{form}_complete":
                    continue
                rows[name] = _dictionary_row(item, name, form, codelists, o, r)
    if record_field in rows:  # REDCap's rule: the record-id field comes first
        rows = {record_field: rows.pop(record_field), **rows}
    out["dictionary"] = folder / "dictionary.csv"
    pd.DataFrame(list(rows.values())).to_csv(out["dictionary"], index=False)
    designations = [
        {
            "arm_num": e.get(f"{r}ArmNum", "1"),
            "unique_event_name": e.get(f"{r}UniqueEventName") or _strip(e.get("OID", ""), "Event."),
            "form": f.get(f"{r}FormName") or _strip(f.get("FormOID", ""), "Form."),
        }
        for e in mdv.iter(f"{o}StudyEventDef")
        for f in e.iter(f"{o}FormRef")
    ]
    if designations:
        out["event_mapping"] = folder / "event_mapping.csv"
        pd.DataFrame(designations).to_csv(out["event_mapping"], index=False)
    glob = root.find(f"{o}Study/{o}GlobalVariables")
    if glob is not None:
        repeating = [
            {
                "event_name": x.get(f"{r}UniqueEventName", ""),
                "form_name": x.get(f"{r}RepeatInstrument", ""),
                "custom_form_label": x.get(f"{r}CustomLabel", ""),
            }
            for x in glob.iter(f"{r}RepeatingInstrument")
        ] + [
            {
                "event_name": x.get(f"{r}UniqueEventName", ""),
                "form_name": "",
                "custom_form_label": "",
            }
            for x in glob.iter(f"{r}RepeatingEvent")
        ]
        if repeating:
            out["repeating"] = folder / "repeating.csv"
            pd.DataFrame(repeating).to_csv(out["repeating"], index=False)
        codes = glob.find(f"{r}MissingDataCodes")
        if codes is not None and (codes.text or "").strip():
            out["project_info"] = folder / "project_info.csv"
            pd.DataFrame({"missing_data_codes": [(codes.text or "").strip()]}).to_csv(
                out["project_info"], index=False
            )
    return out


def _dictionary_row(
    item: ET.Element, name: str, form: str, codelists: dict, o: str, r: str
) -> dict[str, str]:
    """One data-dictionary row from a REDCap ItemDef (standard dictionary header)."""
    ftype = item.get(f"{r}FieldType", "text")
    validation = item.get(f"{r}TextValidationType", "")
    choices = ""
    ref = item.find(f"{o}CodeListRef")
    cl = None if ref is None else codelists.get(ref.get("CodeListOID"))
    if cl is not None and ftype == "checkbox":
        choices = cl.get(f"{r}CheckboxChoices", "")
    elif cl is not None and ftype not in ("yesno", "truefalse"):
        choices = " | ".join(
            f"{c.get('CodedValue')}, {''.join(c.find(f'{o}Decode').itertext()).strip()}"
            for c in cl.iter(f"{o}CodeListItem")
        )
    bounds = {
        rc.get("Comparator"): (rc.findtext(f"{o}CheckValue") or "").strip()
        for rc in item.iter(f"{o}RangeCheck")
    }
    question = item.find(f"{o}Question/{o}TranslatedText")
    return {
        "Variable / Field Name": name,
        "Form Name": form,
        "Section Header": item.get(f"{r}SectionHeader", ""),
        "Field Type": _FIELD_TYPES.get(ftype, ftype),
        "Field Label": "" if question is None else (question.text or "").strip(),
        "Choices, Calculations, OR Slider Labels": choices or item.get(f"{r}Calculation", ""),
        "Field Note": item.get(f"{r}FieldNote", ""),
        "Text Validation Type OR Show Slider Number": _VALIDATIONS.get(validation, validation),
        "Text Validation Min": bounds.get("GE", ""),
        "Text Validation Max": bounds.get("LE", ""),
        "Identifier?": item.get(f"{r}Identifier", ""),
        "Branching Logic (Show field only if...)": item.get(f"{r}BranchingLogic", ""),
        "Required Field?": item.get(f"{r}RequiredField", ""),
    }


def _strip(oid: str, prefix: str) -> str:
    return oid[len(prefix) :] if oid.startswith(prefix) else oid


def odm_records(
    path: str | os.PathLike[str], record_field: str, repeating_forms: set[str]
) -> pd.DataFrame:
    """The ClinicalData of a REDCap ODM file as a raw-export table (all cells text)."""
    import odmlib.loader as LD
    import odmlib.odm_loader as OL
    from odmlib.exceptions import OdmlibError

    file = str(path)
    root = _parse(file)
    for study in root.findall(f"{{{ODM_NS}}}Study"):  # metadata: see project_files
        root.remove(study)
    dags = _vendor_attributes(root)
    loader = LD.ODMLoader(OL.XMLODMLoader(model_package="odm_1_3_2", ns_uri=ODM_NS))
    try:
        loader.load_odm_string(ET.tostring(root, encoding="unicode"))
        odm = loader.load_odm()
    except (OdmlibError, ValueError, TypeError, KeyError) as exc:
        raise CohortError(
            [Problem(file, None, None, None, f"a CDISC ODM 1.3 document ({exc})")], file
        ) from exc
    clinical = odm.ClinicalData if isinstance(odm.ClinicalData, list) else [odm.ClinicalData]
    rows: dict[tuple[str, str, str, str], dict[str, str]] = {}
    longitudinal = False
    for cd in clinical:
        for subj in cd.SubjectData or []:
            rec = str(subj.SubjectKey)
            for sed in subj.StudyEventData or []:
                event = _strip(str(sed.StudyEventOID), "Event.")
                longitudinal = longitudinal or str(sed.StudyEventOID).startswith("Event.")
                for fd in sed.FormData or []:
                    form = _strip(str(fd.FormOID), "Form.")
                    repeat = form in repeating_forms
                    key = (
                        rec,
                        event,
                        form if repeat else "",
                        str(fd.FormRepeatKey or "1") if repeat else "",
                    )
                    row = rows.setdefault(key, {})
                    for igd in fd.ItemGroupData or []:
                        for item in igd.ItemData or []:
                            row[str(item.ItemOID)] = "" if item.Value is None else str(item.Value)
    out = []
    for (rec, event, form, inst), values in rows.items():
        row = {
            record_field: rec,
            "redcap_event_name": event,
            "redcap_repeat_instrument": form,
            "redcap_repeat_instance": inst,
            "redcap_data_access_group": dags.get(rec, ""),
        }
        row.update({k: v for k, v in values.items() if k != record_field})
        out.append(row)
    df = pd.DataFrame(out).fillna("")
    if not longitudinal and "redcap_event_name" in df:
        df = df.drop(columns="redcap_event_name")
    if not dags and "redcap_data_access_group" in df:
        df = df.drop(columns="redcap_data_access_group")
    return df


def read_redcap_odm(
    odm_xml: str | os.PathLike[str],
    dictionary_csv: str | os.PathLike[str] | None = None,
    event_mapping_csv: str | os.PathLike[str] | None = None,
    repeating_csv: str | os.PathLike[str] | None = None,
    mapping_yaml: str | os.PathLike[str] | None = None,
    project_info: str | os.PathLike[str] | None = None,
) -> Cohort:
    """Import a REDCap ODM XML export as a validated ``Cohort`` (as ``read_redcap``).

    The data dictionary, instrument-event mapping, repeating instruments and missing-data
    codes default to the project metadata held in the ODM file itself (``project_files``);
    files given here win."""
    label = f"{odm_xml} (flattened)"
    with tempfile.TemporaryDirectory(prefix="cartrial-odm-") as tmp:
        meta = project_files(odm_xml, Path(tmp))
        dictionary_csv = dictionary_csv or meta["dictionary"]
        if dictionary_csv is None:
            raise CohortError(
                [
                    Problem(
                        str(odm_xml),
                        None,
                        None,
                        None,
                        "project metadata "
                        "(Study/MetaDataVersion with redcap: attributes) in the "
                        "ODM file, or a data dictionary CSV",
                    )
                ],
                str(odm_xml),
            )
        event_mapping_csv = event_mapping_csv or meta["event_mapping"]
        repeating_csv = repeating_csv or meta["repeating"]
        project_info = project_info or meta["project_info"]
        d = read_dictionary(dictionary_csv)
        repeating = {f for _e, f in read_repeating(repeating_csv, d) if f}
        records = odm_records(odm_xml, d.record_field, repeating)
        flat = Path(tmp) / "records.csv"
        records.to_csv(flat, index=False, lineterminator="\n")
        try:
            cohort = read_redcap(
                flat,
                dictionary_csv,
                event_mapping_csv,
                repeating_csv,
                mapping_yaml,
                project_info=project_info,
            )
        except CohortError as exc:
            problems = [
                Problem(
                    label if p.file == str(flat) else p.file, p.row, p.column, p.value, p.expected
                )
                for p in exc.problems
            ]
            raise CohortError(problems, label) from None
    updates = {
        t: cohort.table(t).assign(
            source_file=pd.Series(label, index=cohort.table(t).index, dtype="string")
        )
        for t in ("patients", "events", "adverse_events", "observations")
        if len(cohort.table(t))
    }
    return replace(cohort, source=str(odm_xml), **updates)

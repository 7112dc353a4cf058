"""Define-XML 2.1 for the ADaM export, built with odmlib (CDISC's ODM/Define-XML library).

One ``ItemGroupDef`` per dataset (class ADSL / BDS / OCCDS, its .xpt as ``def:leaf``),
one ``ItemDef`` per variable with the SAS length (longest value, in bytes), data type
(numeric SAS dates: ``integer`` with ``def:DisplayFormat`` DATE9., CDISC Define-XML 2.1
specification section 4.3.3), the label and an origin (``Derived``, or ``Predecessor``
for values carried from the cohort); code lists for the Y/N flags, PARAMCD (decoded by
PARAM) and ATOXGR; methods holding the derivation text of the endpoint definitions
(``cartrial.endpoints.definitions.ENDPOINTS``), the population rules
(``cartrial.endpoints.populations.POPULATIONS``) and the treatment-emergent window.
The document is checked against the Define-XML 2.1 schema shipped with odmlib in the tests.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pandas as pd

from cartrial.endpoints.definitions import ENDPOINTS
from cartrial.endpoints.populations import POPULATIONS
from cartrial.io.adam import VARIABLES

CLASSES = {
    "ADSL": ("SUBJECT LEVEL ANALYSIS DATASET", None),
    "ADTTE": ("BASIC DATA STRUCTURE", "TIME-TO-EVENT"),
    "ADAE": ("OCCURRENCE DATA STRUCTURE", None),
    "ADRS": ("BASIC DATA STRUCTURE", None),
    "ADPC": ("BASIC DATA STRUCTURE", None),
    "ADLB": ("BASIC DATA STRUCTURE", None),
    "ADPP": ("BASIC DATA STRUCTURE", None),
}
STRUCTURES = {
    "ADSL": "One record per subject",
    "ADTTE": "One record per subject per parameter",
    "ADAE": "One record per adverse event",
    "ADRS": "One record per subject per parameter per assessment",
    "ADPC": "One record per subject per sample",
    "ADLB": "One record per subject per parameter per sample",
    "ADPP": "One record per subject per parameter",
}
KEYS = {
    "ADSL": ("USUBJID",),
    "ADTTE": ("USUBJID", "PARAMCD"),
    "ADAE": ("USUBJID", "AESEQ"),
    "ADRS": ("USUBJID", "PARAMCD", "ADYPUB"),
    "ADPC": ("USUBJID", "PARAMCD", "ADYPUB"),
    "ADLB": ("USUBJID", "PARAMCD", "ADYPUB"),
    "ADPP": ("USUBJID", "PARAMCD"),
}
#: variables carried unchanged from the cohort (origin Predecessor), the rest are Derived
PREDECESSOR = {
    "SUBJID",
    "SITEID",
    "SEX",
    "DISEASE",
    "CD7BLPCT",
    "BMBLPCT",
    "EXTRAMED",
    "PRODSRC",
    "DONREL",
    "HLAMATCH",
    "DOSEKG",
    "DOSELVL",
    "WEIGHTBL",
    "HEIGHTBL",
    "AETERM",
    "AEORGAN",
    "ATOXSYS",
    "AECTERM",
    "MRDSTAT",
    "MRDVAL",
    "AVALU",
    "ALLOQ",
    "PCTEST",
    "TRTSDT",
    "ENRLDT",
}
YN_FLAGS = {
    "ITTFL",
    "SAFFL",
    "EFFFL",
    "CRFL",
    "RESPFL",
    "DTHFL",
    "PRSCTFL",
    "TRTEMFL",
    "AOCCIFL",
    "AOCCPFL",
    "AOCCPIFL",
    "BLQFL",
    "AESER",
}


def _text(model, text: str):
    return model.Description(TranslatedText=[model.TranslatedText(_content=text, lang="en")])


def _methods() -> dict[str, str]:
    """Derivation texts: endpoints, populations."""
    out: dict[str, str] = {}
    out["AVAL"] = " ".join(
        f"{e.name}: {e.text} (population {e.population}; source {e.source})."
        for e in ENDPOINTS.values()
    )
    for p in POPULATIONS.values():
        if p.adam_flag:
            out[p.adam_flag] = f"{p.label}: {p.rule}"
    return out


def _length(values: pd.Series) -> int:
    text = values.dropna().astype(str)
    return max([1, *(len(v.encode("utf-8")) for v in text)])


def _datatype(kind: str, values: pd.Series) -> str:
    if kind == "date":
        return "integer"
    if kind == "num":
        v = pd.to_numeric(values, errors="coerce").dropna()
        return "integer" if len(v) and (v == v.round()).all() else "float"
    return "text"


def _aval_value_list(M, adtte: pd.DataFrame, method_defs: dict, items: list, where_clauses: list):
    """Value-level metadata of ADTTE.AVAL: one row per PARAMCD (WhereClause PARAMCD EQ …)
    with the endpoint's own derivation method (``ENDPOINTS[code].text``)."""
    vl = M.ValueListDef(OID="VL.ADTTE.AVAL")
    for order, code in enumerate(pd.unique(adtte["PARAMCD"].dropna().astype(str)), start=1):
        wc = f"WC.ADTTE.PARAMCD.{code}"
        where_clauses.append(
            M.WhereClauseDef(
                OID=wc,
                RangeCheck=[
                    M.RangeCheck(
                        Comparator="EQ",
                        SoftHard="Soft",
                        ItemOID="IT.ADTTE.PARAMCD",
                        CheckValue=[M.CheckValue(_content=code)],
                    )
                ],
            )
        )
        oid = f"IT.ADTTE.AVAL.{code}"
        ref = M.ItemRef(
            ItemOID=oid,
            OrderNumber=order,
            Mandatory="Yes",
            WhereClauseRef=[M.WhereClauseRef(WhereClauseOID=wc)],
        )
        ep = ENDPOINTS.get(code)
        if ep is not None:
            moid = f"MT.ADTTE.AVAL.{code}"
            method_defs[moid] = M.MethodDef(
                OID=moid,
                Name=f"Algorithm for AVAL where PARAMCD = {code}",
                Type="Computation",
                Description=_text(
                    M,
                    f"{ep.label}: {ep.text} Analysed in population "
                    f"{ep.population}; time origin {ep.origin}. Source: "
                    f"{ep.source}.",
                ),
            )
            ref.MethodOID = moid
        vl.ItemRef.append(ref)
        item = M.ItemDef(
            OID=oid,
            Name="AVAL",
            DataType="float",
            SASFieldName="AVAL",
            Length=8,
            Description=_text(M, f"Analysis Value, {code} (days)"),
        )
        item.Origin.append(M.Origin(Type="Derived"))
        items.append(item)
    return vl


def define_document(
    adam: dict[str, pd.DataFrame], study_id: str = "CARTRIAL", te_window: str | None = None
):
    """The Define-XML 2.1 document (an odmlib ``ODM`` object) of the datasets."""
    from odmlib.define_2_1 import model as M

    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    methods = _methods()
    te_window = te_window or next(
        (df.attrs["te_window"] for df in adam.values() if "te_window" in df.attrs), None
    )
    if te_window:
        methods["TRTEMFL"] = te_window
    igs: list[Any] = []
    items: list[Any] = []
    codelists: dict[str, Any] = {}
    method_defs: dict[str, Any] = {}
    leaves: list[Any] = []
    value_lists: list[Any] = []
    where_clauses: list[Any] = []

    def codelist(oid: str, name: str, dtype: str, pairs: list[tuple[str, str | None]]):
        if oid in codelists:
            return
        cl = M.CodeList(OID=oid, Name=name, DataType=dtype)
        for i, (code, decode) in enumerate(pairs, start=1):
            if decode:  # a decoded list: CodeListItem; codes alone: EnumeratedItem
                cl.CodeListItem.append(
                    M.CodeListItem(
                        CodedValue=code,
                        OrderNumber=i,
                        Decode=M.Decode(
                            TranslatedText=[M.TranslatedText(_content=decode, lang="en")]
                        ),
                    )
                )
            else:
                cl.EnumeratedItem.append(M.EnumeratedItem(CodedValue=code, OrderNumber=i))
        codelists[oid] = cl

    codelist("CL.NY", "No Yes Response", "text", [("N", "No"), ("Y", "Yes")])
    for name, df in adam.items():
        cls, sub = CLASSES.get(name, ("BASIC DATA STRUCTURE", None))
        ig = M.ItemGroupDef(
            OID=f"IG.{name}",
            Name=name,
            Repeating="No" if name == "ADSL" else "Yes",
            IsReferenceData="No",
            SASDatasetName=name,
            Purpose="Analysis",
            Structure=STRUCTURES.get(name, "One record per record"),
            ArchiveLocationID=f"LF.{name}",
            StandardOID="STD.ADAMIG",
        )
        ig.Description = _text(M, f"{name} (cartrial)")
        ig.Class = M.Class(Name=cls)
        if sub:
            ig.Class.SubClass.append(M.SubClass(Name=sub))
        ig.leaf = M.leaf(
            ID=f"LF.{name}",
            href=f"{name.lower()}.xpt",
            title=M.title(_content=f"{name.lower()}.xpt"),
        )
        keys = KEYS.get(name, ())
        for order, col in enumerate(df.columns, start=1):
            spec = VARIABLES[name][col]
            oid = f"IT.{name}.{col}"
            ref = M.ItemRef(
                ItemOID=oid,
                OrderNumber=order,
                Mandatory="Yes" if col in ("STUDYID", "USUBJID") else "No",
            )
            if col in keys:
                ref.KeySequence = keys.index(col) + 1
            text = methods.get(col) if (col != "AVAL" or name == "ADTTE") else None
            if text:
                moid = f"MT.{name}.{col}"
                method_defs[moid] = M.MethodDef(
                    OID=moid,
                    Name=f"Algorithm for {name}.{col}",
                    Type="Computation",
                    Description=_text(M, text),
                )
                ref.MethodOID = moid
            ig.ItemRef.append(ref)
            dtype = _datatype(spec.type, df[col])
            item = M.ItemDef(
                OID=oid,
                Name=col,
                DataType=dtype,
                SASFieldName=col,
                Length=_length(df[col]) if dtype == "text" else 8,
            )
            if spec.type == "date":
                item.DisplayFormat = "DATE9."
            item.Description = _text(M, spec.label)
            origin = M.Origin(
                Type="Predecessor"
                if col in PREDECESSOR
                else ("Assigned" if col in ("STUDYID", "AVALU", "AGEU") else "Derived")
            )
            if spec.note:
                origin.Description = _text(M, spec.note)
            item.Origin.append(origin)
            if name == "ADTTE" and col == "AVAL" and len(df):
                item.ValueListRef = M.ValueListRef(ValueListOID="VL.ADTTE.AVAL")
                value_lists.append(_aval_value_list(M, df, method_defs, items, where_clauses))
            if col in YN_FLAGS:
                item.CodeListRef = M.CodeListRef(CodeListOID="CL.NY")
            elif col == "PARAMCD" and len(df):
                cl_oid = f"CL.{name}.PARAMCD"
                pairs = df[["PARAMCD", "PARAM"]].dropna().drop_duplicates("PARAMCD")
                codelist(
                    cl_oid,
                    f"{name} Parameter Code",
                    "text",
                    list(
                        zip(pairs["PARAMCD"].astype(str), pairs["PARAM"].astype(str), strict=True)
                    ),
                )
                item.CodeListRef = M.CodeListRef(CodeListOID=cl_oid)
            elif col == "ATOXGR":
                codelist(
                    "CL.ATOXGR", "Toxicity Grade", "text", [(str(g), None) for g in range(0, 6)]
                )
                item.CodeListRef = M.CodeListRef(CodeListOID="CL.ATOXGR")
            items.append(item)
        igs.append(ig)
        leaves.append(name)
    mdv = M.MetaDataVersion(
        OID=f"MDV.{study_id}.ADAM", Name=f"{study_id} ADaM", DefineVersion="2.1.0"
    )
    mdv.Description = f"ADaM datasets of {study_id} written by cartrial"
    mdv.Standards = M.Standards(
        Standard=[
            M.Standard(
                OID="STD.ADAMIG",
                Name="ADaMIG",
                Type="IG",
                Version="1.3",
                Status="Final",
                PublishingSet="ADaM",
            ),
        ]
    )
    mdv.ItemGroupDef = igs
    mdv.ItemDef = items
    mdv.CodeList = list(codelists.values())
    mdv.MethodDef = list(method_defs.values())
    mdv.ValueListDef = value_lists
    mdv.WhereClauseDef = where_clauses
    study = M.Study(
        OID=f"ST.{study_id}",
        GlobalVariables=M.GlobalVariables(
            StudyName=M.StudyName(_content=study_id),
            StudyDescription=M.StudyDescription(_content=f"{study_id} (cartrial ADaM export)"),
            ProtocolName=M.ProtocolName(_content=study_id),
        ),
        MetaDataVersion=mdv,
    )
    return M.ODM(
        FileOID=f"DEF.{study_id}.ADAM",
        FileType="Snapshot",
        ODMVersion="1.3.2",
        CreationDateTime=now,
        Originator="cartrial",
        SourceSystem="cartrial",
        Context="Other",
        Study=study,
    )


def write_define_xml(
    adam: dict[str, pd.DataFrame], path: str | os.PathLike[str], study_id: str | None = None
) -> Path:
    """Write ``define.xml`` (Define-XML 2.1) for the datasets."""
    if study_id is None:
        adsl = adam.get("ADSL")
        study_id = str(adsl["STUDYID"].iloc[0]) if adsl is not None and len(adsl) else "CARTRIAL"
    doc = define_document(adam, study_id)
    doc.write_xml(str(path))
    return Path(path)

"""De-identified ADaM export: no original date (in several spellings) and no free text in
any cell of any output file; ages >= 90 grouped; intervals kept; seedable; statement file.
Also the command line (``cartrial import redcap`` / ``cartrial export adam``)."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cartrial.endpoints import derive_endpoints
from cartrial.io.adam import VARIABLES, cohort_from_adam
from cartrial.io.redcap import TEMPLATE_FILES, read_redcap
from cartrial.io.writers import export_adam

FORMATS = ("csv", "parquet", "xpt")
# the example spans 2021-01 .. 2022-02; shifting every date back 600-1000 days moves each
# one outside that span, so a hit in the scan below can only be an original date
FAR = (-1000, -600)


@pytest.fixture(scope="module")
def example():
    return read_redcap(
        TEMPLATE_FILES["example_records"],
        TEMPLATE_FILES["dictionary"],
        TEMPLATE_FILES["event_mapping"],
        TEMPLATE_FILES["repeating"],
    )


def original_dates(cohort) -> set[pd.Timestamp]:
    """Every date the cohort knows: infusion, birth, and infusion + every recorded day."""
    p = cohort.patients.set_index("patient_id")
    inf = pd.to_datetime(p["infusion_date"])
    dates = set(inf.dropna()) | set(pd.to_datetime(p["birth_date"]).dropna())
    for table, cols in (
        ("events", ["day"]),
        ("adverse_events", ["onset_day", "resolution_day"]),
        ("observations", ["day"]),
    ):
        df = cohort.table(table)
        for col in cols:
            d = df["patient_id"].map(inf) + pd.to_timedelta(df[col], unit="D")
            dates |= set(d.dropna().dt.normalize())
    return dates


def spellings(d: pd.Timestamp) -> list[str]:
    return [
        d.strftime(f)
        for f in (
            "%Y-%m-%d",
            "%d/%m/%Y",
            "%m/%d/%Y",
            "%Y%m%d",
            "%d%b%Y",
            "%d-%b-%Y",
            "%d.%m.%Y",
            "%Y/%m/%d",
        )
    ] + [d.strftime("%d%b%Y").upper()]


def free_texts(cohort) -> list[str]:
    p, ae = cohort.patients, cohort.adverse_events
    return [*p["patient_name"], *p["mrn"], *ae["verbatim"].dropna()]


def every_cell(folder: Path) -> list[str]:
    """The text of every cell of every file written (CSV as text, Parquet and XPT read back)."""
    cells: list[str] = []
    for f in sorted(folder.iterdir()):
        if f.suffix in (".csv", ".txt"):
            cells.append(f.read_text(encoding="utf-8"))
        elif f.suffix == ".parquet":
            df = pd.read_parquet(f)
            cells += [str(v) for col in df.columns for v in df[col].tolist()]
        elif f.suffix == ".xml":
            cells.append(f.read_text(encoding="utf-8"))
        elif f.suffix == ".xpt":
            df, meta = pyreadstat.read_xport(str(f))
            cells += [str(v) for col in df.columns for v in df[col].tolist()]
            cells += [str(x) for x in meta.column_labels]
        else:
            raise AssertionError(f"unexpected file {f}")
    return cells


KEY = "a site secret used only by these tests"


def real_ids(export: Path) -> dict[str, str]:
    """pseudonym -> real ID, from the key map kept beside (outside) the export folder."""
    m = pd.read_csv(f"{export}.key-map.csv", dtype=str)
    return dict(zip(m["pseudonym"], m["original"], strict=True))


def by_real_subject(df: pd.DataFrame, export: Path) -> pd.DataFrame:
    return df.assign(SUBJID=df["SUBJID"].astype(str).map(real_ids(export))).set_index("SUBJID")


@pytest.fixture(scope="module")
def shifted(example, tmp_path_factory):
    out = tmp_path_factory.mktemp("deid") / "shift"
    path, adam = export_adam(
        example, out, FORMATS, deidentify=True, date_mode="shift", seed=11, shift_range=FAR, key=KEY
    )
    return path, adam


@pytest.fixture(scope="module")
def days(example, tmp_path_factory):
    out = tmp_path_factory.mktemp("deid") / "days"
    return export_adam(example, out, FORMATS, deidentify=True, date_mode="days", key=KEY)


@pytest.mark.parametrize("which", ["shifted", "days"])
def test_no_original_date_and_no_free_text_anywhere(example, which, request):
    path, _ = request.getfixturevalue(which)
    cells = every_cell(path)
    text = "\n".join(cells)
    dates = original_dates(example)
    assert len(dates) > 40
    for d in dates:
        for s in spellings(d):
            assert s not in text, (s, which)
    for s in free_texts(example):
        assert s not in text and s.lower() not in text.lower(), s
    assert "P01" not in text  # pseudonymised ...
    assert {v: k for k, v in real_ids(path).items()}["P01"] in text  # ... by the key map


def test_the_scan_would_catch_a_leak(example, tmp_path):
    """The same scan on an identified export finds dates, names and verbatim terms."""
    path, _ = export_adam(example, tmp_path / "plain", ("csv",))
    text = "\n".join(every_cell(path))
    assert any(s in text for d in original_dates(example) for s in spellings(d))
    assert "fever and hypotension after infusion" in text


def test_identifiers_and_free_text_columns_are_dropped(shifted):
    path, adam = shifted
    define = pd.read_csv(path / "define.csv")
    names = set(zip(define["dataset"], define["variable"], strict=True))
    assert ("ADSL", "BRTHDT") not in names and ("ADAE", "AETERM") not in names
    assert ("ADAE", "AEORGAN") not in names and ("ADAE", "AEDECOD") in names
    for ds, df in adam.items():
        for col in df.columns:
            assert not VARIABLES[ds][col].identifier and not VARIABLES[ds][col].free_text


def test_ages_of_90_or_more_are_grouped(shifted):
    path, _ = shifted
    adsl = by_real_subject(pd.read_csv(path / "adsl.csv"), path)
    assert pd.isna(adsl.loc["P02", "AGE"]) and adsl.loc["P02", "AGEGR1"] == "90+"
    assert adsl.loc["P01", "AGE"] == 36 and adsl.loc["P03", "AGEGR1"] == "0-17"
    assert "91" not in adsl.loc["P02"].astype(str).tolist()


def test_shift_keeps_intervals_with_one_offset_per_patient(example, shifted):
    from cartrial.io.adam import build_adam

    _, deid = shifted
    orig = build_adam(example)
    offsets = {}
    for ds, df in orig.items():
        for col in (c for c in df.columns if VARIABLES[ds][c].type == "date"):
            if col not in deid[ds].columns:
                continue
            delta = (pd.to_datetime(deid[ds][col]) - pd.to_datetime(df[col])).dt.days
            for sid, dd in zip(df["SUBJID"], delta, strict=True):
                if pd.notna(dd):
                    offsets.setdefault(sid, set()).add(int(dd))
    assert set(offsets) == {"P01", "P02", "P03", "P04", "P05"}  # P06 has no dates
    for sid, found in offsets.items():
        assert len(found) == 1, sid  # one offset for all of a patient's dates
        (off,) = found
        assert FAR[0] <= off <= FAR[1]
    assert len({next(iter(v)) for v in offsets.values()}) > 1  # drawn per patient
    adsl = deid["ADSL"].set_index("SUBJID")
    gap = (adsl["LSTALVDT"] - adsl["TRTSDT"]).dt.days.dropna()
    assert (gap == adsl.loc[gap.index, "LSTALDAY"]).all()


def test_seed_reproduces_and_changes_the_shift(example, tmp_path):
    a = export_adam(example, tmp_path / "a", ("csv",), deidentify=True, seed=5, key=KEY)[0]
    b = export_adam(example, tmp_path / "b", ("csv",), deidentify=True, seed=5, key=KEY)[0]
    c = export_adam(example, tmp_path / "c", ("csv",), deidentify=True, seed=6, key=KEY)[0]
    assert (a / "adsl.csv").read_text() == (b / "adsl.csv").read_text()
    assert (a / "adsl.csv").read_text() != (c / "adsl.csv").read_text()


def test_days_mode_has_no_dates_and_still_gives_every_endpoint(example, days):
    path, adam = days
    for ds, df in adam.items():
        assert not [c for c in df.columns if VARIABLES[ds][c].type == "date"], ds
    for f in path.glob("*.csv"):
        if f.name != "define.csv":
            assert not re.search(r"\d{4}-\d{2}-\d{2}", f.read_text()), f.name
    back = cohort_from_adam(adam)
    real = real_ids(path)
    back = replace(
        back,
        **{
            t: back.table(t).assign(patient_id=back.table(t)["patient_id"].map(real))
            for t in ("patients", "events", "adverse_events", "observations")
        },
    )
    pd.testing.assert_frame_equal(
        derive_endpoints(back).drop(
            columns=["source", "source_table", "source_file", "source_row"], errors="ignore"
        ),
        derive_endpoints(example).drop(
            columns=["source", "source_table", "source_file", "source_row"], errors="ignore"
        ),
    )


def test_statement_file(shifted, days):
    shift_text = (shifted[0] / "DEIDENTIFICATION.txt").read_text()
    assert "NOT HIPAA Safe Harbor" in shift_text and "Expert Determination" in shift_text
    assert "except year" in shift_text and "[-1000, -600]" in shift_text
    assert "AETERM" in shift_text and "90+" in shift_text
    assert "11" not in re.findall(r"\b\d+\b", shift_text)  # the seed is not written
    days_text = (days[0] / "DEIDENTIFICATION.txt").read_text()
    assert "Dates removed" in days_text and "Shifted dates would NOT be Safe" in days_text


# --------------------------------------------------------------------------- command line


def test_cli_import_redcap_then_export_deidentified_adam(tmp_path, example):
    from cartrial.cli import app

    runner = CliRunner()
    export = tmp_path / "export"
    res = runner.invoke(app, ["import", "redcap-template", str(export)])
    assert res.exit_code == 0, res.output
    shutil.copy(TEMPLATE_FILES["example_records"], export / "records.csv")
    (export / "cd7_cart_example_records.csv").unlink(missing_ok=True)
    res = runner.invoke(app, ["import", "redcap", str(export), "-o", str(tmp_path / "cohort")])
    assert res.exit_code == 0, res.output
    assert "6 patients" in res.output
    res = runner.invoke(
        app,
        [
            "export",
            "adam",
            str(tmp_path / "cohort"),
            "-o",
            str(tmp_path / "adam"),
            "--format",
            "csv,xpt",
            "--deidentify",
            "--date-mode",
            "days",
            "--te-window",
            "45",
            "--key-file",
            str(tmp_path / "site" / "key.txt"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "site" / "key.txt").exists() and "keep it at the site" in res.output
    files = sorted(p.name for p in (tmp_path / "adam").iterdir())
    assert "DEIDENTIFICATION.txt" in files and "adtte.xpt" in files and "adtte.csv" in files
    adae = pd.read_csv(tmp_path / "adam" / "adae.csv")
    adae["SUBJID"] = adae["SUBJID"].map(real_ids(tmp_path / "adam"))
    assert adae[(adae["SUBJID"] == "P04") & (adae["ASTDYPUB"] == 45)]["TRTEMFL"].tolist() == ["Y"]
    text = "\n".join(every_cell(tmp_path / "adam"))
    assert "Zephyrine" not in text and "fatal aspergillosis" not in text


def test_cli_reports_a_malformed_export(tmp_path):
    from cartrial.cli import app

    export = tmp_path / "export"
    CliRunner().invoke(app, ["import", "redcap-template", str(export)])
    raw = pd.read_csv(TEMPLATE_FILES["example_records"], dtype=str, keep_default_na=False)
    raw.loc[raw["ae_term"] == "1", "ae_term"] = "42"
    raw.to_csv(export / "records.csv", index=False)
    (export / "cd7_cart_example_records.csv").unlink(missing_ok=True)
    res = CliRunner().invoke(app, ["import", "redcap", str(export), "-o", str(tmp_path / "c")])
    assert res.exit_code == 1
    assert "records.csv" in res.output and "'ae_term'" in res.output and "record P01" in res.output
    assert not (tmp_path / "c").exists()


def test_cli_rejects_an_unknown_format(tmp_path):
    from cartrial.cli import app

    res = CliRunner().invoke(
        app, ["export", "adam", "tan2023", "-o", str(tmp_path / "x"), "--format", "csv,sas7bdat"]
    )
    assert res.exit_code == 2 and "sas7bdat" in res.output


def test_pseudonyms_are_keyed_and_the_map_stays_outside(example, tmp_path):
    a = export_adam(example, tmp_path / "a", ("csv",), deidentify=True, key=KEY)[0]
    b = export_adam(example, tmp_path / "b", ("csv",), deidentify=True, key=KEY)[0]
    c = export_adam(example, tmp_path / "c", ("csv",), deidentify=True, key=KEY + "!")[0]
    ids = [set(pd.read_csv(p / "adsl.csv")["SUBJID"]) for p in (a, b, c)]
    assert ids[0] == ids[1] and not ids[0] & ids[2]  # same key, same pseudonyms
    assert not any(f.name.endswith("key-map.csv") for f in a.iterdir())
    assert set(real_ids(a).values()) >= {"P01", "P02", "P03", "P04", "P05", "P06", "site_a"}
    with pytest.raises(ValueError, match="outside the export"):
        export_adam(
            example,
            tmp_path / "d",
            ("csv",),
            deidentify=True,
            key_map_path=tmp_path / "d" / "map.csv",
        )


def test_date_shifts_keep_their_minimum_distance_from_zero():
    from cartrial.io.deid import keyed_offset, patient_offsets

    ids = pd.Series([f"S{i:03d}" for i in range(400)])
    off = patient_offsets(ids, seed=3, shift_range=(-40, 40), min_shift=30)
    assert (off.abs() >= 30).all() and (off.abs() <= 40).all()
    assert {keyed_offset("k", i, (-40, 40), 30) for i in ids} <= set(range(-40, -29)) | set(
        range(30, 41)
    )
    with pytest.raises(ValueError, match="at least 50"):
        patient_offsets(ids, seed=3, shift_range=(-40, 40), min_shift=50)


def test_k_anonymity_lists_small_groups(example, shifted):
    from cartrial.io.adam import build_adam
    from cartrial.io.deid import k_anonymity

    adsl = build_adam(example, kinetics=False)["ADSL"]
    # by hand: site_a {P01 F T-ALL 18-64, P02 M T-LBL 90+, P03 F T-ALL 0-17}, site_b
    # {P04 M CD7+ AML 18-64, P05 F T-ALL 18-64, P06 M T-ALL 18-64}: all six are unique
    assert len(k_anonymity(adsl, k=2)) == 6
    assert k_anonymity(adsl, k=1) == []
    text = (shifted[0] / "DEIDENTIFICATION.txt").read_text()
    assert "6 combination(s) below k" in text and "WARNING" in text


@settings(max_examples=200, deadline=None)
@given(
    st.text(min_size=1, max_size=40),
    st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30, unique=True),
    st.integers(1, 200),
    st.integers(0, 400),
)
def test_keyed_offsets_and_pseudonyms_properties(key, ids, min_shift, extra):
    from cartrial.io.deid import keyed_offset, pseudonym

    rng = (-(min_shift + extra), min_shift + extra)
    for i in ids:
        off = keyed_offset(key, i, rng, min_shift)
        assert min_shift <= abs(off) <= min_shift + extra
        assert off == keyed_offset(key, i, rng, min_shift)  # the key reproduces it
    names = [pseudonym(key, "SUBJID", i, "S") for i in ids]
    assert len(set(names)) == len(ids)  # 40 bits: no collision among a trial's subjects
    assert not set(names) & set(ids)

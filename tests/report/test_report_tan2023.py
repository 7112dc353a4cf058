"""The report on the bundled Tan 2023 table reproduces the published numbers.

Tan et al., J Hematol Oncol 2023;16:34: ORR 19/20 (Wilson 76.4–99.1%), CR 17/20
(64.0–94.8%), 2-year OS 42.3% (95% CI 18.8–65.8, linear "plain" Greenwood interval),
median OS 18.3 months; late severe infections in 5 of the 12 patients without SCT who were
followed beyond day 30.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cartrial.cli import app


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("tan")
    runner = CliRunner()
    res = runner.invoke(app, ["report", "tan2023", "-o", str(base / "tan2023")])
    assert res.exit_code == 0, res.output
    return base / "tan2023"


def table(out: Path, name: str) -> pd.DataFrame:
    path = out / "tables" / f"{name}.csv"
    assert not path.read_text(encoding="utf-8").startswith("#")  # real data: no synthetic mark
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_published_response_rates(out: Path) -> None:
    resp = table(out, "response").set_index("Measure")
    assert resp.loc["ORR", "n/N"] == "19/20"
    assert resp.loc["ORR", "% (95% CI)"] == "95.0 (76.4–99.1)"
    assert resp.loc["CR", "n/N"] == "17/20"
    assert resp.loc["CR", "% (95% CI)"] == "85.0 (64.0–94.8)"
    assert "MRD-negative CR/CRi" not in resp.index  # no MRD in the table: not shown as 0%


def test_published_overall_survival_with_plain_ci(out: Path) -> None:
    tte = table(out, "time_to_event").set_index("Endpoint")
    assert tte.loc["OS", "24-month, % (95% CI)"] == "42.3 (18.8–65.8)"
    assert tte.loc["OS", "Median, months (95% CI)"].startswith("18.3 (")
    assert (tte.loc["OS", "N"], tte.loc["OS", "Events"]) == ("20", "10")
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "plain scale" in html  # the CI transform is stated
    assert "km_conf_type: plain" in (out / "settings.yaml").read_text(encoding="utf-8")


def test_os_by_sct_logrank_matches_lifelines(out: Path, tan2023_rows) -> None:
    """Consolidation SCT is compared among the CR patients only (issue 10)."""
    from lifelines.statistics import logrank_test

    rows = pd.DataFrame(tan2023_rows)
    rows = rows[rows["day30_response"] == "CR"]
    t = rows["followup_months"].astype(float)
    e = rows["os_event"].astype(int)
    yes = rows["sct_consolidation"] == "yes"
    p = logrank_test(t[yes], t[~yes], e[yes], e[~yes]).p_value
    sub = table(out, "subgroups")
    sub = sub[(sub["Endpoint"] == "OS") & sub["Subgroup"].str.startswith("Consolidation SCT")]
    assert "naive" in sub["Subgroup"].iloc[0]
    assert sub["Log-rank p"].iloc[0] == f"{p:.3f}"
    assert dict(zip(sub["Level"], sub["N"], strict=True)) == {
        "Yes": str(yes.sum()),
        "No": str((~yes).sum()),
    }
    assert (out / "figures" / "km_os_by_sct_consolidation.png").exists()


def test_grade3_infections_by_window_and_sct(out: Path, tan2023_rows) -> None:
    rows = pd.DataFrame(tan2023_rows)
    ae = table(out, "adverse_events")
    late = ae[(ae["Window"] == "≥ 30 d") & (ae["Term"] == "Infection")]
    no_sct = late[late["Group"] == "Consolidation SCT: No"].iloc[0]
    followed = rows[
        (rows["sct_consolidation"] == "no")
        & (rows["followup_months"].astype(float) * 30.4375 >= 30)
    ]
    infected = followed[followed["infection_grade3plus"] == "yes"]
    assert no_sct["N"] == str(len(followed)) == "12"
    assert no_sct["Grade ≥3"].startswith(f"{len(infected)} (") and len(infected) == 5
    anytime = ae[(ae["Window"] == "Any time") & (ae["Group"] == "Overall")].set_index("Term")
    assert anytime.loc["Cytokine release syndrome", "Grade ≥3"].startswith(
        f"{(rows['crs_grade3plus'] == 'yes').sum()} ("
    )
    assert "Grade 1–2" not in ae.columns  # a wide table records grade ≥ 3 only


def test_table1_shows_what_the_paper_shows(out: Path, tan2023_rows) -> None:
    """Regression (issue 13): EMD 'No' not 'missing'; marrow blasts as median (range), not
    nine categories; human row labels; Table 1 not split by consolidation SCT."""
    rows = pd.DataFrame(tan2023_rows)
    t1 = table(out, "table1_baseline")
    assert list(t1.columns) == ["Characteristic", "Level", "Overall (n=20)"]  # not by SCT
    overall = "Overall (n=20)"
    emd = t1[t1["Characteristic"] == "Extramedullary disease"].set_index("Level")[overall]
    has = rows["extramedullary_disease"].str.lower() != "no"
    assert dict(emd) == {
        "Yes": f"{has.sum()} ({100 * has.mean():.1f}%)",
        "No": f"{(~has).sum()} ({100 * (~has).mean():.1f}%)",
    }
    blasts = t1[t1["Characteristic"] == "Marrow blasts (morphology), %"]
    assert blasts["Level"].tolist() == ["median (range)"]
    # 11 of 20 are "<5": the median (10th/11th values) and the minimum fall below 5
    numbers = sorted(float(v) for v in rows["bm_blasts_morphology_pct"] if v != "<5")
    assert (rows["bm_blasts_morphology_pct"] == "<5").sum() == 11
    assert blasts[overall].iloc[0] == f"<5 (<5–{max(numbers):.1f})"
    sex = t1[t1["Characteristic"] == "Sex"].set_index("Level")[overall]
    assert sex["Male"].startswith(f"{(rows['sex'] == 'M').sum()} (")
    src = t1[t1["Characteristic"] == "CAR-T product source"].set_index("Level")[overall]
    assert src["New donor"].startswith(f"{(rows['cart_source'] == 'new_donor').sum()} (")
    assert src["Donor of prior SCT"].startswith(
        f"{(rows['cart_source'] == 'prior_sct_donor').sum()} ("
    )
    prior = t1[t1["Characteristic"] == "Prior lines of therapy"].set_index("Level")[overall]
    assert prior["Missing"] == str((rows["prior_therapies"] == "").sum())
    text = " ".join(t1["Characteristic"]) + " " + " ".join(t1["Level"])
    assert "_" not in text and "bm blasts" not in text.lower()  # no raw column names
    assert not t1["Characteristic"].str.contains("ollow|os event|esponse").any()


def test_relapses_and_losses_reach_the_flow_and_the_swimmer(tan2023_rows) -> None:
    """Regression: status_at_last_followup's relapses and losses to follow-up were ignored."""
    from cartrial.cohort import load_cohort
    from cartrial.report.build import build_report
    from cartrial.report.settings import default_settings

    rows = pd.DataFrame(tan2023_rows)
    report = build_report(load_cohort("tan2023"), default_settings("tan2023"))
    flow = report.figure("patient_flow").info["flow"]
    dead = rows["os_event"] == "1"
    relapsed = rows["status_at_last_followup"] == "relapse"
    lost = rows["status_at_last_followup"] == "lost_to_followup"
    total = {
        k: sum(b["outcome"][k] for b in flow["branches"]) for k in flow["branches"][0]["outcome"]
    }
    assert total["died"] == dead.sum()
    assert total["alive after relapse"] == (relapsed & ~dead).sum() == 1
    assert total["lost to follow-up"] == (lost & ~dead).sum() == 3
    mk = report.figure("swimmer").info["markers"]
    assert (mk["kind"] == "relapse, day not reported").sum() == relapsed.sum()
    lanes = report.figure("swimmer").data.set_index("patient_id")
    assert set(lanes.index[lanes["lost"]]) == set(rows.loc[lost, "patient_id"])


def test_report_without_arguments_runs_on_tan2023(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["report"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "report" / "tan2023" / "index.html").exists()

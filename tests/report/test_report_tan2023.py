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
    return pd.read_csv(out / "tables" / f"{name}.csv", dtype=str, keep_default_na=False)


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
    from lifelines.statistics import logrank_test

    rows = pd.DataFrame(tan2023_rows)
    t = rows["followup_months"].astype(float)
    e = rows["os_event"].astype(int)
    yes = rows["sct_consolidation"] == "yes"
    p = logrank_test(t[yes], t[~yes], e[yes], e[~yes]).p_value
    sub = table(out, "subgroups")
    sub = sub[(sub["Endpoint"] == "OS") & (sub["Subgroup"] == "Consolidation SCT")]
    assert sub["Log-rank p"].iloc[0] == f"{p:.3f}"
    assert dict(zip(sub["Level"], sub["N"], strict=True)) == {"yes": str(yes.sum()),
                                                              "no": str((~yes).sum())}
    assert (out / "figures" / "km_os_by_sct_consolidation.svg").exists()


def test_grade3_infections_by_window_and_sct(out: Path, tan2023_rows) -> None:
    rows = pd.DataFrame(tan2023_rows)
    ae = table(out, "adverse_events")
    late = ae[ae["Window"].str.startswith("long-term") & (ae["Term"] == "infection")]
    no_sct = late[late["Group"] == "Consolidation SCT: no"].iloc[0]
    followed = rows[(rows["sct_consolidation"] == "no")
                    & (rows["followup_months"].astype(float) * 30.4375 >= 30)]
    infected = followed[followed["infection_grade3plus"] == "yes"]
    assert no_sct["N"] == str(len(followed)) == "12"
    assert no_sct["Grade ≥3"].startswith(f"{len(infected)} (") and len(infected) == 5
    anytime = ae[(ae["Window"] == "any time") & (ae["Group"] == "Overall")].set_index("Term")
    assert anytime.loc["CRS", "Grade ≥3"].startswith(
        f"{(rows['crs_grade3plus'] == 'yes').sum()} (")


def test_table1_from_the_wide_columns(out: Path, tan2023_rows) -> None:
    rows = pd.DataFrame(tan2023_rows)
    t1 = table(out, "table1_baseline")
    overall = "Overall (n=20)"
    sex = t1[t1["Characteristic"] == "Sex"].set_index("Level")[overall]
    assert sex["M"].startswith(f"{(rows['sex'] == 'M').sum()} (")
    src = t1[t1["Characteristic"] == "CAR-T product source"].set_index("Level")[overall]
    assert src["new_donor"].startswith(f"{(rows['cart_source'] == 'new_donor').sum()} (")
    prior = t1[t1["Characteristic"] == "Prior lines of therapy"].set_index("Level")[overall]
    assert prior["missing"].startswith(f"{(rows['prior_therapies'] == '').sum()} (")
    assert not t1["Characteristic"].str.contains("followup|os event|response").any()


def test_report_without_arguments_runs_on_tan2023(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["report"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "report" / "tan2023" / "index.html").exists()

"""Human labels and number formats: one registry for every word any layer prints.

It lives in ``cohort`` (the bottom layer, pure Python, no heavy imports) so that the
report, the kinetics figures, the ADaM export (``io``) and the web app all read it without
importing ``report``; ``cartrial.report.labels`` re-exports it unchanged.

``COLUMNS`` maps a patients/observation column to its display label and unit;
``VALUES`` maps a vocabulary word (``cohort.vocab``: product sources, sexes, AE terms,
causes, responses …) to its display text. Tables, figures, the web app and ADaM PARAM
texts read the same registry, so ``prior_sct_donor`` prints as "Donor of prior SCT"
everywhere. Anything not registered falls back to its words with underscores replaced
by spaces and a capital first letter, never to the raw code.

Number formats (journal style, e.g. the CD7 CAR-T reports Tan 2023 J Hematol Oncol
16:34 and Hu 2024 N Engl J Med 390:1467): percentages with one decimal; doses as
``1.0 × 10⁶/kg``; p-values with three decimals and ``< 0.001`` below that.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: baseline columns, in the order Table 1 shows them (the report) and the
#: patient form asks them (the web app)
BASELINE_ORDER = (
    "age_years",
    "age_group",
    "sex",
    "diagnosis",
    "cd7_blasts_pct",
    "bm_blasts_pct",
    "extramedullary",
    "prior_lines",
    "prior_allo_sct",
    "product_source",
    "donor_relation",
    "hla_match",
    "dose_per_kg",
    "dose_level",
    "weight_kg",
    "height_cm",
    "site",
)


#: column → (label, unit or ""); the unit prints after a comma ("Age, years")
COLUMNS: dict[str, tuple[str, str]] = {
    "patient_id": ("Patient", ""),
    "age_years": ("Age", "years"),
    "age_group": ("Age group", "years"),
    "sex": ("Sex", ""),
    "diagnosis": ("Diagnosis", ""),
    "cd7_blasts_pct": ("CD7+ blasts", "%"),
    "bm_blasts_pct": ("Marrow blasts", "%"),
    "bm_blasts_morphology_pct": ("Marrow blasts (morphology)", "%"),
    "bm_blasts_flow_pct": ("Marrow blasts (flow cytometry)", "%"),
    "extramedullary": ("Extramedullary disease", ""),
    "prior_lines": ("Prior lines of therapy", ""),
    "prior_allo_sct": ("Prior allogeneic SCT", ""),
    "product_source": ("CAR-T product source", ""),
    "donor_relation": ("Donor relation", ""),
    "hla_match": ("HLA match", ""),
    "dose_per_kg": ("Dose", "CAR-T cells/kg"),
    "dose_1e5_per_kg": ("Dose", "× 10⁵ CAR-T cells/kg"),
    "dose_level": ("Dose level", ""),
    "weight_kg": ("Weight", "kg"),
    "height_cm": ("Height", "cm"),
    "site": ("Centre", ""),
    "sct_consolidation": ("Consolidation SCT", ""),
    "best_response": ("Best response", ""),
    "cd7_status": ("CD7 status", ""),
    "car_hematotox": ("CAR-HEMATOTOX", ""),
    "car_hematotox_risk": ("CAR-HEMATOTOX risk (Rejeski 2021)", ""),
    "crs_grade3plus": ("Grade ≥ 3 CRS", ""),
    "gvhd_grade3plus": ("Grade ≥ 3 GVHD", ""),
    "infection_grade3plus": ("Grade ≥ 3 infection", ""),
    "day30_response": ("Day-30 response", ""),
    "followup_months": ("Follow-up", "months"),
    "status_at_last_followup": ("Status at last follow-up", ""),
    "os_event": ("Died", ""),
    "enrolled": ("Enrolled", ""),
    "infused": ("Infused", ""),
    # kinetics / reconstitution analytes and NCA parameters
    "cart_flow": ("CAR-T cells (flow cytometry)", "cells/µL"),
    "cart_qpcr": ("CAR transgene (qPCR)", "copies/µg DNA"),
    # NCA parameters: the concentration unit is the row's (column "unit")
    "analyte": ("Analyte", ""),
    "unit": ("Unit", ""),
    "parameter": ("Parameter", ""),
    "n": ("n", ""),
    "n_missing": ("Missing", ""),
    "median": ("Median", ""),
    "min": ("Min", ""),
    "max": ("Max", ""),
    "q1": ("Q1", ""),
    "q3": ("Q3", ""),
    "geo_mean": ("Geometric mean", ""),
    "geo_cv_pct": ("Geometric CV", "%"),
    "n_geo": ("n (geometric)", ""),
    "text": ("Median (range)", ""),
    "n_samples": ("Samples", ""),
    "n_quantifiable": ("Quantifiable", ""),
    "n_blq": ("Below LLOQ", ""),
    "cmax": ("Cmax", ""),
    "tmax": ("Tmax", "days"),
    "tmax_days": ("Tmax", "days"),
    "clast": ("Clast", ""),
    "tlast": ("Tlast", "days"),
    "t_last_detectable": ("Last detectable", "day"),
    "persistence_days": ("Persistence", "days"),
    "last_sample_day": ("Last sample", "day"),
    "auc_last": ("AUClast", ""),
    "auc_all": ("AUCall", ""),
    "auc_0_28": ("AUC₀₋₂₈", ""),
    "auc0_28": ("AUC₀₋₂₈", ""),
    "auc_0_84": ("AUC₀₋₈₄", ""),
    "lambda_z": ("λz", "1/day"),
    "half_life": ("Half-life", "days"),
    "lambda_z_start": ("λz from", "day"),
    "lambda_z_end": ("λz to", "day"),
    "lambda_z_n_points": ("λz points", ""),
    "r_squared": ("R²", ""),
    "adj_r_squared": ("Adjusted R²", ""),
    "span_ratio": ("Span / half-life", ""),
    "lambda_z_poor": ("λz poorly estimated", ""),
    "lambda_z_flag": ("λz note", ""),
    "landmark_days": ("Landmark", "days"),
    "window_days": ("Window", "days"),
    "window_start_day": ("Window from", "day"),
    "n_evaluable": ("Evaluable", ""),
    "n_detectable": ("Detectable", ""),
    "fraction": ("Share detectable", "%"),
    "threshold": ("Recovery threshold", ""),
    "threshold_source": ("Threshold source", ""),
    "strict": ("Strict", ""),
    "depletion_threshold": ("Depletion threshold", ""),
    "baseline": ("Baseline", ""),
    "nadir": ("Nadir", ""),
    "nadir_day": ("Nadir", "day"),
    "depleted": ("Depleted", ""),
    "depletion_day": ("Depletion", "day"),
    "recovered": ("Recovered", ""),
    "recovery_day": ("Recovery", "day"),
    "last_value": ("Last value", ""),
    "status": ("Status", ""),
    "cumulative_incidence": ("Cumulative incidence", "%"),
    "lower": ("Lower", "%"),
    "upper": ("Upper", "%"),
    "n_recovered": ("Recovered", ""),
    "n_competing": ("Competing events", ""),
    "anc": ("Neutrophils", "× 10⁹/L"),
    "platelets": ("Platelets", "× 10⁹/L"),
    "hemoglobin": ("Haemoglobin", "g/dL"),
    "cd3": ("CD3+ T cells", "cells/µL"),
    "cd4": ("CD4+ T cells", "cells/µL"),
    "cd8": ("CD8+ T cells", "cells/µL"),
    "cd19": ("CD19+ B cells", "cells/µL"),
    "igg": ("IgG", "g/L"),
    # further observation analytes (cohort.vocab.ANALYTES canonical names)
    "cart_pct_cd3": ("CAR-T cells of CD3+ T cells", "%"),
    "cd4_cd8_ratio": ("CD4/CD8 ratio", ""),
    "cd7_t": ("CD7+ T cells", "cells/µL"),
    "cd7neg_t": ("CD7− T cells", "cells/µL"),
    "nk": ("NK cells", "cells/µL"),
    "cd7_nk": ("CD7+ NK cells", "cells/µL"),
    "cd7neg_nk": ("CD7− NK cells", "cells/µL"),
    "cd19_b": ("CD19+ B cells", "cells/µL"),
    "b_pct_lymph": ("B cells of lymphocytes", "%"),
    "wbc": ("White blood cells", "× 10⁹/L"),
    "lymphocytes": ("Lymphocytes", "× 10⁹/L"),
    "crp": ("C-reactive protein", "mg/L"),
    "il6": ("Interleukin-6", "pg/mL"),
    "ferritin": ("Ferritin", "ng/mL"),
    "ldh": ("Lactate dehydrogenase", "U/L"),
    "chimerism": ("Donor chimerism", "%"),
    "bm_blasts": ("Marrow blasts", "%"),
    "mrd_flow": ("MRD (flow cytometry)", ""),
    "temperature": ("Body temperature", ""),
    "sbp": ("Systolic blood pressure", "mmHg"),
    "vasopressors": ("Vasopressors", ""),
    "oxygen": ("Oxygen support", ""),
    "o2_flow": ("Oxygen flow", "L/min"),
    "ice_score": ("ICE score", "points"),
    "capd_score": ("CAPD score", "points"),
    "skin_bsa_pct": ("Rash body surface area", "%"),
    "bilirubin": ("Total bilirubin", ""),
    "creatinine": ("Creatinine", ""),
    "alt": ("Alanine aminotransferase", "U/L"),
    "ast": ("Aspartate aminotransferase", "U/L"),
    "fibrinogen": ("Fibrinogen", ""),
    "stool_ml_day": ("Stool volume", "mL/day"),
    "tcr_shannon": ("TCR Shannon diversity", ""),
    "fio2": ("Inspired oxygen fraction", ""),
    "cartox10_score": ("CARTOX-10 score", "points"),
    "stool_episodes": ("Stool episodes", ""),
}

#: vocabulary word → display text
VALUES: dict[str, str] = {
    # yes/no and sexes
    "yes": "Yes",
    "no": "No",
    "M": "Male",
    "F": "Female",
    "low": "Low",
    "high": "High",
    # product sources (cohort.vocab.PRODUCT_SOURCES)
    "prior_sct_donor": "Donor of prior SCT",
    "new_donor": "New donor",
    "universal": "Universal (third-party)",
    "autologous": "Autologous",
    # responses (cohort.vocab.RESPONSES)
    "CR": "CR",
    "CRi": "CRi",
    "CRh": "CRh",
    "MLFS": "MLFS",
    "PR": "PR",
    "OR": "Objective response (not subtyped)",
    "objective_response": "Objective response (not subtyped)",
    "SD": "Stable disease",
    "NR": "No response",
    "PD": "Progressive disease",
    "NE": "Not evaluable",
    # CD7
    "negative": "Negative",
    "positive": "Positive",
    "dim": "Dim",
    # death causes / statuses
    "relapse": "Relapse",
    "infection": "Infection",
    "gvhd": "GVHD",
    "crs": "CRS",
    "icans": "ICANS",
    "other": "Other",
    "remission": "In remission",
    "lost_to_followup": "Lost to follow-up",
    "death_adverse_event": "Died of an adverse event",
    # AE terms (cohort.vocab.AE_TERMS)
    "CRS": "Cytokine release syndrome",
    "ICANS": "ICANS (neurotoxicity)",
    "aGVHD": "Acute GVHD",
    "cGVHD": "Chronic GVHD",
    "infection_ae": "Infection",
    "neutropenia": "Neutropenia",
    "thrombocytopenia": "Thrombocytopenia",
    "anemia": "Anaemia",
    "lymphopenia": "Lymphopenia",
    "leukopenia": "Leukopenia",
    "febrile_neutropenia": "Febrile neutropenia",
    "ICAHT": "ICAHT (haematotoxicity)",
    "HLH": "HLH / MAS",
    "TLS": "Tumour lysis syndrome",
    "hypotension": "Hypotension",
    "hypoxia": "Hypoxia",
    "fever": "Fever",
    "encephalopathy": "Encephalopathy",
    "seizure": "Seizure",
    "headache": "Headache",
    "diarrhea": "Diarrhoea",
    "nausea": "Nausea",
    "vomiting": "Vomiting",
    "rash": "Rash",
    "alt_increased": "ALT increased",
    "ast_increased": "AST increased",
    "bilirubin_increased": "Bilirubin increased",
    "creatinine_increased": "Creatinine increased",
    "hypofibrinogenemia": "Hypofibrinogenaemia",
    "dic": "DIC",
    "hemorrhage": "Haemorrhage",
    "cmv_reactivation": "CMV reactivation",
    "ebv_reactivation": "EBV reactivation",
    "fungal_infection": "Fungal infection",
    "bacterial_infection": "Bacterial infection",
    "viral_infection": "Viral infection",
    "arrhythmia": "Arrhythmia",
    "graft_failure": "Graft failure",
    "tma": "TA-TMA",
    "Any adverse event": "Any adverse event",
}
#: interval methods as printed (``cartrial.stats.binomial_ci`` names → text)
CI_METHODS = {
    "wilson": "Wilson",
    "clopper-pearson": "Clopper–Pearson",
    "jeffreys": "Jeffreys",
    "agresti-coull": "Agresti–Coull",
    "wald": "Wald",
}
#: AE terms whose display differs from the same word used as a death cause
AE_VALUES = {"infection": "Infection", "other": "Other adverse event"}


def _words(code: str) -> str:
    text = str(code).replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else text


def label(column: str, unit: bool = True) -> str:
    """'Age, years' for ``age_years``; unknown columns in words ('Bm blasts' style)."""
    name, u = COLUMNS.get(column, (_words(column), ""))
    return f"{name}, {u}" if unit and u else name


def unit_of(column: str) -> str:
    return COLUMNS.get(column, ("", ""))[1]


DOSE_WORD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[eE]\+?(\d+)\s*(/kg)?(\s.*)?$")


def dose_value(text: str) -> float | None:
    """``5e5/kg`` → 500000.0 (a dose level word); None for anything else."""
    m = DOSE_WORD.match(str(text))
    return float(m[1]) * 10 ** int(m[2]) if m else None


def value_label(value: Any) -> str:
    """Display text of a vocabulary word (numbers and free text pass through)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "Missing"
    text = str(value)
    if text in VALUES:
        return VALUES[text]
    m = DOSE_WORD.match(text)
    if m:
        mant = m[1][:-2] if m[1].endswith(".0") else m[1]
        return f"{mant} × 10{m[2].translate(SUPERSCRIPT)}{m[3] or ''}{m[4] or ''}"
    if "_" in text and text.replace("_", "").isalnum():
        return _words(text)
    if text[:1].islower() and text.split(" ")[0].isalpha():
        return text[:1].upper() + text[1:]
    return text


def ae_term_label(term: str) -> str:
    return AE_VALUES.get(term) or VALUES.get(term) or _words(term)


# ------------------------------------------------------------------------------ numbers
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def fmt_pct(k: int, n: int) -> str:
    """'12 (60.0%)'; a zero denominator prints a dash."""
    return f"{k} ({100.0 * k / n:.1f}%)" if n else f"{k} (–)"


def fmt_sci(x: float, digits: int = 1, unit: str = "") -> str:
    """``1.0 × 10⁶`` (+ unit) for large or small numbers; plain below 10⁴."""
    if x is None or not math.isfinite(x):
        return "NE"
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        body = f"{x:.{digits}f}"
    else:
        exp = int(math.floor(math.log10(abs(x))))
        mant = x / 10**exp
        if round(mant, digits) >= 10:
            mant, exp = mant / 10, exp + 1
        body = f"{mant:.{digits}f} × 10{str(exp).translate(SUPERSCRIPT)}"
    return f"{body}{unit}"


def fmt_p(p: float | None) -> str:
    """'0.042'; '<0.001'; 'NE' when not computable."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "NE"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


#: analyte words shown in tables (the observation vocabulary's canonical names)
ANALYTE_VALUES = {
    "cart_flow": "CAR-T cells (flow)",
    "cart_qpcr": "CAR transgene (qPCR)",
    "cd3": "CD3+ T cells",
    "cd4": "CD4+ T cells",
    "cd8": "CD8+ T cells",
    "cd19": "CD19+ B cells",
    "anc": "Neutrophils",
    "igg": "IgG",
    "platelets": "Platelets",
    "copies/ug": "copies/µg",
    "cells/uL": "cells/µL",
}
#: columns holding a fraction (0–1) shown as a percentage
FRACTION_COLUMNS = {"fraction", "cumulative_incidence", "lower", "upper"}


def fmt_sig(x: float, digits: int = 3) -> str:
    """Three significant digits for display (1.23, 45.6, 61400 → 6.14 × 10⁴)."""
    if x is None or not math.isfinite(x):
        return ""
    if x == 0:
        return "0"
    if abs(x) >= 1e5:
        return fmt_sci(x, digits - 1)
    mag = int(math.floor(math.log10(abs(x))))
    dec = max(0, digits - 1 - mag)
    return f"{x:.{dec}f}"


def humanize(df: Any) -> Any:
    """A display copy of a machine table: labelled headers (with units), numbers to three
    significant digits, fractions as %, yes/no for booleans, vocabulary words labelled."""
    import pandas as pd

    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_bool_dtype(s) or str(s.dtype) == "boolean":
            v = s.map({True: "Yes", False: "No"}).fillna("")
        elif pd.api.types.is_integer_dtype(s):
            v = s.map(lambda x: "" if pd.isna(x) else str(int(x)))
        elif pd.api.types.is_float_dtype(s):
            scale = 100.0 if col in FRACTION_COLUMNS else 1.0
            v = s.map(lambda x, k=scale: fmt_sig(float(x) * k) if pd.notna(x) else "")
        else:
            v = s.map(lambda x: "" if pd.isna(x) else ANALYTE_VALUES.get(str(x), str(x)))
        out[label(str(col))] = v.to_numpy()
    return out


#: typographic characters → ASCII (SAS XPORT v5 and CDISC submission texts are ASCII)
_ASCII = str.maketrans(
    {
        "₀": "0",
        "₁": "1",
        "₂": "2",
        "₃": "3",
        "₄": "4",
        "₅": "5",
        "₆": "6",
        "₇": "7",
        "₈": "8",
        "₉": "9",
        "⁰": "0",
        "¹": "1",
        "²": "2",
        "³": "3",
        "⁴": "4",
        "⁵": "5",
        "⁶": "6",
        "⁷": "7",
        "⁸": "8",
        "⁹": "9",
        "⁻": "-",
        "₋": "-",
        "−": "-",
        "–": "-",
        "—": "-",
        "µ": "u",
        "μ": "u",
        "λ": "lambda ",
        "×": "x",
        "≥": ">=",
        "≤": "<=",
        "·": ".",
    }
)


def ascii_text(text: str) -> str:
    """``AUC₀₋₂₈`` → ``AUC0-28``, ``λz`` → ``lambda z``, ``× 10⁹/L`` → ``x 10^9/L``: a label
    as plain ASCII for SAS XPORT / CDISC texts (anything left non-ASCII is dropped)."""
    text = re.sub(r"10([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)", lambda m: "10^" + m[1], str(text))
    out = text.translate(_ASCII).encode("ascii", "ignore").decode()
    out = re.sub(r"\s+", " ", out).strip()
    return out[:1].upper() + out[1:] if text.startswith("λ") else out

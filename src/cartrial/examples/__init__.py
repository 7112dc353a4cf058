"""Bundled example cohorts (``tan2023``) and the synthetic cohort generator."""

"""The web app: multi-centre capture, bedside grading, monitoring and the report, on
the trial database (``cartrial.store``). ``cartrial serve`` runs it."""

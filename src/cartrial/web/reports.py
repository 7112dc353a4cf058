"""The cohort report as a background job of the web app.

The threaded server never forks: a job thread exports the database's cohort to CSV and
runs ``python -m cartrial report`` (the report layer's public entry point) as a separate
process, reading its progress lines from stderr for the page. Results are cached by the
data version (the audit chain's head: every change to the data moves it), so a second
request for unchanged data gets the finished report at once and overlapping requests
share one job. On shutdown (SIGTERM to the server) running jobs are terminated.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, select

#: files a statistician may download from a finished report
DOWNLOADS = (".pdf", ".csv", ".docx", ".html", ".svg", ".png", ".yaml", ".xpt", ".json")
#: the longest a report may run before the job is stopped
TIMEOUT_S = 1800


def data_version(engine: Engine) -> str:
    """A short key that changes whenever the trial data change (the audit chain head)."""
    from cartrial.store.chain import HEAD_KEY
    from cartrial.store.models import Setting

    with engine.connect() as conn:
        head = conn.scalar(select(Setting.value).where(Setting.key == HEAD_KEY)) or "0 0 0"
    last_id, count, digest = head.split()
    return f"{last_id}-{digest[:12]}"


@dataclass
class Job:
    version: str
    status: str = "queued"  # queued, exporting, running, done, failed, stopped
    lines: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    out: Path | None = None
    error: str | None = None
    proc: subprocess.Popen | None = None

    @property
    def active(self) -> bool:
        return self.status in ("queued", "exporting", "running")

    def files(self) -> list[str]:
        """Relative paths of the downloadable files of a finished report."""
        if self.status != "done" or self.out is None:
            return []
        return sorted(
            str(p.relative_to(self.out))
            for p in self.out.rglob("*")
            if p.is_file() and p.suffix.lower() in DOWNLOADS
        )


class ReportJobs:
    """Background report jobs keyed by data version (one per version at a time)."""

    def __init__(
        self,
        engine: Engine,
        root: Path | None = None,
        command: Callable[[Path, Path], list[str]] | None = None,
    ) -> None:
        self.engine = engine
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="cartrial-reports-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.command = command or _report_command
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.closing = False
        self.slots = threading.Semaphore(1)  # one report process at a time (CPU-bound)

    def current(self) -> tuple[str, Job | None]:
        version = data_version(self.engine)
        with self.lock:
            return version, self.jobs.get(version)

    def latest_done(self) -> Job | None:
        with self.lock:
            done = [j for j in self.jobs.values() if j.status == "done"]
        return max(done, key=lambda j: j.finished or 0) if done else None

    def start(self) -> Job:
        """The job for the current data (started if none is running or done)."""
        version = data_version(self.engine)
        with self.lock:
            if self.closing:
                raise RuntimeError("the server is shutting down")
            job = self.jobs.get(version)
            if job is not None and job.status in ("queued", "exporting", "running", "done"):
                return job
            job = self.jobs[version] = Job(version)
        threading.Thread(
            target=self._run, args=(job,), name=f"report-{version}", daemon=True
        ).start()
        return job

    def _run(self, job: Job) -> None:
        with self.slots:
            if not self.closing:
                self._build(job)
            else:
                job.status, job.finished = "stopped", time.time()

    def _build(self, job: Job) -> None:
        from cartrial.cohort import CohortError, write_cohort
        from cartrial.store.cohort_io import read_cohort

        work = self.root / job.version
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            job.status = "exporting"
            job.lines.append("exporting the trial database as a cohort")
            try:
                cohort = read_cohort(self.engine)
            except CohortError as exc:
                raise _Failed(
                    "the database does not form a valid cohort: "
                    + "; ".join(map(str, exc.problems[:20]))
                ) from None
            if cohort.n_patients == 0:
                raise _Failed("no patients in the database yet")
            src = write_cohort(cohort, work / "cohort")
            out = work / "report"
            job.status = "running"
            with self.lock:
                if self.closing:
                    raise _Failed("the server is shutting down")
                job.proc = subprocess.Popen(
                    self.command(src, out),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    start_new_session=True,
                    env={**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"},
                )
            deadline = time.time() + TIMEOUT_S
            assert job.proc.stdout is not None
            for line in job.proc.stdout:
                job.lines.append(line.rstrip()[:500])
                del job.lines[:-200]
                if time.time() > deadline:
                    job.proc.kill()
            rc = job.proc.wait()
            if job.status == "stopped":
                return
            if rc != 0:
                tail = " / ".join(job.lines[-5:])
                raise _Failed(f"the report process ended with code {rc}: {tail}")
            job.out = out
            job.status = "done"
        except _Failed as exc:
            job.status, job.error = "failed", str(exc)
        except Exception as exc:
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            job.finished = time.time()

    def shutdown(self, grace_s: float = 5.0) -> None:
        """Stop running report processes (on SIGTERM / server shutdown)."""
        with self.lock:
            self.closing = True
            running = [j for j in self.jobs.values() if j.proc is not None and j.active]
        for job in running:
            job.status = "stopped"
            _terminate(job.proc, grace_s)


class _Failed(Exception):
    pass


def _terminate(proc: subprocess.Popen, grace_s: float) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except (ProcessLookupError, PermissionError):
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace_s)


def _report_command(cohort_dir: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cartrial",
        "report",
        str(cohort_dir),
        "-o",
        str(out),
        "--overwrite",
    ]


def safe_path(root: Path, relative: str) -> Path | None:
    """``root/relative`` if it stays inside ``root`` and is a file, else None."""
    try:
        path = (root / relative).resolve()
        path.relative_to(root.resolve())
    except (ValueError, OSError):
        return None
    return path if path.is_file() else None

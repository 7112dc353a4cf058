"""The cohort report as a background job of the web app.

The threaded server never forks: a job thread exports the database's cohort to CSV and
runs ``python -m cartrial report`` (the report layer's public entry point) as a separate
process, reading its progress lines from stderr for the page. On shutdown (SIGTERM to the
server) running jobs are terminated.

Finished reports are cached **on disk**, keyed by the data version (the audit chain head:
every change to the data moves it) and a fingerprint of the report settings (the report
command line and the cartrial version), so every server worker (``cartrial serve
--workers N``) and every restart reuses a built report. One build per key at a time
across processes: the builder holds an exclusive ``flock`` on ``<key>.lock``; other
workers show its progress (``progress.log``) and pick up the result when its ``done``
marker appears. The cache folder is ``$CARTRIAL_REPORT_DIR``, else ``<database
file>.reports`` beside a SQLite database, else ``~/.cache/cartrial/reports-<hash of the
database URL>``; mode 0700.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from cartrial.cohort import CohortError, write_cohort
from cartrial.store.chain import HEAD_KEY
from cartrial.store.cohort_io import read_cohort
from cartrial.store.models import Setting
from cartrial.web.deps import app_version

#: files a statistician may download from a finished report
DOWNLOADS = (".pdf", ".csv", ".docx", ".html", ".svg", ".png", ".yaml", ".xpt", ".json")
#: the longest a report may run before the job is stopped
TIMEOUT_S = 1800
DONE = "done"
PROGRESS = "progress.log"


def data_version(engine: Engine) -> str:
    """A short key that changes whenever the trial data change (the audit chain head)."""

    with engine.connect() as conn:
        head = conn.scalar(select(Setting.value).where(Setting.key == HEAD_KEY)) or "0 0 0"
    parts = head.split()
    if parts[0] == "v2":  # keyed head: v2 last_id count digest legacy_upto tag
        parts = parts[1:4]
    last_id, _count, digest = parts[:3]
    return f"{last_id}-{digest[:12]}"


def default_root(engine: Engine) -> Path:
    """The report cache folder shared by all workers on this database (see module doc)."""
    given = os.environ.get("CARTRIAL_REPORT_DIR")
    if given:
        return Path(given).expanduser()
    url = make_url(engine.url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(f"{url.database}.reports")
    digest = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "cartrial" / f"reports-{digest[:12]}"


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
    #: built by another process (progress and result read from the cache folder)
    remote: bool = False

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
    """Background report jobs keyed by data version and settings (one per key at a time,
    across all processes sharing ``root``)."""

    def __init__(
        self,
        engine: Engine,
        root: Path | str | None = None,
        command: Callable[[Path, Path], list[str]] | None = None,
    ) -> None:
        self.engine = engine
        self.root = Path(root) if root else default_root(engine)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.command = command or _report_command
        self.settings = settings_key(self.command)
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.closing = False
        self.slots = threading.Semaphore(1)  # one report process at a time (CPU-bound)

    def key(self) -> str:
        """The cache key of the current data: data version and settings fingerprint."""
        return f"{data_version(self.engine)}-{self.settings}"

    def _from_disk(self, version: str) -> Job | None:
        """A job finished (or being built) by any process, from the cache folder."""
        work = self.root / version
        done = work / DONE
        if done.is_file():
            job = Job(version, "done", self._progress(work), out=work / "report", remote=True)
            job.finished = done.stat().st_mtime
            return job
        if _locked_elsewhere(self.root / f"{version}.lock"):
            return Job(version, "running", self._progress(work), remote=True)
        return None

    @staticmethod
    def _progress(work: Path) -> list[str]:
        try:
            return (work / PROGRESS).read_text(errors="replace").splitlines()[-200:]
        except OSError:
            return []

    def _refresh(self, job: Job | None) -> Job | None:
        if job is None or not job.remote or job.status == "done":
            return job
        fresh = self._from_disk(job.version)
        if fresh is None:  # the other process stopped without a result
            job.status, job.error = "failed", "the report build in another worker stopped"
            job.finished = time.time()
            return job
        return fresh

    def current(self) -> tuple[str, Job | None]:
        version = self.key()
        with self.lock:
            job = self.jobs.get(version)
            if job is None or job.remote:
                job = self._refresh(job) if job is not None else self._from_disk(version)
                if job is not None:
                    self.jobs[version] = job
            return version, job

    def find(self, version: str) -> Job | None:
        """The job of ``version`` (a key from a URL), in this process or on disk."""
        if not re.fullmatch(r"\d+-[0-9a-f]{1,64}-[0-9a-f]{8}", version):
            return None
        with self.lock:
            job = self._refresh(self.jobs.get(version)) or self._from_disk(version)
            if job is not None:
                self.jobs[version] = job
            return job

    def latest_done(self) -> Job | None:
        with self.lock:
            done = [j for j in self.jobs.values() if j.status == "done"]
        markers = sorted(self.root.glob(f"*/{DONE}"), key=lambda p: p.stat().st_mtime)
        if markers and not any(j.version == markers[-1].parent.name for j in done):
            disk = self._from_disk(markers[-1].parent.name)
            if disk is not None:
                done.append(disk)
        return max(done, key=lambda j: j.finished or 0) if done else None

    def start(self) -> Job:
        """The job for the current data (started if none is running or done anywhere)."""
        version = self.key()
        with self.lock:
            if self.closing:
                raise RuntimeError("the server is shutting down")
            job = self._refresh(self.jobs.get(version)) or self._from_disk(version)
            if job is not None and job.status in ("queued", "exporting", "running", "done"):
                self.jobs[version] = job
                return job
            lock = _try_lock(self.root / f"{version}.lock")
            if lock is None:  # another worker took it a moment ago
                job = self.jobs[version] = Job(version, "running", remote=True)
                return job
            job = self.jobs[version] = Job(version)
        threading.Thread(
            target=self._run, args=(job, lock), name=f"report-{version}", daemon=True
        ).start()
        return job

    def _run(self, job: Job, lock: IO[bytes]) -> None:
        try:
            with self.slots:
                if not self.closing:
                    self._build(job)
                else:
                    job.status, job.finished = "stopped", time.time()
        finally:
            lock.close()  # releases the flock

    def _note(self, job: Job, work: Path, line: str) -> None:
        job.lines.append(line)
        del job.lines[:-200]
        with open(work / PROGRESS, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def _build(self, job: Job) -> None:

        work = self.root / job.version
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True, mode=0o700)
        try:
            job.status = "exporting"
            self._note(job, work, "exporting the trial database as a cohort")
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
                self._note(job, work, line.rstrip()[:500])
                if time.time() > deadline:
                    job.proc.kill()
            rc = job.proc.wait()
            if job.status == "stopped":
                return
            if rc != 0:
                tail = " / ".join(job.lines[-5:])
                raise _Failed(f"the report process ended with code {rc}: {tail}")
            job.out = out
            marker = work / f"{DONE}.tmp"
            marker.write_text(json.dumps({"finished": time.time()}))
            os.replace(marker, work / DONE)  # the result is visible to all workers at once
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
            running = [(j, j.proc) for j in self.jobs.values() if j.proc is not None and j.active]
        for job, proc in running:
            job.status = "stopped"
            _terminate(proc, grace_s)


def settings_key(command: Callable[[Path, Path], list[str]]) -> str:
    """A fingerprint of the report settings: the command line (options included) and the
    cartrial version, so a report built with other settings is never served."""

    argv = command(Path("{cohort}"), Path("{out}"))
    blob = json.dumps([Path(argv[0]).name, *argv[1:], app_version()])
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def _try_lock(path: Path) -> IO[bytes] | None:
    """An exclusive, non-blocking ``flock`` on ``path`` (held while the file stays open),
    or None when another process holds it."""
    fh = open(path, "ab")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


def _locked_elsewhere(path: Path) -> bool:
    if not path.exists():
        return False
    fh = _try_lock(path)
    if fh is None:
        return True
    fh.close()
    return False


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

"""``cartrial serve`` as a subprocess on a free loopback port, for the web benchmarks
(``bench_web.py``, ``bench_web_scale.py``): started, waited for, and stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

PASSWORD = "bench-password-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(
    url: str, workdir: Path, extra: Sequence[str] = (), quiet: bool = True, wait_s: float = 30
) -> Iterator[str]:
    """Run ``cartrial serve --db url`` (admin password ``PASSWORD``, session secret in
    ``workdir``) until the block ends; yields the base URL once ``/login`` answers."""
    port = free_port()
    env = {
        **os.environ,
        "CARTRIAL_ADMIN_PASSWORD": PASSWORD,
        "CARTRIAL_SECRET_FILE": str(workdir / "secret"),
    }
    cmd = [sys.executable, "-m", "cartrial", "serve", "--db", url]
    cmd += ["--host", "127.0.0.1", "--port", str(port), *extra]
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if quiet else None,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(int(wait_s * 10)):
            try:
                urllib.request.urlopen(base + "/login", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)

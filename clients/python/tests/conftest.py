"""A real `fresco serve` for the client's tests: the binary cargo built (target/debug/fresco, or
FRESCO_BIN), a SQLite queue, a local data store and one in-process worker, in a temporary
folder; an admin token made with `fresco tokens create`; a clip made with ffmpeg."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def fresco_bin() -> Path:
    path = Path(os.environ.get("FRESCO_BIN", REPO / "target" / "debug" / "fresco"))
    if not path.is_file():
        pytest.fail(f"{path}: no fresco binary (run `cargo build -p fresco` first, or set FRESCO_BIN)")
    return path


@dataclass
class Served:
    base: str
    token: str
    db: str
    dir: Path
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    db = f"sqlite://{folder / 'queue.db'}"
    binary = fresco_bin()
    token = subprocess.run(
        [binary, "tokens", "create", "--role", "admin", "--name", "py-client", "--db", db],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout.strip()
    assert token, "fresco tokens create printed no token"
    log = folder / "serve.log"
    env = dict(os.environ)
    # Slow frames, so that a job can be canceled while it runs and progress is seen moving.
    env["FRESCO_TEST_FRAME_DELAY_MS"] = "30"
    with open(log, "wb") as log_file:
        child = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--workers", "1", "--db", db,
             "--data", str(folder / "data"), "--work-dir", str(folder / "work")],
            cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_file,
            env=env,
        )
    base = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and base is None:
        if child.poll() is not None:
            pytest.fail(f"fresco serve exited {child.returncode}:\n{log.read_text(errors='replace')}")
        found = re.search(r"listening on (\S+)", log.read_text(errors="replace"))
        base = found.group(1) if found else None
        time.sleep(0.1)
    if base is None:
        child.kill()
        pytest.fail(f"fresco serve did not listen within 60 s:\n{log.read_text(errors='replace')}")
    yield Served(base=base, token=token, db=db, dir=folder, log=log)
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    """One second of ffmpeg's test pattern, 160x120 at 25 frames a second, in H.264."""
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
         "-i", "testsrc2=size=160x120:rate=25", "-t", "1.2",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
        check=True, timeout=120,
    )
    return path

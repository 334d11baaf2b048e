"""Start and stop real ``rescunet-ij serve`` processes for the tests (real server, real HTTP)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

LISTENING = "rescunet-ij service listening on "


@dataclass
class Server:
    """A running service process and where it listens."""

    proc: subprocess.Popen
    url: str
    models_dir: Path
    lines: list[str]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """End the process (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log(self) -> str:
        """Everything the process printed so far."""
        return "".join(self.lines)


def _pump(stream, lines: list[str], q: queue.Queue) -> None:
    for line in stream:
        lines.append(line)
        q.put(line)
    q.put(None)


def start_server(
    models_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 90
) -> Server:
    """``rescunet-ij serve --port 0 --models-dir DIR --device cpu ARGS`` until it says its URL."""
    cmd = [sys.executable, "-m", "rescunet_ij", "serve", "--port", "0", "--device", "cpu"]
    cmd += ["--models-dir", str(models_dir), *args]
    full_env = {**os.environ, "OMP_NUM_THREADS": "2", **(env or {})}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env
    )
    lines: list[str] = []
    q: queue.Queue = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines, q), daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = q.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        if LISTENING in line:
            url = line.split(LISTENING, 1)[1].split()[0]
            return Server(proc, url, models_dir, lines)
    proc.kill()
    proc.wait(10)
    raise RuntimeError("the service did not start:\n" + "".join(lines))


def run_server(models_dir: Path, *args: str, env: dict[str, str] | None = None, timeout=60):
    """Run ``rescunet-ij serve`` expecting it to refuse to start; ``(exit code, output)``."""
    cmd = [sys.executable, "-m", "rescunet_ij", "serve", "--port", "0", "--device", "cpu"]
    cmd += ["--models-dir", str(models_dir), *args]
    res = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    return res.returncode, res.stdout + res.stderr

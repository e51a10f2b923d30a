"""Child processes on loopback for the benchmarks and the tests: free ports, servers that are always stopped."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

DEFAULT_START_TIMEOUT_S = 60.0
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, *, timeout: float = DEFAULT_START_TIMEOUT_S,
                  proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate a child we started (kill it if it does not exit within 10 s)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def die_with_parent() -> None:
    """In a child before exec: get SIGTERM when its parent dies, even by SIGKILL (Linux prctl)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def run_process(command: list[str], log_path: Path, **popen) -> Iterator[subprocess.Popen]:
    """A child process for the duration of the block, its output in `log_path`; always stopped."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent, **popen)
        try:
            yield proc
        finally:
            stop_process(proc)


@contextlib.contextmanager
def serve(command: list[str], port: int, log_path: Path, *, timeout: float = DEFAULT_START_TIMEOUT_S,
          **popen) -> Iterator[subprocess.Popen]:
    """A server process until the block ends; yields once it listens on 127.0.0.1:`port`."""
    with run_process(command, log_path, **popen) as proc:
        wait_for_port(port, timeout=timeout, proc=proc)
        yield proc

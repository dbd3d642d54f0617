#!/usr/bin/env python3
"""Run the web server, a Celery worker and celery-beat together until stopped.

Each line a process writes is printed with the process name in front. On SIGINT
(Ctrl-C) or SIGTERM, each process gets SIGTERM, and any still running after
STOP_TIMEOUT_SECONDS is killed with its process group. When one process exits on its
own, the others are stopped the same way and this script exits with status 1.

HOST and PORT set the web server's address (default 127.0.0.1:8000).
SHARESTACK_VAR_DIR moves var/, as it does in settings.
"""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

logger = logging.getLogger("run_all")

REPO_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SHARESTACK_VAR_DIR", REPO_ROOT / "var"))
STOP_TIMEOUT_SECONDS = 15.0
POLL_SECONDS = 0.2


def venv_python() -> str:
    """Return the repository's .venv interpreter, or this one when there is no .venv."""
    candidate = REPO_ROOT / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def commands(python: str) -> dict[str, list[str]]:
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    celery = [python, "-m", "celery", "-A", "sharestack_push"]
    return {
        "web": [
            python,
            "manage.py",
            "runserver",
            f"{host}:{port}",
            "--noreload",
            "--insecure",
        ],
        # With no -Q the worker consumes every queue in CELERY_TASK_QUEUES.
        "worker": [*celery, "worker", "--loglevel=INFO"],
        # The DatabaseScheduler set in settings keeps the schedule in the database and
        # ignores this file. It is named so that beat's default file scheduler, if
        # settings switch back to it, writes under var/ and not the repository root.
        "beat": [
            *celery,
            "beat",
            "--loglevel=INFO",
            f"--schedule={VAR_DIR / 'celerybeat-schedule'}",
        ],
    }


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    reader: threading.Thread = field(init=False)


class Output:
    """Writes lines from several processes to stdout, one whole line at a time."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.lock = threading.Lock()

    def write(self, name: str, line: str) -> None:
        with self.lock:
            sys.stdout.write(f"{name:<{self.width}} | {line}\n")
            sys.stdout.flush()

    def copy_lines(self, name: str, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.write(name, raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        stream.close()


def start(name: str, argv: list[str], output: Output) -> Child:
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Links in messages and callback checks use the address this web server listens on,
    # unless the environment names a public address.
    environment.setdefault(
        "PUSH_PUBLIC_BASE_URL",
        f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}",
    )
    # A new session per child: Ctrl-C reaches only this script, which then stops the
    # children in order, and a stuck child can be killed with its pool processes.
    process = subprocess.Popen(
        argv,
        cwd=REPO_ROOT,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    child = Child(name, process)
    child.reader = threading.Thread(
        target=output.copy_lines, args=(name, process.stdout), daemon=True
    )
    child.reader.start()
    logger.info("started %s (pid %d): %s", name, process.pid, " ".join(argv))
    return child


def stop(children: list[Child], timeout: float) -> None:
    """Send SIGTERM to each running child, then SIGKILL the groups that outlive timeout."""
    for child in children:
        if child.process.poll() is None:
            logger.info("stopping %s (pid %d)", child.name, child.process.pid)
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        remaining = max(deadline - time.monotonic(), 0.0)
        try:
            child.process.wait(remaining)
        except subprocess.TimeoutExpired:
            logger.warning(
                "%s (pid %d) still running %.0f s after SIGTERM, sending SIGKILL",
                child.name,
                child.process.pid,
                timeout,
            )
            kill_group(child.process.pid)
            child.process.wait()
        logger.info("%s exited with code %s", child.name, child.process.returncode)
    for child in children:
        # A worker's pool processes may still hold the pipe after their parent exits.
        kill_group(child.process.pid)
        child.reader.join(timeout=2.0)


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def first_exited(children: list[Child]) -> Child | None:
    for child in children:
        if child.process.poll() is not None:
            return child
    return None


def run() -> int:
    stop_signal: list[int] = []

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_signal.append(signum)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    argvs = commands(venv_python())
    output = Output(max(len(name) for name in argvs))
    children: list[Child] = []
    try:
        for name, argv in argvs.items():
            children.append(start(name, argv, output))
        while not stop_signal:
            exited = first_exited(children)
            if exited is not None:
                logger.error(
                    "%s exited unexpectedly with code %s, stopping the others",
                    exited.name,
                    exited.process.returncode,
                )
                return 1
            time.sleep(POLL_SECONDS)
        logger.info(
            "received %s, stopping all processes", signal.Signals(stop_signal[0]).name
        )
        return 0
    finally:
        stop(children, STOP_TIMEOUT_SECONDS)
        logger.info("all processes stopped")


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="run_all | %(asctime)s %(levelname)s %(message)s"
    )
    sys.exit(run())


if __name__ == "__main__":
    main()

"""Shared set-up for the benchmarks: a fresh database and broker, real processes, RSS.

Every benchmark runs the service as separate processes on 127.0.0.1: the web app under
gunicorn, Celery workers on the Redis broker, and (for the broadcast benchmark) the
fake FCM server. ``Processes`` starts each one in its own session and stops them all,
so that a failed run leaves nothing behind.

Set BENCH_PROFILE_DIR to a directory to start the workers through ``profiled-worker``
below: each pool process then writes cProfile files for its task thread and for the
provider's asyncio thread into that directory. Profiling slows the workers, so the
figures of a profiled run are not results.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(REPO_ROOT / ".venv" / "bin" / "python")

DATABASE_NAME = "sharestack_bench"
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE_NAME}"
# The tests use Redis databases 0 (cache) and 1 (broker), so the benchmarks use 3.
BROKER_URL = "redis://127.0.0.1:6379/3"
# Fixed so that every process derives the same key for channel credentials.
SECRET_KEY = "bench-secret-key-for-local-benchmarks-only-0123456789"
FCM_PROJECT_ID = "sharestack-bench"
PUSH_PATH = "/api/v1/notifications/push"

STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
RSS_SAMPLE_SECONDS = 0.1
DISCOVER_EVERY_SAMPLES = 10
MIB = 1024 * 1024


class BenchError(RuntimeError):
    """A benchmark step failed. The message names the step and the counts."""


def bench_environment() -> dict[str, str]:
    """Return the environment for every process of a benchmark run."""
    environment = dict(os.environ)
    # Without REDIS_URL the cache is per process (LocMemCache), which the pipeline
    # does not rely on, and no benchmark touches the tests' Redis databases.
    environment.pop("REDIS_URL", None)
    environment.pop("CREDENTIALS_KEY", None)
    environment.update(
        {
            "DJANGO_SETTINGS_MODULE": "sharestack_push.settings",
            "DATABASE_URL": DATABASE_URL,
            "CELERY_BROKER_URL": BROKER_URL,
            "SECRET_KEY": SECRET_KEY,
            "PYTHONUNBUFFERED": "1",
        }
    )
    environment.setdefault("LOG_LEVEL", "INFO")
    return environment


def setup_django() -> None:
    """Point this process at the benchmark database and set Django up."""
    environment = bench_environment()
    os.environ.clear()
    os.environ.update(environment)
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import django

    django.setup()


def reset_database() -> None:
    """Drop the benchmark database and create it empty."""
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE_NAME} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {DATABASE_NAME}")


def reset_broker() -> None:
    """Delete whatever a previous run left in the benchmark's Redis database."""
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()


def run_manage(run_dir: Path, *arguments: str) -> str:
    """Run a manage.py command to completion and return its stdout."""
    log_path = run_dir / f"manage-{arguments[0]}.log"
    with open(log_path, "a", encoding="utf-8") as log:
        completed = subprocess.run(
            [PYTHON, "manage.py", *arguments],
            cwd=REPO_ROOT,
            env=bench_environment(),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            check=False,
        )
    if completed.returncode != 0:
        raise BenchError(
            f"manage.py {' '.join(arguments)} failed with exit code "
            f"{completed.returncode}; see {log_path}"
        )
    return completed.stdout


def prepare_database(run_dir: Path) -> None:
    """Create a fresh benchmark database, migrate it and empty the broker."""
    reset_database()
    reset_broker()
    run_manage(run_dir, "migrate", "--noinput")


def create_api_key(run_dir: Path) -> str:
    """Create an API key with the push scope and return it.

    The command prints the key on its last line of output.
    """
    output = run_manage(run_dir, "create_api_key", "bench", "--scope", "push")
    return output.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_run_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="sharestack-bench-"))


def tail(path: Path, characters: int = 3000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-characters:]
    except OSError as error:
        return f"(cannot read {path}: {error})"


@dataclass
class Child:
    role: str
    process: subprocess.Popen
    log_path: Path


@dataclass
class Processes:
    """The processes a benchmark started, stopped together by ``stop_all``."""

    run_dir: Path
    children: list[Child] = field(default_factory=list)

    def start(self, role: str, argv: list[str]) -> Child:
        log_path = self.run_dir / f"{role}.log"
        # The child writes to its own copy of the file descriptor.
        with open(log_path, "w", encoding="utf-8") as log_file:
            # A session per child, so that stopping one also reaches its pool
            # processes.
            process = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,
                env=bench_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(role, process, log_path)
        self.children.append(child)
        logger.info("started %s (pid %d)", role, process.pid)
        return child

    def check_running(self) -> None:
        """Raise BenchError when a started process has exited."""
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                raise BenchError(
                    f"{child.role} (pid {child.process.pid}) exited with code {code}. "
                    f"Last output:\n{tail(child.log_path)}"
                )

    def stop_all(self) -> None:
        """Send SIGTERM to each process, then SIGKILL the sessions still alive."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for child in reversed(self.children):
            try:
                child.process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                logger.warning(
                    "%s (pid %d) still running after SIGTERM, so its session gets SIGKILL",
                    child.role,
                    child.process.pid,
                )
            # Pool processes can outlive their parent. The session id is the pid.
            kill_session(child.process.pid)
            child.process.wait()
        self.children.clear()


def kill_session(session_id: int) -> None:
    try:
        os.killpg(session_id, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_benchmark(name: str, run: Callable[[], None]) -> int:
    """Run a benchmark's body with SIGTERM handled and Django set up; return the exit code."""
    raise_on_sigterm()
    setup_django()
    try:
        run()
    except BenchError as error:
        print(f"{name} benchmark failed: {error}", file=sys.stderr)
        return 1
    return 0


def raise_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that ``finally`` blocks stop the processes."""

    def handle(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handle)


def wait_until(
    condition: Callable[[], bool],
    description: str,
    processes: Processes,
    timeout: float = STARTUP_TIMEOUT_SECONDS,
    step: float = 0.1,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        processes.check_running()
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {description}")
        time.sleep(step)


def start_fake_fcm(processes: Processes) -> tuple[str, dict[str, Any]]:
    """Start the fake FCM server as a process and return its URL and service account."""
    port = free_port()
    account_path = processes.run_dir / "service-account.json"
    processes.start(
        "fake-fcm",
        [
            PYTHON,
            "-m",
            "tests.fakes.fcm",
            "--port",
            str(port),
            "--project",
            FCM_PROJECT_ID,
            "--service-account-out",
            str(account_path),
        ],
    )
    wait_until(account_path.exists, "the fake FCM server", processes)
    account = json.loads(account_path.read_text(encoding="utf-8"))
    return f"http://127.0.0.1:{port}", account


def start_web(processes: Processes, workers: int = 1) -> str:
    """Start the web app under gunicorn and return its base URL.

    It returns once the port accepts TCP connections, which gunicorn opens before its
    worker has loaded Django, so the first request may wait for that.
    """
    port = free_port()
    processes.start(
        "web",
        [
            PYTHON,
            "-m",
            "gunicorn",
            "sharestack_push.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
        ],
    )
    wait_until(lambda: port_open(port), "the web app", processes)
    return f"http://127.0.0.1:{port}"


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class WorkerOptions:
    """How many Celery worker processes to start, with which pool and concurrency."""

    count: int
    pool: str
    concurrency: int

    def describe(self) -> str:
        return (
            f"{self.count} x celery worker --pool={self.pool} "
            f"--concurrency={self.concurrency}"
        )


DEFAULT_WORKERS = WorkerOptions(count=1, pool="prefork", concurrency=2)


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --workers, --pool and --concurrency; bench/README.md explains the defaults."""
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS.count,
        help=f"Celery worker processes (default {DEFAULT_WORKERS.count})",
    )
    parser.add_argument(
        "--pool",
        default=DEFAULT_WORKERS.pool,
        choices=["prefork", "threads", "solo"],
        help=f"Celery pool of each worker (default {DEFAULT_WORKERS.pool})",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_WORKERS.concurrency,
        help="pool processes or threads per worker "
        f"(default {DEFAULT_WORKERS.concurrency})",
    )


def worker_options(arguments: argparse.Namespace) -> WorkerOptions:
    return WorkerOptions(arguments.workers, arguments.pool, arguments.concurrency)


def start_workers(processes: Processes, options: WorkerOptions) -> None:
    """Start the workers and wait until each one replies to a control ping."""
    profile_dir = os.environ.get("BENCH_PROFILE_DIR")
    for number in range(1, options.count + 1):
        arguments = [
            "worker",
            "--loglevel=INFO",
            f"--pool={options.pool}",
            f"--concurrency={options.concurrency}",
            f"--hostname=bench{number}@%h",
        ]
        if profile_dir:
            argv = [PYTHON, "-m", "bench.common", "profiled-worker", *arguments]
        else:
            argv = [PYTHON, "-m", "celery", "-A", "sharestack_push", *arguments]
        processes.start(f"worker-{number}", argv)

    from sharestack_push.celery import app

    def all_replied() -> bool:
        return len(app.control.ping(timeout=0.5)) >= options.count

    wait_until(all_replied, f"{options.count} Celery worker(s)", processes)


def create_fcm_channel(base_url: str, service_account: dict[str, Any]) -> None:
    from channels_app.models import Channel

    Channel.objects.create(
        name="fcm-bench",
        kind="app",
        provider="fcm",
        config={"project_id": FCM_PROJECT_ID, "base_url": base_url},
        credentials={"service_account": service_account},
    )


def seed_users(count: int, batch_size: int = 5000) -> list[tuple[str, str]]:
    """Insert `count` user profiles with one FCM device each.

    Returns the (user id, device token) pairs.
    """
    from channels_app.models import Device
    from preferences.models import UserProfile

    users = [(f"bench-user-{n:07d}", f"bench-token-{n:07d}") for n in range(count)]
    UserProfile.objects.bulk_create(
        [UserProfile(user_id=user_id) for user_id, _ in users], batch_size=batch_size
    )
    Device.objects.bulk_create(
        [
            Device(user_id=user_id, platform="android", provider="fcm", token=token)
            for user_id, token in users
        ],
        batch_size=batch_size,
    )
    return users


def post_push(
    session: Any, web_url: str, api_key: str, body: dict[str, Any]
) -> dict[str, Any]:
    """POST one push and return the response body.

    Raises BenchError unless the API returns 202 Accepted.
    """
    response = session.post(
        f"{web_url}{PUSH_PATH}",
        json=body,
        headers={"Authorization": f"Api-Key {api_key}"},
        timeout=30,
    )
    if response.status_code != 202:
        raise BenchError(
            f"POST {PUSH_PATH} returned {response.status_code}: {response.text[:500]}"
        )
    return response.json()


def warm_up(session: Any, web_url: str, api_key: str, processes: Processes) -> None:
    """Send one push to a user with no profile and wait until its task completes.

    This loads the code behind the first request and the first jobs in the web
    process and in a worker, as a running service would have done long ago. The
    record is suppressed for lack of an address, so the fake FCM server receives
    nothing.
    """
    from sharestack_push.notifications.models import PushTask

    body = {
        "notification_id": f"bench-warm-up-{time.time_ns()}",
        "notification_type": "bench",
        "user_id": "bench-warm-up-user",
        "channels": ["app"],
        "content": {"title": "Warm-up", "body": "Not delivered"},
    }
    task_id = post_push(session, web_url, api_key, body)["id"]

    def completed() -> bool:
        return PushTask.objects.filter(pk=task_id, status="completed").exists()

    wait_until(completed, "the warm-up push to complete", processes)


@dataclass
class ProcessUsage:
    """Peak RSS and CPU seconds of one process, as sampled."""

    role: str
    pid: int
    name: str
    peak_rss: int = 0
    cpu_seconds: float = 0.0
    # CPU seconds when the window opened, or 0 for a process first seen after that.
    cpu_at_window_start: float = 0.0

    @property
    def window_cpu(self) -> float:
        return self.cpu_seconds - self.cpu_at_window_start


class ResourceSampler(threading.Thread):
    """Samples the peak RSS and CPU time of the started processes and their children.

    It also samples the CPU time of PostgreSQL (the postmaster and each backend),
    Redis and this script. A report can then show where the machine's CPU went while
    the timed window was open, from ``start_window`` to ``stop``. A PostgreSQL backend
    that lives shorter than one interval is missed.
    """

    def __init__(self, processes: Processes, interval: float = RSS_SAMPLE_SECONDS):
        super().__init__(name="resource-sampler", daemon=True)
        self.processes = processes
        self.interval = interval
        self.usage: dict[int, ProcessUsage] = {}
        self.window_seconds = 0.0
        self._services = find_services()
        self._members: list[tuple[str, psutil.Process]] = []
        self._samples = 0
        self._window_open = False
        self._window_opened_at = 0.0
        self._machine_start: Any = None
        self._machine_end: Any = None
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def start_window(self) -> None:
        self.sample()
        with self._lock:
            for usage in self.usage.values():
                usage.cpu_at_window_start = usage.cpu_seconds
            self._window_open = True
            self._machine_start = psutil.cpu_times()
            self._window_opened_at = time.monotonic()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.sample()
        if self._window_open:
            self._machine_end = psutil.cpu_times()
            self.window_seconds = time.monotonic() - self._window_opened_at

    def sample(self) -> None:
        with self._lock:
            # Finding descendants reads every process on the machine, so it runs on
            # every tenth sample; pool processes all start before the clock does.
            if self._samples % DISCOVER_EVERY_SAMPLES == 0:
                self._members = self._discover()
            self._samples += 1
            for role, process in [*self._members, *self._service_members()]:
                self._record(role, process)

    def _discover(self) -> list[tuple[str, psutil.Process]]:
        members = []
        for child in list(self.processes.children):
            try:
                root = psutil.Process(child.process.pid)
                descendants = root.children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            members.extend((child.role, process) for process in [root, *descendants])
        return members

    def _service_members(self) -> list[tuple[str, psutil.Process]]:
        members = [("this script", psutil.Process())]
        for role, pid in self._services:
            for member_pid in [pid, *child_pids(pid)]:
                try:
                    members.append((role, psutil.Process(member_pid)))
                except psutil.NoSuchProcess:
                    continue
        return members

    def _record(self, role: str, process: psutil.Process) -> None:
        try:
            with process.oneshot():
                rss = process.memory_info().rss
                times = process.cpu_times()
                usage = self.usage.get(process.pid)
                if usage is None:
                    usage = ProcessUsage(role, process.pid, process_label(process))
        except psutil.NoSuchProcess:
            return
        self.usage.setdefault(process.pid, usage)
        usage.peak_rss = max(usage.peak_rss, rss)
        usage.cpu_seconds = times.user + times.system

    def started_processes(self) -> list[ProcessUsage]:
        services = {role for role, _ in self._services} | {"this script"}
        return sorted(
            (usage for usage in self.usage.values() if usage.role not in services),
            key=lambda usage: (usage.role, usage.pid),
        )

    def report(self) -> list[str]:
        lines = [
            f"  {'role':<10} {'process':<20} {'pid':>7} {'peak RSS':>10} {'CPU':>8}"
        ]
        for usage in self.started_processes():
            lines.append(
                f"  {usage.role:<10} {usage.name:<20} {usage.pid:>7} "
                f"{usage.peak_rss / MIB:6.1f} MiB {usage.window_cpu:6.1f} s"
            )
        return lines

    def cpu_summary(self) -> CpuSummary | None:
        """Return where the machine's CPU time went while the window was open."""
        if self._machine_start is None or self._machine_end is None:
            return None
        started = {usage.pid for usage in self.started_processes()}
        services: dict[str, float] = {}
        for usage in self.usage.values():
            if usage.pid not in started:
                services[usage.role] = services.get(usage.role, 0.0) + usage.window_cpu
        start, end = self._machine_start, self._machine_end
        return CpuSummary(
            window=self.window_seconds,
            cpus=psutil.cpu_count() or 1,
            busy=machine_busy(end) - machine_busy(start),
            interrupts=end.irq + end.softirq - start.irq - start.softirq,
            processes=sum(self.usage[pid].window_cpu for pid in started),
            services=services,
        )


@dataclass(frozen=True)
class CpuSummary:
    """CPU seconds used in a timed window, split by who used them."""

    window: float
    cpus: int
    busy: float
    # Interrupt handling, which includes some of the kernel's work on TCP packets.
    interrupts: float
    # The processes the benchmark started, with their descendants.
    processes: float
    # PostgreSQL, Redis and the benchmark script itself, by name.
    services: dict[str, float]

    @property
    def pipeline(self) -> float:
        """CPU of the started processes, PostgreSQL and Redis, without the script's."""
        return self.processes + sum(
            seconds for name, seconds in self.services.items() if name != "this script"
        )

    @property
    def other(self) -> float:
        """CPU that no sampled process used outside interrupts.

        This is other work on the machine, kernel threads, and processes that lived
        shorter than one sampling interval.
        """
        services = sum(self.services.values())
        return self.busy - self.interrupts - self.processes - services

    def describe(self) -> str:
        shares = ", ".join(
            f"{name} {seconds:.1f} s" for name, seconds in sorted(self.services.items())
        )
        return (
            f"machine CPU busy {self.busy:.1f} s of {self.window * self.cpus:.1f} s "
            f"({self.cpus} CPUs x {self.window:.1f} s): processes above "
            f"{self.processes:.1f} s, {shares}, interrupts {self.interrupts:.1f} s, "
            f"unaccounted {self.other:.1f} s"
        )


def machine_busy(times: Any) -> float:
    return times.user + times.nice + times.system + times.irq + times.softirq


def print_idle_load(seconds: float = 2.0) -> None:
    """Print how busy the machine is while the benchmark's processes sit idle.

    Other work on the machine takes CPU from the run and lowers its figures.
    """
    before = psutil.cpu_times()
    time.sleep(seconds)
    busy = machine_busy(psutil.cpu_times()) - machine_busy(before)
    cpus = psutil.cpu_count() or 1
    print(
        f"machine CPU busy before the run: {100 * busy / (seconds * cpus):.0f}% "
        f"of {cpus} CPUs over {seconds:.0f} s",
        flush=True,
    )


SERVICE_NAMES = {"postgres": "PostgreSQL", "redis-server": "Redis"}


def find_services() -> list[tuple[str, int]]:
    """Return (name, pid) of the PostgreSQL postmaster and of each Redis server."""
    services = []
    for process in psutil.process_iter(["name", "ppid"]):
        name = SERVICE_NAMES.get(process.info["name"] or "")
        if name is None:
            continue
        try:
            parent_name = psutil.Process(process.info["ppid"]).name()
        except psutil.NoSuchProcess:
            parent_name = ""
        # Every PostgreSQL process is a child of the postmaster, which is not.
        if name == "Redis" or parent_name != "postgres":
            services.append((name, process.pid))
    return services


def child_pids(pid: int) -> list[int]:
    """Return the pids of a process's children, read from /proc (Linux only)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as file:
            return [int(child) for child in file.read().split()]
    except OSError:
        return []


def process_label(process: psutil.Process) -> str:
    """Name a process by what it runs: gunicorn, celery main or pool process, fake."""
    arguments = process.cmdline()
    text = " ".join(arguments)
    if "gunicorn" in text:
        return "gunicorn master" if process.ppid() == os.getpid() else "gunicorn worker"
    if "celery" in text or "profiled-worker" in text:
        return "celery main" if process.ppid() == os.getpid() else "celery pool process"
    if "tests.fakes.fcm" in text:
        return "fake FCM"
    if text.startswith("postgres: "):
        return "backend"
    return process.name()


def print_processes(sampler: ResourceSampler) -> None:
    """Print each process's peak RSS and the CPU seconds it used in the window."""
    print(
        f"processes (RSS sampled every {sampler.interval * 1000:.0f} ms with psutil; "
        "CPU seconds used while timed):"
    )
    for line in sampler.report():
        print(line)
    summary = sampler.cpu_summary()
    print(summary.describe() if summary is not None else "machine CPU: not measured")


def install_profiler_hooks(output_dir: Path) -> None:
    """Profile every pool process: its task thread and the provider's asyncio thread.

    cProfile records only the thread that enabled it. The asyncio thread that sends the
    provider requests starts after the fork, so a threading profile hook enables a
    second profiler inside it. Both write their files after every task, because
    billiard ends pool processes with os._exit, which skips any exit hook.
    """
    import cProfile

    from celery import signals

    profilers: dict[str, cProfile.Profile] = {}

    def enable_in_new_thread(*_arguments: Any) -> None:
        sys.setprofile(None)
        if threading.current_thread().name != "provider-io" or "io" in profilers:
            return
        profilers["io"] = cProfile.Profile()
        profilers["io"].enable()

    def dump_io() -> None:
        profiler = profilers["io"]
        profiler.dump_stats(output_dir / f"pool-{os.getpid()}-io.prof")
        profiler.enable()

    @signals.worker_process_init.connect(weak=False)
    def start_profiling(**_kwargs: Any) -> None:
        threading.setprofile(enable_in_new_thread)
        profilers["task"] = cProfile.Profile()
        profilers["task"].enable()

    @signals.task_postrun.connect(weak=False)
    def dump_profiles(**_kwargs: Any) -> None:
        if "task" not in profilers:
            return
        profilers["task"].dump_stats(output_dir / f"pool-{os.getpid()}-task.prof")
        profilers["task"].enable()
        if "io" in profilers:
            from channels_app.providers import aio

            aio.event_loop().call_soon_threadsafe(dump_io)


def profiled_worker_main(celery_arguments: list[str]) -> None:
    output_dir = Path(os.environ["BENCH_PROFILE_DIR"])
    output_dir.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO_ROOT))
    from sharestack_push.celery import app

    install_profiler_hooks(output_dir)
    app.worker_main(celery_arguments)


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark helpers.")
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser(
        "profiled-worker",
        help="run `celery worker` with the given arguments, writing cProfile files "
        "into $BENCH_PROFILE_DIR",
    )
    worker.add_argument("celery_arguments", nargs=argparse.REMAINDER)
    arguments = parser.parse_args()
    if arguments.command == "profiled-worker":
        profiled_worker_main(arguments.celery_arguments)


if __name__ == "__main__":
    main()

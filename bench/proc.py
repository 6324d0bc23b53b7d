"""Run a command and measure its wall time and memory: peak RSS of the process tree, sampled from /proc.

``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is the high-water mark of the single largest process, which
undercounts a pipeline whose kernels run side by side. So a sampler thread sums, every ``interval``
seconds, the RSS (``/proc/<pid>/statm``) and the PSS (``/proc/<pid>/smaps_rollup``: shared pages split
between the processes that share them) over the command and all its descendants, and keeps the peaks.
``os.wait4`` gives the largest single process's ``ru_maxrss`` as well (exact, not sampled).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024


@dataclass
class Measured:
    returncode: int
    wall_seconds: float
    max_process_rss_mb: float  # ru_maxrss of the largest process of the tree (os.wait4), exact
    peak_tree_rss_mb: float | None  # sampled sum of RSS over the tree (shared pages counted per process)
    peak_tree_pss_mb: float | None  # sampled sum of PSS (shared pages split), None where unreadable
    max_processes: int
    timed_out: bool = False
    stdout: str = ""
    stderr: str = ""

    def summary(self) -> dict:
        out = asdict(self)
        out.pop("stdout")
        out.pop("stderr")
        return out


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may contain spaces: split after the last ')'
        fields = text[text.rfind(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _tree(root: int) -> list[int]:
    children = _children_map()
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def _rss_pss(pid: int) -> tuple[int, int | None]:
    try:
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0, 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return rss, int(line.split()[1]) * 1024
    except PermissionError:
        return rss, None
    except (OSError, ValueError):
        return rss, 0  # the process ended between the two reads
    return rss, None


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None, cwd: str | Path | None = None,
                 interval: float = 0.2, timeout: float | None = None, capture: bool = True) -> Measured:
    """Run ``cmd``; return its exit status, wall time and memory peaks (see the module docstring)."""
    sampling = Path("/proc/self/statm").exists()
    peaks = {"rss": 0, "pss": 0, "pss_ok": True, "procs": 0}
    stop = threading.Event()
    out = subprocess.PIPE if capture else None
    started = time.perf_counter()
    # a session of its own, so that a timeout ends the whole tree (workers, kernels), not only the command
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=out, text=True, start_new_session=True)
    timed_out = threading.Event()

    def kill_tree() -> None:
        timed_out.set()
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 0.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            if wait and stop.wait(wait):
                return

    def sample() -> None:
        while not stop.is_set():
            pids = _tree(proc.pid)
            rss = pss = 0
            for pid in pids:
                r, p = _rss_pss(pid)
                rss += r
                if p is None:
                    peaks["pss_ok"] = False
                else:
                    pss += p
            peaks["rss"] = max(peaks["rss"], rss)
            peaks["pss"] = max(peaks["pss"], pss)
            peaks["procs"] = max(peaks["procs"], len(pids))
            stop.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True) if sampling else None
    if sampler:
        sampler.start()
    buffers: dict[str, list[str]] = {"stdout": [], "stderr": []}

    def drain(stream, key: str) -> None:
        for chunk in iter(lambda: stream.read(65536), ""):
            buffers[key].append(chunk)

    readers = [threading.Thread(target=drain, args=(getattr(proc, key), key), daemon=True)
               for key in buffers if capture]
    for reader in readers:
        reader.start()
    timer = threading.Timer(timeout, kill_tree) if timeout else None
    if timer:
        timer.start()
    # wait4 on this child alone: its own rusage (with the descendants it waited for), not the running
    # maximum over every child this process ever had (RUSAGE_CHILDREN)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if timer:
        timer.cancel()
    for reader in readers:
        reader.join()
    stop.set()
    if sampler:
        sampler.join()
    if timed_out.is_set():
        try:  # whatever the command left behind in its session
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return Measured(returncode=proc.returncode, wall_seconds=wall, max_process_rss_mb=usage.ru_maxrss / 1024,
                    peak_tree_rss_mb=peaks["rss"] / MB if sampling else None,
                    peak_tree_pss_mb=peaks["pss"] / MB if sampling and peaks["pss_ok"] else None,
                    max_processes=peaks["procs"], timed_out=timed_out.is_set(), stdout="".join(buffers["stdout"]),
                    stderr="".join(buffers["stderr"]))

"""``run.lock``: which process trains a run directory, and when another may take it over.

The lock holds ``{pid, host, since, heartbeat, heartbeat_every}``. While a run holds it, a background thread
(``Heartbeat``) rewrites ``heartbeat`` (Unix time) every ``HEARTBEAT_SECONDS``. A lock is stale when
- it is unreadable or lacks pid/host;
- its host is this one and its pid is dead (a killed run);
- its host is another one (a requeued cluster job lands elsewhere) and its heartbeat is older than
  ``STALE_BEATS`` heartbeat periods: the holder stopped beating, so it is gone. A lock from another host
  without a heartbeat (written before heartbeats existed) cannot be shown stale and is respected.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from bench import io

HEARTBEAT_SECONDS = 60.0
STALE_BEATS = 3


def lock_record(since: str) -> Dict[str, Any]:
    """What this process writes into run.lock."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": since,
        "heartbeat": time.time(),
        "heartbeat_every": HEARTBEAT_SECONDS,
    }


def pid_alive(pid: int) -> bool:
    """True if ``pid`` is a running (not zombie) process on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child that was not reaped yet still answers kill(0)
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def stale_reason(holder: Mapping[str, Any]) -> Optional[str]:
    """Why the lock ``holder`` may be taken over, or None when its holder may still be alive."""
    pid, host = holder.get("pid"), holder.get("host")
    if not isinstance(pid, int) or not host:
        return "unreadable"
    if host == socket.gethostname():
        return None if pid != os.getpid() and pid_alive(pid) else f"pid {pid} is no longer running"
    beat, every = holder.get("heartbeat"), holder.get("heartbeat_every")
    if not isinstance(beat, (int, float)) or not isinstance(every, (int, float)):
        return None  # no heartbeat: cannot be shown stale
    age = time.time() - float(beat)
    if age > STALE_BEATS * float(every):
        return f"its last heartbeat was {age:.0f} s ago (one is written every {float(every):g} s)"
    return None


class Heartbeat:
    """Rewrites the lock's ``heartbeat`` every ``HEARTBEAT_SECONDS`` while this process holds it."""

    def __init__(self, lock_path: Path) -> None:
        self.lock_path = lock_path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="run.lock heartbeat", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                holder = io.read_json(self.lock_path)
            except Exception:  # noqa: BLE001 - gone or unreadable: not ours any more
                return
            if not isinstance(holder, dict) or holder.get("pid") != os.getpid():
                return
            holder["heartbeat"] = time.time()
            io.atomic_write_json(self.lock_path, holder)

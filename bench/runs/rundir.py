"""Run directory: layout, deterministic naming, manifest, summary and a single-writer lock.

::

    <runs_dir>/<dataset>/<method>/<preset>-<arch>-p<patch>-s<seed>-<config hash>/
      config.yaml      resolved RunConfig ("run") + Preset ("preset") + "config_hash"
      manifest.json    code version, environment, device, seed, determinism, bad items
      metrics.csv      one row per evaluated epoch
      checkpoints/     last.pt (resume), <stage>.pt and (--protocol official) best.pt
      summary.json     written last: its presence means the run is complete
      log.txt
      tb/              TensorBoard events mirroring metrics.csv and the summary (bench.runs.tensorboard_log)
      run.lock         pid + host + heartbeat of the process training this directory (bench.runs.runlock)

The name is a pure function of the resolved config, so re-running a command finds the same
directory and resumes. In distributed runs only rank 0 takes the lock and writes here.

Typical use in a runner::

    run = RunDir.for_config(cfg).create()
    if run.is_complete():
        return run.read_summary()
    with run.locked():
        run.write_config(cfg, preset)
        run.write_manifest(collect_manifest(cfg, env.device, env.world_size))
        if run.has_checkpoint():
            state = load_checkpoint(run.last_checkpoint, modules, optimizers, schedulers, scaler)
        ...  # per epoch: run.write_metrics(rows); save_checkpoint(run.last_checkpoint, ...)
        run.write_summary(summary)
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as _dt
import io as _stringio
import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from bench import io
from bench.errors import UsageError
from bench.runs import tensorboard_log
from bench.runs.config import RunConfig
from bench.runs.runlock import Heartbeat, lock_record, stale_reason


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _safe(part: Any) -> str:
    """A path component: anything but letters, digits, '.', '_', '+', '-' becomes '_'."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", str(part)) or "_"


@dataclass(frozen=True)
class RunDir:
    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # ------------------------------------------------------------------ layout
    @classmethod
    def for_config(cls, cfg: RunConfig) -> "RunDir":
        """The run directory of a *resolved* config (``cfg.patch_size`` set from the preset)."""
        if cfg.patch_size is None:
            raise ValueError("resolve RunConfig.patch_size from the preset before naming the run directory")
        return cls._named(cfg, cfg.config_hash())

    @classmethod
    def for_run(cls, run: Any) -> "RunDir":
        """The run directory of a ``bench.runs.resolved.ResolvedRun`` (its hash already computed)."""
        return cls._named(run.cfg, run.config_hash)

    @classmethod
    def _named(cls, cfg: RunConfig, config_hash: str) -> "RunDir":
        name = f"{cfg.preset}-{cfg.arch}-p{cfg.patch_size}-s{cfg.seed}-{config_hash}"
        return cls(Path(cfg.runs_dir) / _safe(cfg.dataset) / _safe(cfg.method) / _safe(name))

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def log_path(self) -> Path:
        return self.path / "log.txt"

    @property
    def lock_path(self) -> Path:
        return self.path / "run.lock"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints_dir / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        """The best-validation weights of the stage being trained (``--protocol official``)."""
        return self.checkpoints_dir / "best.pt"

    def stage_checkpoint(self, stage: str) -> Path:
        return self.checkpoints_dir / f"{_safe(stage)}.pt"

    def create(self) -> "RunDir":
        io.make_dirs(self.checkpoints_dir)
        return self

    def __str__(self) -> str:
        return str(self.path)

    # ------------------------------------------------------------------ state
    def is_complete(self) -> bool:
        """True when summary.json exists and parses as a JSON object."""
        try:
            return isinstance(io.read_json(self.summary_path), dict)
        except UsageError:
            return False

    def has_checkpoint(self) -> bool:
        return self.last_checkpoint.is_file()

    # ------------------------------------------------------------------ files
    def write_config(self, cfg: RunConfig, preset: Any, config_hash: Optional[str] = None) -> None:
        """config.yaml: the resolved RunConfig and Preset (a dataclass or a dict) and the hash that names the
        directory (computed from them when not given)."""
        # typeshed's is_dataclass also admits a dataclass *type*; preset is an instance (or a dict)
        preset_dict = dataclasses.asdict(preset) if dataclasses.is_dataclass(preset) else dict(preset)  # type: ignore[arg-type]
        io.atomic_write_yaml(
            self.config_path,
            {"config_hash": config_hash or cfg.config_hash(), "run": cfg.to_dict(), "preset": preset_dict},
        )

    def read_config(self) -> Dict[str, Any]:
        data = io.read_yaml(self.config_path)
        if not isinstance(data, dict) or "run" not in data:
            raise UsageError(f"{self.config_path}: expected a mapping with a 'run' section")
        return data

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        """Write manifest.json. On a resumed run the earlier manifest's bad items are kept, its
        first start time is carried over and ``attempt`` counts the starts."""
        new = dict(manifest)
        new.setdefault("bad_items", [])
        if self.manifest_path.is_file():
            with contextlib.suppress(UsageError):
                old = io.read_json(self.manifest_path)
                if isinstance(old, dict):
                    new["bad_items"] = _merge_bad(old.get("bad_items", []), new["bad_items"])
                    new["first_started_utc"] = old.get("first_started_utc", old.get("started_utc"))
                    new["attempt"] = int(old.get("attempt", 1)) + 1
        new.setdefault("first_started_utc", new.get("started_utc"))
        new.setdefault("attempt", 1)
        io.atomic_write_json(self.manifest_path, new)

    def read_manifest(self) -> Dict[str, Any]:
        return io.read_json(self.manifest_path)

    def add_bad_items(self, items: Iterable[Union[Tuple[str, str], Sequence[str]]]) -> None:
        """Merge (path, reason) pairs into manifest.json's ``bad_items`` (deduplicated)."""
        manifest: Dict[str, Any] = {}
        if self.manifest_path.is_file():
            manifest = self.read_manifest()
        manifest["bad_items"] = _merge_bad(manifest.get("bad_items", []), items)
        io.atomic_write_json(self.manifest_path, manifest)

    def write_metrics(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """metrics.csv rewritten from the full history (atomic; a resumed run never duplicates a row)."""
        header: List[str] = []
        for r in rows:
            header += [k for k in r if k not in header]
        buf = _stringio.StringIO()
        writer = csv.DictWriter(buf, fieldnames=header, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows([{k: ("" if v is None else v) for k, v in r.items()} for r in rows])
        io.atomic_write_text(self.metrics_path, buf.getvalue())
        tensorboard_log.log_metrics(self.path, rows)  # the same rows as TensorBoard scalars (tb/)

    def read_metrics(self) -> List[Dict[str, str]]:
        return io.read_csv_rows(self.metrics_path)

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        """summary.json, atomically; write it last: its presence marks the run complete."""
        io.atomic_write_json(self.summary_path, summary)
        tensorboard_log.log_summary(self.path, summary)

    def read_summary(self) -> Dict[str, Any]:
        return io.read_json(self.summary_path)

    def log(self, msg: str) -> None:
        """Append a timestamped line to log.txt (one write call, so lines never interleave)."""
        with io.writing(self.log_path):
            self.path.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(f"{utc_now()} {msg.rstrip()}\n")

    # ------------------------------------------------------------------ lock
    def acquire_lock(self) -> None:
        """Claim this directory for the current process, or raise a one-line ``UsageError`` if a live
        process holds it. A stale lock (``bench.runs.runlock.stale_reason``: a dead pid on this host, or no
        heartbeat from another host for a while) is taken over; from another host with a line saying so."""
        io.make_dirs(self.path)
        with io.file_lock(self.path / ".run.lock.guard"):  # serialises check-then-write
            holder = self._lock_holder()
            reason = None if holder is None else stale_reason(holder)
            if holder is not None and reason is None:
                raise UsageError(
                    f"{self.path} is being trained by pid {holder.get('pid')} on {holder.get('host')} "
                    f"since {holder.get('since')}; wait for it, or delete {self.lock_path.name} if it is gone"
                )
            if holder and holder.get("host") not in (None, socket.gethostname()):
                print(
                    f"taking over {self.lock_path} from pid {holder.get('pid')} on {holder.get('host')}: "
                    f"{reason}",
                    file=sys.stderr,
                    flush=True,
                )
            io.atomic_write_json(self.lock_path, lock_record(utc_now()))

    def release_lock(self) -> None:
        """Remove the lock if this process holds it."""
        holder = self._lock_holder()
        if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            with contextlib.suppress(FileNotFoundError):
                self.lock_path.unlink()

    @contextlib.contextmanager
    def locked(self) -> Iterator["RunDir"]:
        """Hold the lock for the block. If the block fails (or is interrupted) before the run saved anything
        worth keeping (a checkpoint), the directory is removed, so a failed first attempt leaves no
        directory that ``report`` would list as skipped."""
        self.acquire_lock()
        beat = Heartbeat(self.lock_path).start()
        try:
            yield self
        except BaseException:
            beat.stop()
            unused = self._only_bookkeeping()
            if unused:  # while we still hold the lock, so no other process has written here
                for name in _BOOKKEEPING - {"checkpoints", "run.lock", ".run.lock.guard"}:
                    with contextlib.suppress(FileNotFoundError):
                        (self.path / name).unlink()
            self.release_lock()
            if unused:
                self._remove_if_empty()
            raise
        beat.stop()
        self.release_lock()

    def _only_bookkeeping(self) -> bool:
        """True when the directory holds no checkpoint and no summary, only files a run writes before its
        first checkpoint (anything else, e.g. another tool's file, keeps it)."""
        try:
            names = {p.name for p in self.path.iterdir()}
            ckpts = self.checkpoints_dir
            return names <= _BOOKKEEPING and not (ckpts.is_dir() and any(ckpts.iterdir()))
        except OSError:
            return False

    def _remove_if_empty(self) -> None:
        """Remove the lock guard, the empty checkpoints/ and run directory, then the method and dataset
        directories if that left them empty. ``rmdir`` never removes a directory another process has
        written into meanwhile; the guard goes only while nothing else is there."""
        with contextlib.suppress(OSError):
            if {p.name for p in self.path.iterdir()} <= {".run.lock.guard", "checkpoints"}:
                (self.path / ".run.lock.guard").unlink(missing_ok=True)
        for d in (self.checkpoints_dir, self.path, self.path.parent, self.path.parent.parent):
            try:
                d.rmdir()
            except OSError:
                return

    def _lock_holder(self) -> Optional[Dict[str, Any]]:
        if not self.lock_path.exists():
            return None
        try:
            holder = io.read_json(self.lock_path)
        except UsageError:
            return {}  # unreadable: treated as stale
        return holder if isinstance(holder, dict) else {}


# What a run directory holds before the run's first checkpoint (``locked`` removes only these).
_BOOKKEEPING = frozenset(
    {
        "config.yaml",
        "manifest.json",
        "log.txt",
        "metrics.csv",
        ".metrics.csv.lock",
        "run.lock",
        ".run.lock.guard",
        "checkpoints",
    }
)


def _merge_bad(old: Iterable[Sequence[str]], new: Iterable[Sequence[str]]) -> List[List[str]]:
    """One entry per path (the first reason seen: a file listed in two splits is one bad item)."""
    merged: Dict[str, List[str]] = {}
    for item in list(old) + list(new):
        merged.setdefault(str(item[0]), [str(item[0]), str(item[1]) if len(item) > 1 else ""])
    return list(merged.values())

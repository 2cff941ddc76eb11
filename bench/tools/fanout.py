"""``adabench run --launcher local|slurm``: one submitit job per planned run, and ``adabench status``.

Each job runs exactly the command a local run would, restricted to its run: ``python -m cli run --config <the
experiment's resolved file> --launcher none --plan-index K [--nproc N]`` (``submitit.helpers.
CommandFunction``), so a job trains, resumes and writes its run directory as ``adabench run`` does. Before
anything is submitted, the shared initial state of every matched cell is written here, by the same calls a
local run makes (``write_initial_state``), so runs on different nodes start from the same weights whatever job
starts first. Re-submitting skips complete runs and runs that are running, and resumes interrupted ones (a
killed run's stale ``run.lock`` is taken over). ``<runs_dir>/_experiments/<experiment>.plan.json`` lists the
planned run directories and the jobs submitted for them; ``status`` reads it.

``--launcher local`` is submitit's LocalExecutor: the jobs are processes on this machine that outlive the
command (how the tests exercise this path); ``slurm`` submits with sbatch.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from bench import io
from bench.errors import UsageError
from bench.runs.config import RunConfig
from bench.runs.rundir import RunDir
from bench.runs.runlock import pid_alive

LAUNCHERS = ("none", "local", "slurm")
SUBMITIT_DIR = "_submitit"
DEFAULT_HOURS = 72.0  # a job's time limit without --slurm-time (submitit's local default is 2 minutes)


@dataclass(frozen=True)
class LaunchSpec:
    launcher: str  # "local" | "slurm"
    nproc: int = 1  # processes per run (torchrun inside the job)
    gpus_per_run: int = 0
    partition: Optional[str] = None
    hours: Optional[float] = None
    account: Optional[str] = None

    def check(self) -> None:
        if self.launcher == "slurm" and not self.partition:
            raise UsageError("--launcher slurm: give --slurm-partition (the partition the jobs run in)")
        if self.launcher == "slurm" and shutil.which("sbatch") is None:
            raise UsageError(
                "--launcher slurm: sbatch not found; submit from a Slurm login node (or use --launcher local)"
            )
        if self.launcher not in ("slurm",) and (self.partition or self.account):
            raise UsageError(
                f"--slurm-partition/--slurm-account: only with --launcher slurm, not {self.launcher}"
            )


# ------------------------------------------------------------------------------ the plan file
def plan_path(experiment_file: Path) -> Path:
    return Path(experiment_file).with_suffix(".plan.json")


def write_plan(experiment_file: Path, configs: Sequence[RunConfig]) -> Path:
    """The planned run directories of an experiment (kept with its jobs, if any)."""
    path = plan_path(experiment_file)
    old = io.read_json(path) if path.is_file() else {}
    runs = [
        {"index": k, "run_dir": str(RunDir.for_config(c).path.resolve()), "label": run_label(c)}
        for k, c in enumerate(configs)
    ]
    io.atomic_write_json(
        path, {"experiment": str(experiment_file), "runs": runs, "jobs": old.get("jobs", {})}
    )
    return path


def run_label(cfg: RunConfig) -> str:
    from bench.runs.resolved import ResolvedRun

    return ResolvedRun.of(cfg).label


# ------------------------------------------------------------------------------ before submission
def write_initial_state(cfg: RunConfig) -> None:
    """The shared initial weights of ``cfg``'s cell, made by the calls ``bench.runs.runner.run_method`` makes
    before
    it saves them (seeding, data, weights, network), so they equal what the cell's first local run writes."""
    from bench.models import build_network, weight_sources
    from bench.runs.experiment import share_initial_state
    from bench.runs.resolved import ResolvedRun
    from bench.runs.rundata import build_data
    from bench.training.runtime import start_process

    env = start_process(cfg.device, cfg.seed, cfg.deterministic)
    # no preflight here (opening every video header draws no random numbers; the jobs' runs still do it)
    run = ResolvedRun.of(dataclasses.replace(cfg, preflight=False))
    preset = run.preset
    data = build_data(
        run.cfg,
        preset,
        env,
        independent_views=run.protocol.independent_views,
        curve_on_full_split=run.protocol.curve_on_full_split,
    )
    weight_sources(preset)
    share_initial_state(build_network(preset, num_classes=data.num_classes), cfg.init_state)


def write_initial_states(configs: Sequence[RunConfig], echo: Callable[[str], None]) -> None:
    """Every matched cell's shared initial state that does not exist yet, from the cell's first planned
    run."""
    firsts: Dict[str, RunConfig] = {}
    for cfg in configs:
        if cfg.init_state and not RunDir.for_config(cfg).is_complete():
            firsts.setdefault(cfg.init_state, cfg)
    for path, cfg in firsts.items():
        if not Path(path).exists():
            write_initial_state(cfg)
            echo(f"shared initial state: {path}")


# ------------------------------------------------------------------------------ submission
def _executor(spec: LaunchSpec, folder: Path) -> Any:
    import submitit

    executor = submitit.AutoExecutor(folder=str(folder), cluster=spec.launcher)
    params: Dict[str, Any] = dict(
        name="adabench",
        timeout_min=int(60 * (spec.hours or DEFAULT_HOURS)),
        nodes=1,
        tasks_per_node=1,
        gpus_per_node=spec.gpus_per_run,
    )
    if spec.launcher == "slurm":
        params["slurm_partition"] = spec.partition
        if spec.account:
            params["slurm_account"] = spec.account
    executor.update_parameters(**params)
    return executor


def job_command(experiment_file: Path, index: int, nproc: int, command: str = "run") -> List[str]:
    """What a job runs: the same ``adabench run`` (or ``demo``) as locally, on one planned run."""
    cmd = [
        sys.executable,
        "-m",
        "cli",
        command,
        "--config",
        str(Path(experiment_file).resolve()),
        "--launcher",
        "none",
        "--plan-index",
        str(index),
    ]
    return cmd + (["--nproc", str(nproc)] if nproc > 1 else [])


def select_planned(configs: Sequence[RunConfig], index: int) -> List[RunConfig]:
    """``--plan-index K`` (what a job runs): the K-th planned run only."""
    if not 0 <= index < len(configs):
        raise UsageError(
            f"--plan-index {index}: the experiment plans {len(configs)} run(s) (0..{len(configs) - 1})"
        )
    return [configs[index]]


def submit(
    configs: Sequence[RunConfig],
    experiment_file: Path,
    spec: LaunchSpec,
    echo: Callable[[str], None] = print,
    command: str = "run",
) -> Dict[str, str]:
    """One job per planned run that is neither complete nor running; prints and returns {run_dir: job id}."""
    import submitit

    spec.check()
    plan = write_plan(experiment_file, configs)
    write_initial_states(configs, echo)
    folder = Path(configs[0].runs_dir).resolve() / SUBMITIT_DIR
    executor = _executor(spec, folder)
    record = io.read_json(plan)
    submitted: Dict[str, str] = {}
    for k, cfg in enumerate(configs):
        run = RunDir(RunDir.for_config(cfg).path.resolve())
        state, detail = run_state(run, record["jobs"].get(str(run.path)))
        if state in ("done", "running") or "queued" in detail:
            echo(f"run {k + 1}/{len(configs)}: {run_label(cfg)}: {state}{detail}, not submitted")
            continue
        job = executor.submit(
            submitit.helpers.CommandFunction(
                job_command(experiment_file, k, spec.nproc, command), cwd=os.getcwd()
            )
        )
        record["jobs"][str(run.path)] = {
            "job_id": str(job.job_id),
            "launcher": spec.launcher,
            "folder": str(folder),
            "host": socket.gethostname(),
        }
        submitted[str(run.path)] = str(job.job_id)
        echo(f"run {k + 1}/{len(configs)}: {run_label(cfg)}: submitted job {job.job_id}")
    io.atomic_write_json(plan, record)
    echo(
        f"{len(submitted)} job(s) submitted ({spec.launcher}); `adabench status --runs-dir "
        f"{configs[0].runs_dir}` "
        "follows them, re-running this command resumes what failed"
    )
    return submitted


# ------------------------------------------------------------------------------ status
def _job_result(job: Optional[Dict[str, Any]]) -> Optional[Tuple[str, str]]:
    """('success'|'error', text) once a submitted job has ended, else None."""
    if not job:
        return None
    path = Path(job["folder"]) / f"{job['job_id']}_0_result.pkl"
    try:
        with open(path, "rb") as f:
            kind, value = pickle.load(f)  # written by submitit for this runs directory's own jobs
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError):
        return None
    return str(kind), str(value)


def _lines(path: Path) -> List[str]:
    try:
        return [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return []


def _last_line(job_log: Optional[Path], run_log: Path) -> str:
    """The run's own one-line error from the job's log, else the run's last log line, else the job log's."""
    job_lines = _lines(job_log) if job_log else []
    errors = [ln for ln in job_lines if ln.startswith("error: ")]
    for lines in (errors, _lines(run_log), job_lines):
        if lines:
            return lines[-1][:300]
    return ""


def _job_alive(job: Optional[Dict[str, Any]]) -> Optional[bool]:
    """Whether a submitted job is queued or running (None: cannot tell)."""
    if not job:
        return None
    if job.get("launcher") == "slurm":
        try:
            import submitit

            state = submitit.SlurmJob(job["folder"], job["job_id"]).state
        except Exception:  # noqa: BLE001 - no sacct here: cannot tell
            return None
        return state in (
            "PENDING",
            "RUNNING",
            "REQUEUED",
            "CONFIGURING",
            "COMPLETING",
            "RESIZING",
            "SUSPENDED",
        )
    if job.get("host") == socket.gethostname():
        return (
            pid_alive(int(job["job_id"])) if str(job["job_id"]).isdigit() else None
        )  # local: the controller's pid
    return None


def run_state(run: RunDir, job: Optional[Dict[str, Any]] = None) -> Tuple[str, str]:
    """(done | running | failed | not started, detail) of one planned run directory."""
    if run.is_complete():
        return "done", ""
    holder = run._lock_holder()
    job_id = f" (job {job['job_id']})" if job else ""
    if holder:
        if holder.get("host") != socket.gethostname() and _job_alive(job) is not False:
            return "running", f" on {holder.get('host')}{job_id}"
        if isinstance(holder.get("pid"), int) and holder["pid"] != os.getpid() and pid_alive(holder["pid"]):
            return "running", f" (pid {holder['pid']}){job_id}"
    job_log = Path(job["folder"]) / f"{job['job_id']}_0_log.err" if job else None
    result = _job_result(job)
    if run.path.exists() or (result is not None and result[0] != "success"):
        if _job_alive(job) and not run.path.exists():
            assert job is not None  # only a job can be alive
            return "not started", f" (job {job['job_id']} queued)"
        return "failed", f"{job_id}: {_last_line(job_log, run.log_path) or 'no log line'}"
    if job and _job_alive(job):
        return "not started", f" (job {job['job_id']} queued)"
    return "not started", ""


def status_lines(runs_dir: str) -> List[str]:
    """One line per planned run of every experiment started in ``runs_dir`` (its
    ``_experiments/*.plan.json``)."""
    plans = sorted((Path(runs_dir) / "_experiments").glob("*.plan.json"))
    if not plans:
        raise UsageError(
            f"--runs-dir {runs_dir}: no planned experiment there (_experiments/*.plan.json); "
            "`adabench run` writes one"
        )
    out: List[str] = []
    for plan in plans:
        record = io.read_json(plan)
        out.append(f"{Path(record.get('experiment', plan)).name}:")
        counts: Dict[str, int] = {}
        for r in record.get("runs", []):
            state, detail = run_state(RunDir(Path(r["run_dir"])), record.get("jobs", {}).get(r["run_dir"]))
            counts[state] = counts.get(state, 0) + 1
            out.append(f"  {r['label']}: {state}{detail}  {r['run_dir']}")
        out.append("  " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return out

"""Issue 14: every failure of run/report/check/data synth is one ``error:`` line naming the thing at fault
(exit 2 usage or environment, 1 data), Ctrl-C says how to resume and leaves the run resumable, failed
first attempts leave no run directory behind, bare ``adabench`` prints its help, and both methods report
progress (a bar per epoch on a terminal, one console line per epoch unless ``--quiet``)."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from bench import io
from bench.errors import UsageError
from bench.runs.results import collect_results
from bench.runs.rundir import RunDir
from tests.fixtures_data import make_tsm_lists
from tests.fixtures_results import matched_summaries, write_run
from tests.fixtures_runs import REPO, V2_ARGS, base_args, child_env, micro_set, one_thread, run_in_process

__all__ = ["one_thread"]


@pytest.fixture(scope="module")
def micro_root(tmp_path_factory):
    return micro_set(tmp_path_factory.mktemp("fail") / "set", train=4, val=2)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err.strip()


# ------------------------------------------------------------------------------------------ help
@pytest.mark.parametrize("argv", [[], ["data"]])
def test_bare_command_prints_the_normal_help_with_exit_0(capsys, argv):
    assert run_in_process(argv) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Usage: adabench") and "Commands:" in out and "\n  " in out and err == ""


# ------------------------------------------------------------------------------------------ --set at parse
# time
@pytest.mark.parametrize(
    "method, item, expected",
    [
        ("v2", "lr=-1", "preset field lr=-1.0: expected a learning rate >= 0"),
        ("v2", "lr=", "--set lr=: expected a float value"),
        ("v2", "lr=nan", "--set lr=nan: expected a finite number"),
        ("v2", "lr=inf", "--set lr=inf: expected a finite number"),
        ("v2", "lr=1e400", "--set lr=inf: expected a finite number"),
        ("v2", "batch_size=99999999999999999999", "out of range (at most 2147483647)"),
        ("v2", "policy_lr_ratio=-0.5", "policy_lr_ratio=-0.5: expected a learning rate >= 0"),
        ("v1", "pretrain_lr=-1", "pretrain_lr=-1.0: expected a learning rate >= 0"),
        ("v1", "stage1_fc_lr=inf", "--set stage1_fc_lr=inf: expected a finite number"),
        ("v1", "stage3_backbone_lr=nan", "--set stage3_backbone_lr=nan: expected a finite number"),
        ("v1", "policy_lr=", "--set policy_lr=: expected a float value"),
        ("v1", "batch_size=99999999999999999999", "out of range"),
    ],
)
def test_bad_set_values_are_refused_before_any_data_or_run_directory(
    tmp_path, capsys, method, item, expected
):
    runs = tmp_path / "runs"
    data = tmp_path / "no-data-yet"  # validation comes first: the (missing) data root is not even looked at
    assert (
        run_in_process(
            ["run", "--method", method, "--data-root", str(data), "--runs-dir", str(runs), "--set", item]
        )
        == 2
    )
    assert expected in _one_error_line(capsys)
    assert not runs.exists()


# ------------------------------------------------------------------------------------------ file system
@pytest.fixture(scope="module")
def complete_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("complete")
    for summary in matched_summaries(seeds=(0,), patch_sizes=(32,)):
        write_run(root, summary)
    return root


def _cases(base: Path, micro: Path, runs: Path) -> dict:
    """Commands that must write below ``base`` (one that can not be written)."""
    return {
        "run": (
            ["run", "--method", "v2", "--data-root", str(micro), "--runs-dir", str(base / "runs"), *V2_ARGS],
            base / "runs",
        ),
        "report": (["report", "--runs-dir", str(runs), "--out", str(base / "report")], base / "report"),
        "synth": (
            [
                "data",
                "synth",
                "--out",
                str(base / "set"),
                "--classes",
                "2",
                "--videos-per-class",
                "1",
                "--frames",
                "2",
                "--size",
                "32",
                "--object-size",
                "8",
            ],
            base / "set",
        ),
        "check": (
            ["check", "--update", "--baseline", str(base / "b.json"), "--runs-dir", str(runs)],
            base / "b.json",
        ),
    }


@pytest.mark.parametrize("command", ["run", "report", "synth", "check"])
def test_a_file_where_a_directory_is_expected_is_one_line(
    tmp_path, micro_root, complete_runs, capsys, command
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    argv, target = _cases(blocker, micro_root, complete_runs)[command]
    assert run_in_process(argv) == 2
    assert _one_error_line(capsys) == f"error: {blocker} is a file, expected a directory (to hold {target})"
    assert blocker.read_text() == "not a directory\n"


def _unprivileged() -> list:
    """A command prefix under which a mode-555 directory is really read-only (root ignores the bits: a user
    namespace without root's capabilities, when the kernel allows one)."""
    if os.geteuid() != 0:
        return []
    if (
        shutil.which("unshare")
        and subprocess.run(["unshare", "--user", "true"], capture_output=True).returncode == 0
    ):
        return ["unshare", "--user"]
    pytest.skip("running as root and no user namespace: permissions cannot be enforced")


_DRIVER = """
import contextlib, io, json, sys
from cli import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            main(argv)
            code = 0
        except SystemExit as e:
            code = e.code
    out.append([code, err.getvalue()])
print(json.dumps(out))
"""


def test_read_only_directories_are_one_line_errors(tmp_path, micro_root, complete_runs):
    prefix = _unprivileged()
    ro = tmp_path / "ro"
    ro.mkdir()
    hidden = _jester(tmp_path / "jester") / "20bn-jester-v1" / "3"
    expected = [
        (argv, f"error: {ro}: permission denied; expected a writable directory (to create {target})")
        for argv, target in _cases(ro, micro_root, complete_runs).values()
    ]
    expected += [  # the runs directory itself read-only; a data folder that cannot be listed
        (
            ["run", "--method", "v2", "--data-root", str(micro_root), "--runs-dir", str(ro)],
            f"error: {ro}: permission denied; expected a writable directory",
        ),
        (
            ["data", "check", "--dataset", "jester", "--data-root", str(hidden.parent.parent)],
            f"error: {hidden}: permission denied; expected a readable directory",
        ),
    ]
    ro.chmod(0o555)
    hidden.chmod(0)
    try:
        proc = subprocess.run(
            [*prefix, sys.executable, "-c", _DRIVER, json.dumps([a for a, _ in expected])],
            cwd=REPO,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        ro.chmod(0o755)
        hidden.chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    for (argv, line), (code, err) in zip(expected, json.loads(proc.stdout)):
        assert (code, err) == (2, line + "\n"), argv
    assert list(ro.iterdir()) == []


def test_disk_full_while_writing_names_the_file(tmp_path, monkeypatch, capsys):
    from tests.fixtures_results import make_summary, write_run

    runs = tmp_path / "runs"
    write_run(runs, make_summary("v2"))  # an empty runs directory is an error of its own (issue 21)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert run_in_process(["report", "--runs-dir", str(runs), "--out", str(tmp_path / "out")]) == 2
    assert _one_error_line(capsys) == (
        f"error: {tmp_path / 'out' / 'results.csv'}: no space left on the device "
        "(or over quota); free some space or choose another directory"
    )
    assert [p.name for p in (tmp_path / "out").iterdir()] == []  # no temporary file left behind


# ------------------------------------------------------------------------------------------ baseline
@pytest.mark.parametrize(
    "change, expected",
    [
        ({"tolerances": {"accuracy_abs": "0.1"}}, 'tolerances.accuracy_abs is "0.1", expected a number >= 0'),
        ({"tolerances": [0.1]}, "tolerances is [0.1], expected an object"),
        ({"runs": {"v2": {}}}, "runs key 'v2': expected <dataset>/<preset>/<arch>/<method>/p<patch>"),
        ({"runs": {"d/t/m/v2/p8": 0.9}}, "runs.d/t/m/v2/p8 is 0.9, expected an object"),
        (
            {"runs": {"d/t/m/v2/p8": {"top1": "high"}}},
            'runs.d/t/m/v2/p8.top1 is "high", expected a number >= 0 or null',
        ),
        (
            {"runs": {"d/t/m/v2/p8": {"gflops_per_video": True}}},
            "gflops_per_video is true, expected a number",
        ),
        ({"runs": {"d/t/m/v2/p8": {"seeds": 0}}}, "runs.d/t/m/v2/p8.seeds is 0, expected a list of integers"),
        (
            {"time_ratios": {"d/t/m/p8/v1:v2": None}},
            "time_ratios.d/t/m/p8/v1:v2 is null, expected a number >= 0",
        ),
    ],
)
def test_baseline_with_wrong_types_is_one_line_before_any_training(
    tmp_path, monkeypatch, capsys, change, expected
):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"format": "adabench-baseline/1", "runs": {}, **change}))
    assert run_in_process(["check", "--baseline", str(path)]) == 2  # without --runs-dir it would train first
    line = _one_error_line(capsys)
    assert line.startswith(f"error: --baseline {path}: ") and expected in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.json"]  # nothing trained


def test_the_committed_baseline_still_loads():
    from bench.tools.baseline_file import load_baseline

    assert load_baseline(REPO / "baselines" / "tiny.json")["runs"]


# ------------------------------------------------------------------------------------------ run directories
def _bookkeeping(run: RunDir) -> None:
    """What a run writes before its first checkpoint."""
    io.atomic_write_yaml(run.config_path, {"run": {}})
    io.atomic_write_json(run.manifest_path, {"bad_items": []})
    run.log("started")


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_directory(tmp_path):
    run = RunDir(tmp_path / "runs" / "ds" / "m" / "name").create()
    with pytest.raises(KeyboardInterrupt):
        with run.locked():
            _bookkeeping(run)
            raise KeyboardInterrupt
    assert list((tmp_path / "runs").iterdir()) == []  # the empty method and dataset folders go too


@pytest.mark.parametrize("keep", ["checkpoint", "summary", "foreign file"])
def test_a_failed_run_keeps_a_directory_holding_anything_else(tmp_path, keep):
    run = RunDir(tmp_path / "run").create()
    with pytest.raises(RuntimeError):
        with run.locked():
            _bookkeeping(run)
            if keep == "checkpoint":
                io.atomic_write_bytes(run.last_checkpoint, b"weights")
            elif keep == "summary":
                io.atomic_write_json(run.summary_path, {"top1": 0.5})
            else:
                (run.path / "notes.txt").write_text("mine\n")
            raise RuntimeError("failed")
    assert run.config_path.is_file() and run.manifest_path.is_file() and run.log_path.is_file()
    assert not run.lock_path.exists()


def test_a_refused_run_never_touches_the_holders_directory(tmp_path):
    run = RunDir(tmp_path / "run").create()
    _bookkeeping(run)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        io.atomic_write_json(run.lock_path, {"pid": holder.pid, "host": socket.gethostname(), "since": "x"})
        with pytest.raises(UsageError, match=f"pid {holder.pid}"):
            with run.locked():
                pass
        assert run.config_path.is_file() and run.lock_path.is_file()
    finally:
        holder.kill()
        holder.wait()


def _jester(root: Path) -> Path:
    root.mkdir()
    make_tsm_lists(root, counts=(4,) * 8, val_counts=(4, 4))
    return root


@pytest.mark.parametrize("broken, extra", [("missing", ()), ("corrupt", ("--no-preflight",))])
def test_a_data_error_leaves_no_run_directory_for_report_to_skip(tmp_path, capsys, one_thread, broken, extra):
    root = _jester(tmp_path / "jester")
    frame = root / "20bn-jester-v1" / "5" / "00002.jpg"
    frame.unlink() if broken == "missing" else frame.write_text("not a jpeg\n")
    runs = tmp_path / "runs"
    argv = base_args("v2", root, runs, "--dataset", "jester", "--set", "epochs=1", *extra)
    assert run_in_process(argv) == 1
    assert str(frame) in _one_error_line(capsys)
    assert not (runs / "jester").exists()
    if runs.exists():
        assert collect_results(runs)[1] == []


# ------------------------------------------------------------------------------------------ Ctrl-C
@pytest.mark.parametrize(
    "sig, group, code, message",
    [
        (signal.SIGINT, True, 130, "error: interrupted; re-run the same command to resume"),
        # issue 21 case 5: what Slurm / Kubernetes send before killing a job (to the main process only)
        (
            signal.SIGTERM,
            False,
            143,
            "error: terminated (SIGTERM); the last completed epoch's checkpoint is kept: re-run "
            "the same command to resume",
        ),
    ],
)
def test_ctrl_c_and_sigterm_say_how_to_resume_and_the_same_command_resumes(
    tmp_path, capsys, one_thread, sig, group, code, message
):
    root = micro_set(tmp_path / "set", train=4, val=2)
    runs = tmp_path / "runs"
    argv = [*base_args("v2", root, runs, "--set", "epochs=40"), "--workers", "2"]  # the last --workers wins
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", *argv],
        cwd=REPO,
        env=child_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not list(runs.glob("synthetic/v2/*/checkpoints/last.pt")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    if group:
        os.killpg(proc.pid, sig)  # what a terminal sends: the run and its loader workers
    else:
        os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1] == message
    assert "Traceback" not in err
    run = RunDir(next(runs.glob("synthetic/v2/*")))
    assert not run.lock_path.exists() and not run.is_complete()
    capsys.readouterr()
    done = run_in_process(argv)  # the same command, in this process (no second interpreter start)
    stderr = capsys.readouterr().err
    assert done == 0, stderr
    assert re.search(r"AdaFocusV2: resuming at stage \S+ \(1 of 1\), epoch \d+/40, from \S+last.pt", stderr)
    assert run.is_complete() and run.read_manifest()["attempt"] == 2
    assert [int(r["epoch"]) for r in run.read_metrics()] == list(range(1, 41))


# ------------------------------------------------------------------------------------------ progress
def _without(argv: list, *flags: str) -> list:
    return [a for a in argv if a not in flags]


STAGES = "--set pretrain_epochs=1 --set stage1_epochs=1 --set stage2_epochs=1 --set stage3_epochs=1".split()


def test_both_methods_print_a_line_per_epoch_unless_quiet(tmp_path, micro_root, capsys, one_thread):
    argv = [*_without(base_args("v1", micro_root, tmp_path / "a"), "--quiet"), *STAGES]
    assert run_in_process(argv) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if " epoch " in ln]
    assert [ln.split(":")[0] for ln in lines] == [f"AdaFocusV1 stage{k} epoch 1/1" for k in range(4)]
    assert all("loss " in ln and ln.endswith("s)") for ln in lines)
    assert any("val top-1 " in ln for ln in lines)
    argv = [*_without(base_args("v2", micro_root, tmp_path / "b"), "--quiet"), "--set", "epochs=2"]
    assert run_in_process(argv) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if " epoch " in ln]
    assert [ln.split(":")[0] for ln in lines] == ["AdaFocusV2 v2 epoch 1/2", "AdaFocusV2 v2 epoch 2/2"]
    assert "val top-1 " in lines[0]
    assert run_in_process([*base_args("v1", micro_root, tmp_path / "c"), *STAGES]) == 0  # --quiet
    assert run_in_process([*base_args("v2", micro_root, tmp_path / "d"), "--set", "epochs=2"]) == 0
    assert " epoch " not in capsys.readouterr().err


def _read_pty(fd: int, proc: subprocess.Popen) -> str:
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    return b"".join(chunks).decode("utf-8", "replace")


def test_on_a_terminal_both_methods_show_a_bar_per_epoch(tmp_path, micro_root):
    argv = [
        *_without(base_args("v1", micro_root, tmp_path), "--no-progress", "--quiet"),
        *STAGES,
        "--method",
        "v2",
        "--set",
        "epochs=1",
    ]
    main, child = pty.openpty()
    fcntl.ioctl(
        child, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0)
    )  # tqdm draws nothing 0 columns wide
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", *argv],
        cwd=REPO,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=child,
        text=True,
    )
    os.close(child)
    try:
        screen = _read_pty(main, proc)
    finally:
        os.close(main)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, screen
    for desc in [f"AdaFocusV1 stage{k} 1/1" for k in range(4)] + ["AdaFocusV2 v2 1/1"]:
        assert re.search(re.escape(desc) + r":\s+\d+%\|", screen), desc  # tqdm's bar
        assert desc.replace(" 1/1", " epoch 1/1") + ":" in screen  # and the epoch's line
    assert "v1 p16 s1: top-1" in out and "v2 p16 s1: top-1" in out

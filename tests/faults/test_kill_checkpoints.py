"""Kill real `mine` and `train` runs (SIGKILL, SIGTERM) while they write checkpoints (issue 13: "same for
mine and train checkpoints"). Training checkpoints go through ``core.files.atomic_write``, which passes the
fault points ``atomic-begin`` / ``atomic-written`` / ``atomic-replaced`` (``MARKETLAB_FAULT=<point>#<n>``: the
n-th file write of the run); mining checkpoints are folders swapped in by ``agents.sb3_state`` (points
``checkpoint-written`` / ``-swapped`` / ``-replaced``). After each kill the run folder must hold the previous complete checkpoint or the
new one — weights and counters of the SAME step, never the weights of one step beside the step counter
of another — and resuming must finish the run.

Torn means: the step a resume would start from (what the checkpoint says) does not belong to the weights
beside it. The runs are seeded and deterministic, so two kills that leave the same step must leave the
same weights; a kill after the weights were renamed but before the counters were (the old two-file
alphagen checkpoint) breaks exactly that.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open

from tests.support.faults import env, killed

TIMEOUT = 300


def run(args: list[str], fault: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.support.checkpoints", *args], env=env(fault),
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=Path(__file__).resolve().parents[2])


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, fh.metadata() or {}  # noqa: SIM118


def resume_state(weights: Path, sidecar: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(weights, counters) as a resume reads them: the counters from the weights file's header, or from the
    JSON sidecar for a checkpoint without them (the loaders' fallback)."""
    tensors, header = read_checkpoint(weights)
    assert "state" in header or sidecar.is_file(), f"torn: {weights.name} without its counters"
    state = json.loads(header["state"]) if "state" in header else json.loads(sidecar.read_text())
    return tensors, state


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# alphagen, 128 steps of one env, a checkpoint at steps 64 and 128: each is one folder (policy, optimizer, RNG and
# env state, pool, counters) written beside the old one and swapped in (agents.sb3_state).
# (fault, signal, step the folder must hold afterwards: 0 = no checkpoint yet). Each point is a killed run and its
# resume (two subprocesses that import torch and train): `make test` kills at the half-done swap, the subtlest recovery; the
# other points are marked slow (`make test-full`).
MINE_POINTS = [
    pytest.param("checkpoint-written#1", "SIGKILL", 0, id="written#1", marks=pytest.mark.slow),  # first folder complete, not renamed: no checkpoint yet
    pytest.param("checkpoint-swapped#1", "SIGKILL", 64, id="swapped#1"),  # the 64-step folder moved aside, the 128-step one not in place
    pytest.param("checkpoint-replaced#2", "SIGTERM", 128, id="replaced#2", marks=pytest.mark.slow),  # the 128-step folder in place, the old one not yet deleted
]


@pytest.mark.parametrize("fault, sig, want", MINE_POINTS)
def test_mine_killed_while_checkpointing(tmp_path: Path, fault: str, sig: str, want: int) -> None:
    from marketlab.agents.sb3_state import read_state

    out = tmp_path / "m"
    proc = run(["mine", str(out), "128", "0"], fault=f"{fault}:{sig}")
    assert killed(proc), (fault, proc.returncode, proc.stderr[-800:])
    folder = out / "alphagen"
    state = read_state(folder)  # recovers a half-done swap, as a resume does
    if want == 0:
        assert state is None
    else:
        assert state is not None and state["num_timesteps"] == want, (fault, state)
        tensors, _ = read_checkpoint(folder / "checkpoint" / "policy.safetensors")  # a whole weights file
        assert tensors
        pool = json.loads((folder / "checkpoint" / "pool.json").read_text())
        assert pool["n_tried"] > 0
    resumed = run(["mine", str(out), "128", "1"])
    assert resumed.returncode == 0 and "DONE" in resumed.stdout, resumed.stderr[-800:]
    state = read_state(folder)
    assert state is not None and state["num_timesteps"] == 128
    assert (folder / "pool.json").is_file()
    left = sorted(p.name for p in folder.iterdir() if p.name != "tb")  # tb: TensorBoard's event files
    assert left == ["checkpoint", "pool.json"]  # no checkpoint.tmp / .old left


# train: 11 batches per epoch, a state every 2 batches. Atomic writes in order: (state.safetensors,
# state.json) after batches 2, 4, 6, 8, 10 = writes 1-10, then at the end of epoch 1 best/model.safetensors
# (11), best/config.json (12) and the state (13, 14).
TRAIN_POINTS = [
    pytest.param("atomic-replaced#3", "SIGTERM", (0, 4), id="replaced#3"),  # second state renamed, its state.json copy not yet
    pytest.param("atomic-written#5", "SIGKILL", (0, 4), id="written#5", marks=pytest.mark.slow),  # third state complete but not renamed
    pytest.param("atomic-replaced#11", "SIGKILL", (0, 10), id="replaced#11", marks=pytest.mark.slow),  # best weights renamed, best/config.json not written
]


@pytest.fixture(scope="module")
def train_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    """The best weights of the same training run, uninterrupted."""
    from tests.support.checkpoints import train_run

    out = tmp_path_factory.mktemp("train_ref") / "run"
    train_run(str(out))  # in this process: a subprocess would pay the imports again
    return read_checkpoint(out / "best" / "model.safetensors")[0]


# Each point is a killed run and its resume (two subprocesses): `make test` kills between the renames of a state's
# two files (the old torn case), the other points are marked slow (`make test-full`). A torn state (weights of one
# step resumed with the counters of another) re-runs or skips batches, so the resumed run's best weights would
# differ from the uninterrupted run's: the exact-resume check below sees it, whichever point is killed.
@pytest.mark.parametrize("fault, sig, want", TRAIN_POINTS)
def test_train_killed_while_checkpointing(tmp_path: Path, train_reference: dict[str, torch.Tensor], fault: str,
                                          sig: str, want: tuple[int, int]) -> None:
    out = tmp_path / "t"
    proc = run(["train", str(out)], fault=f"{fault}:{sig}")
    assert killed(proc), (fault, proc.returncode, proc.stderr[-800:])
    state = out / "state.safetensors"
    _, rec = resume_state(state, out / "state.json")
    assert (rec["epoch"], rec["batch"]) == want, (fault, rec)
    resumed = run(["train", str(out)])
    assert resumed.returncode == 0 and "DONE" in resumed.stdout, resumed.stderr[-800:]
    # resume is exact: the finished run equals the uninterrupted one, whatever the kill left
    assert same(read_checkpoint(out / "best" / "model.safetensors")[0], train_reference), fault
    cfg = json.loads((out / "best" / "config.json").read_text())
    assert cfg["model"] == "binctabl"
    assert resume_state(state, out / "state.json")[1]["epoch"] == 2


def test_fault_points_are_reached_in_a_real_checkpoint_write(tmp_path: Path) -> None:
    """The points exist where the tests assume them: killing at ``atomic-begin`` leaves an empty temporary
    file and no target (a planted rename before the write would leave a target)."""
    code = ("from marketlab.core.files import atomic_write; from pathlib import Path; "
            f"atomic_write(Path({str(tmp_path / 'f.json')!r}), lambda p: Path(p).write_text('x'))")
    proc = subprocess.run([sys.executable, "-c", code], env=env("atomic-begin:SIGKILL"), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "f.json").exists()
    assert [p.stat().st_size for p in tmp_path.iterdir()] == [0]

"""The README's "Using it" section runs top to bottom (issue 15): every ```bash and ```python block of that
section, in order, in a temporary copy of the checkout (a fresh clone's files), with no MARKETLAB_* or
NUMBA_CACHE_DIR variable set. A block after a ``<!-- readme-test: skip -->`` line is not run (real data).

Run with ``make test-readme`` (``.ci/run`` calls it); the xVA spec is shrunk in the copy (:data:`REDUCED`) so
the whole section takes about a minute of CPU. Like ``make setup``, it first runs ``marketlab warmup``, and it
ends with ``marketlab demo``, which must then compile no numba kernel (``make demo``'s first run is warm).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SKIP_MARK = "<!-- readme-test: skip -->"
#: Reduced sizes for the copy: file -> (pattern, replacement) applied to its text. The README's numbers stay.
REDUCED = {
    "specs/xva/xva_forward_cva.toml": [(r"(?m)^paths = \d+", "paths = 1024"), (r"(?m)^iterations = \d+", "iterations = 40"),
                                       (r"(?m)^lr_boundaries = \[\d+\]", "lr_boundaries = [30]")],
}
#: Reduced sizes of commands: README text -> what the test runs instead (each must still be found).
REDUCED_COMMANDS = {"--seeds 0..7": "--seeds 0..1", "signal.lookback=5,10,20": "signal.lookback=5,10"}


def using_it_blocks(readme: str) -> list[tuple[str, str]]:
    """(language, code) of each fenced ```bash / ```python block in the "## Using it" section, in order,
    except a block whose fence follows a :data:`SKIP_MARK` line."""
    start = readme.index("\n## Using it\n")
    end = readme.find("\n## ", start + 1)
    lines = readme[start:end if end > 0 else None].splitlines()
    blocks: list[tuple[str, str]] = []
    i, previous = 0, ""
    while i < len(lines):
        m = re.fullmatch(r"```(bash|python)\s*", lines[i])
        if m:
            j = lines.index("```", i + 1)
            if previous.strip() != SKIP_MARK:
                blocks.append((m.group(1), "\n".join(lines[i + 1:j]) + "\n"))
            i, previous = j + 1, ""
            continue
        if lines[i].strip():
            previous = lines[i]
        i += 1
    return blocks


def test_extractor_takes_only_marked_languages_and_honours_skip() -> None:
    text = ("# x\n```bash\nnot in section\n```\n## Using it\n```bash\necho 1\n```\n```text\nno\n```\n"
            f"{SKIP_MARK}\n```bash\nreal data\n```\n```python\nprint(2)\n```\n## Next\n```bash\nlater\n```\n")
    assert using_it_blocks(text) == [("bash", "echo 1\n"), ("python", "print(2)\n")]


def fresh_copy(dest: Path) -> Path:
    """The checkout's tracked and unignored files (what a clone holds, plus uncommitted work) under ``dest``."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src, dst = REPO / name, dest / name
        if not src.exists() and not src.is_symlink():  # deleted in the work tree
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, dst)
    for name, subs in REDUCED.items():
        text = (dest / name).read_text()
        for pattern, repl in subs:
            text, n = re.subn(pattern, repl, text)
            assert n, f"REDUCED pattern {pattern!r} no longer matches {name}"
        (dest / name).write_text(text)
    return dest


@pytest.mark.readme
def test_using_it_runs_top_to_bottom(tmp_path: Path) -> None:
    blocks = using_it_blocks((REPO / "README.md").read_text())
    assert [lang for lang, _ in blocks][:2] == ["bash", "python"]
    for text in REDUCED_COMMANDS:
        assert any(text in code for _, code in blocks), f"REDUCED_COMMANDS key {text!r} no longer in the README"
    clone = fresh_copy(tmp_path / "clone")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MARKETLAB_") and k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    # `source .venv/bin/activate`: this venv's scripts, importing the copy's marketlab (as `pip install -e .`)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(clone)
    env["HOME"] = str(tmp_path / "home")  # numba's default cache lands in this fresh user cache folder
    # what `make setup` does after installing: compile the demo's kernels into the (empty) cache once
    r = subprocess.run(["marketlab", "warmup", "--json"], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0 and json.loads(r.stdout)["compiled"] > 0, r.stderr[-3000:]
    for n, (lang, code) in enumerate(blocks):
        for text, reduced in REDUCED_COMMANDS.items():
            code = code.replace(text, reduced)
        if lang == "bash":
            code = code.replace("source .venv/bin/activate\n", "")
            cmd = ["bash", "-euo", "pipefail", "-c", code]
        else:
            cmd = [sys.executable, "-c", code]
        r = subprocess.run(cmd, cwd=clone, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"README block {n} ({lang}) failed:\n{code}\n--- stderr:\n{r.stderr[-3000:]}"
    # what the commands say they make, where they say
    assert (clone / "bars.parquet").is_file() and (clone / "runs" / "ppo_synth" / "config.json").is_file()
    assert (clone / "reports" / "momentum_synth" / "report.html").is_file()
    assert list((clone / "reports").glob("stylized_abm_default.png"))
    assert json.loads((clone / "xva.json").read_text())["spec"].endswith("xva_forward_cva.toml")
    assert "[data]" in (clone / "my_backtest.toml").read_text()
    assert json.loads((clone / "rl.schema.json").read_text())["title"] == "marketlab rl spec"
    assert (tmp_path / "home" / ".cache" / "marketlab" / "numba").is_dir()
    assert not list((clone / "marketlab").rglob("*.nbi"))  # numba's index files never land in the package
    # `make demo` after `make setup` on this fresh clone: every kernel it needs was compiled by the warmup
    r = subprocess.run(["marketlab", "demo", "--json", "--quiet"], cwd=clone, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    demo = json.loads(r.stdout)
    assert demo["numba_compiled"] == 0 and (clone / demo["report"]).is_file()  # the path is relative to the clone

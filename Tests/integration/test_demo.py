"""scripts/demo.sh, what `make demo` runs: the whole story (a discovered and brokered XPUB on port
0, two readers, squatters, an idle subscriber evicted, the TCPStore gate, audit, listeners, a
reload that removes a reader) runs end to end and says [ok] for every check of every step; and
interrupted with Ctrl-C (SIGINT to its process group, as a terminal sends it) once the writer is
discovered, it cleans up and exits non-zero. Either way nothing of the demo is left: no
namespace, no nftables table, no process, no work directory.

The demo makes its own namespaces (rfdemo-*, fixed names: it takes a lock) and runs its peers
with the repository's .venv (torch for the TCPStore). Every process it starts carries
RINGFENCE_DEMO_RUN in its environment, set here to a value of this run's own, which is how a
leftover process is found.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import BIN_DIR, REPO_ROOT, require_netns_or_skip, run

DEMO = REPO_ROOT / "scripts" / "demo.sh"
VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
RUN_WITHIN = 240.0  # seconds; the demo takes about 15-60 s (debug build, a loaded machine)
STEPS = 7
# One check of each step that tells its story (the demo prints more).
KEY_CHECKS = [
    "proxyctl check",
    "proxyctl listeners: port",
    "subscriptions counted while the denied squatter retries",
    "proxyd: squatter on A's host denied",
    "the writer counts reader B: two of two",
    "reader A: work items (1 MiB each), in order, intact",
    "proxyctl status: the engine held back",
    "proxyctl peers: the idle subscriber's queue at its mark",
    "proxyctl status: the broker",
    "the idle subscriber evicted",
    "reader B: all 40 work items, in order, intact",
    "VALIDATE, then SET of a key declaring 1 GiB -> the store",
    "the torch client carries on",
    "audit: guards that refused 10.77.0.4",
    "listeners: the TCPStore on 29501",
    "proxyd: reader B's subscriber closed",
    "proxyctl peers: the broker's subscribers",
    "reader B -> 10.77.0.1:",
    "reader A: the next 5 work items",
]


@pytest.fixture
def demo_ready(netns_capable) -> None:
    """The demo's own preconditions beyond root and namespaces: the repository's venv with torch."""
    probe = subprocess.run([str(VENV_PYTHON), "-c", "import torch.distributed, zmq"],
                           capture_output=True, text=True, timeout=120) if VENV_PYTHON.exists() else None
    if probe is None or probe.returncode != 0:
        require_netns_or_skip(f"{VENV_PYTHON} cannot import torch and zmq (run `make venv`)")


class Demo:
    """scripts/demo.sh in a session of its own (so that SIGINT to its process group is a Ctrl-C),
    its output read line by line in a thread."""

    def __init__(self) -> None:
        self.token = f"test-{uuid.uuid4().hex[:12]}"
        self.proc = subprocess.Popen(
            ["bash", str(DEMO), str(BIN_DIR)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True, env=dict(os.environ, RINGFENCE_DEMO_RUN=self.token))
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float) -> str:
        """Reads output until a line matches `pattern`; fails on EOF or after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the demo printed no /{pattern}/ within {timeout} s:\n{self.output()}")
            if line is None:
                raise AssertionError(f"the demo ended before /{pattern}/:\n{self.output()}")
            self.lines.append(line)
            if re.search(pattern, line):
                return line

    def finish(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # bash only: its cleanup then cannot run, which the leftovers check reports
            self.proc.wait(timeout=10)
            raise AssertionError(f"the demo did not finish within {timeout} s:\n{self.output()}")
        while (line := self._queue.get(timeout=10)) is not None:
            self.lines.append(line)
        return rc

    def output(self) -> str:
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return "\n".join(self.lines)


def leftovers(token: str) -> list[str]:
    """What of the demo is still there: its namespaces, a table of its name in this namespace,
    processes carrying its token, its work directories."""
    found = [f"namespace {p.name}" for p in Path("/run/netns").glob("rfdemo-*")]
    tables = run("nft", "list", "tables", check=False).stdout
    found += [f"table {line}" for line in tables.splitlines() if line.split()[-1:] == ["rfdemo"]]
    marker = f"RINGFENCE_DEMO_RUN={token}".encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                found.append(f"process {environ.parent.name}: {(environ.parent / 'cmdline').read_bytes()[:120]!r}")
        except OSError:
            continue
    found += [f"directory {p}" for p in Path("/tmp").glob("rfdemo.??????")]
    return found


def test_demo_runs_end_to_end_every_step_ok_and_leaves_nothing_behind(demo_ready):
    """The demo exits 0 within RUN_WITHIN; it printed all seven steps, each with [ok] lines and
    no [FAIL], the key check of every part of the story among them, and "Demo OK"; afterwards no
    namespace, table, process or work directory of it is left."""
    demo = Demo()
    rc = demo.finish(RUN_WITHIN)
    out = demo.output()
    assert rc == 0, f"the demo exited {rc}:\n{out}"
    assert "[FAIL]" not in out, out
    sections = re.split(r"^==> ", out, flags=re.M)[1:]
    assert [s.split(".", 1)[0] for s in sections] == [str(n) for n in range(1, STEPS + 1)], out
    for section in sections:
        assert re.search(r"^\s+\[ok\] ", section, flags=re.M), f"a step without a check:\n{section}"
    ok_lines = [line for line in out.splitlines() if re.match(r"^\s+\[ok\] ", line)]
    for check in KEY_CHECKS:
        assert any(check in line for line in ok_lines), f"no [ok] line for {check!r}:\n{out}"
    assert re.search(r"^Demo OK: all \d+ checks behaved as told\.$", out, flags=re.M), out
    assert leftovers(demo.token) == []


def test_demo_interrupted_once_the_writer_is_discovered_cleans_up_and_exits_non_zero(demo_ready):
    """Ctrl-C (SIGINT to the demo's process group) right after proxyd logged the XPUB discovered
    and brokered, while the engine, proxyd and the namespaces are up: the demo says it was
    interrupted, exits non-zero (130) within 30 s, and leaves nothing behind."""
    demo = Demo()
    demo.wait_for(r'msg="XPUB discovered and brokered"', RUN_WITHIN)
    assert Path("/run/netns/rfdemo-host").exists()
    os.killpg(demo.proc.pid, signal.SIGINT)
    rc = demo.finish(30)
    out = demo.output()
    assert rc != 0, f"the interrupted demo exited 0:\n{out}"
    assert "demo: interrupted" in out and "cleaned up" in out, out
    assert leftovers(demo.token) == []

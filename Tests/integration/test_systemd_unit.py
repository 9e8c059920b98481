"""deploy/systemd/ringfence-proxyd.service as systemd itself reads it: `systemd-analyze verify`
passes on it as shipped, with the built binaries where it expects them, and `systemd-analyze
security` scores its hardening at most 3.8 ("OK").

Neither needs systemd running: both work offline on a root directory this test builds (the
machine's own unit directory, for the targets the unit names, and the binaries in
/usr/local/bin), so no unit is installed on the machine.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import PROXYCTL, PROXYD, REPO_ROOT, check_binaries

UNIT = REPO_ROOT / "deploy" / "systemd" / "ringfence-proxyd.service"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
MAX_EXPOSURE = 3.8


def analyze(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze not found: install Debian's systemd package (make deps)", pytrace=False)
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, timeout=60)


def make_root(root: Path, with_binaries: bool = True) -> Path:
    """A root with the machine's system units, the unit under test, and (unless not) the binaries."""
    (root / "usr" / "lib" / "systemd").mkdir(parents=True)
    shutil.copytree(SYSTEM_UNITS, root / "usr" / "lib" / "systemd" / "system", symlinks=True)
    (root / "lib").symlink_to("usr/lib")
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    (root / "etc" / "ringfence").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc" / "systemd" / "system" / UNIT.name)
    if with_binaries:
        bin_dir = root / "usr" / "local" / "bin"
        bin_dir.mkdir(parents=True)
        for binary in (PROXYD, PROXYCTL):
            shutil.copy(binary, bin_dir / binary.name)
    return root


def test_systemd_analyze_verify_passes_on_the_shipped_unit_and_fails_without_the_binaries(tmp_path):
    check_binaries()
    ok = analyze("verify", f"--root={make_root(tmp_path / 'with')}", UNIT.name)
    assert ok.returncode == 0 and ok.stderr.strip() == "", f"verify: rc={ok.returncode}\n{ok.stdout}{ok.stderr}"
    # The check is real: without the binaries the same unit fails, naming them.
    bad = analyze("verify", f"--root={make_root(tmp_path / 'without', with_binaries=False)}", UNIT.name)
    assert bad.returncode != 0 and "/usr/local/bin/proxyd" in bad.stderr, bad.stderr


def test_systemd_analyze_security_scores_the_unit_at_most_3_8(tmp_path):
    check_binaries()
    result = analyze("security", "--offline=yes", f"--root={make_root(tmp_path / 'root')}", UNIT.name)
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout + result.stderr)
    assert found, f"no score: rc={result.returncode}\n{result.stdout[-3000:]}{result.stderr}"
    score = float(found.group(1))
    print(f"systemd-analyze security: {score}")
    assert score <= MAX_EXPOSURE, f"exposure {score} > {MAX_EXPOSURE}:\n{result.stdout}"

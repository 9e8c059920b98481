"""The command lines of the contract (docs/commands.md): `proxyctl check`, `proxyctl nft`,
and proxyd's refusal of policies it cannot run. These need no namespace: nothing here touches nftables."""

from __future__ import annotations

import re
import subprocess

from conftest import EXAMPLE_POLICY, PROXYCTL, PROXYD, check_binaries

DIAGNOSTIC = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<key>[\w\[\].\- ]+): (?P<msg>.+)$")

BAD_POLICY = """\
[firewall]
deny = "rejct"

[peers]
workers = ["10.0.0.0/33", "300.1.1.1", "::/129"]

[[guard]]
name = "store"
kind = "firewall"
port = 70000
allow = ["@wrokers"]

[[guard]]
name = "store"
kind = "firewall"
port = 29501
allow = []
"""


def proxyctl(*args: str) -> subprocess.CompletedProcess:
    check_binaries()
    return subprocess.run([str(PROXYCTL), *args], capture_output=True, text=True, timeout=30)


def test_check_accepts_the_documented_example():
    result = proxyctl("check", str(EXAMPLE_POLICY))
    assert result.returncode == 0, result.stderr
    assert "ok: 5 guards" in result.stdout
    assert result.stderr == ""


def test_check_reports_every_problem_as_file_line_col_key_message(tmp_path):
    policy = tmp_path / "bad.toml"
    policy.write_text(BAD_POLICY)
    result = proxyctl("check", str(policy))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    diagnostics, summary = lines[:-1], lines[-1]
    assert summary == f"{policy}: 7 problems; policy refused"
    parsed = [DIAGNOSTIC.match(line) for line in diagnostics]
    assert all(parsed), diagnostics
    assert {m["file"] for m in parsed} == {str(policy)}
    found = [(int(m["line"]), int(m["col"]), m["key"]) for m in parsed]
    assert found == [
        (2, 1, "firewall.deny"),
        (5, 12, "peers.workers[0]"),
        (5, 27, "peers.workers[1]"),
        (5, 40, "peers.workers[2]"),
        (10, 1, "guard[0].port"),
        (11, 10, "guard[0].allow[0]"),
        (14, 1, "guard[1].name"),
    ]
    assert "prefix length 33 is out of range for IPv4" in diagnostics[1]
    assert "undefined peer group '@wrokers'" in diagnostics[5]


def test_check_reports_a_syntax_error_with_its_position(tmp_path):
    policy = tmp_path / "syntax.toml"
    policy.write_text('[firewall]\ntable = "ringfence\n')
    result = proxyctl("check", str(policy))
    assert result.returncode == 1
    first = DIAGNOSTIC.match(result.stderr.splitlines()[0])
    assert first and first["line"] == "2" and first["key"] == "toml"


def test_check_reports_a_missing_file():
    result = proxyctl("check", "/nonexistent/policy.toml")
    assert result.returncode == 1
    assert "/nonexistent/policy.toml: file: cannot read: No such file or directory" in result.stderr


def test_nft_prints_nothing_for_a_bad_policy(tmp_path):
    policy = tmp_path / "bad.toml"
    policy.write_text(BAD_POLICY)
    result = proxyctl("nft", str(policy))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "firewall.deny" in result.stderr


def test_nft_renders_the_example_as_one_atomic_replacement():
    result = proxyctl("nft", str(EXAMPLE_POLICY))
    assert result.returncode == 0, result.stderr
    statements = [line for line in result.stdout.splitlines() if line and not line.startswith(("#", "\t", "}"))]
    assert statements == ["table inet ringfence", "delete table inet ringfence", "table inet ringfence {"]

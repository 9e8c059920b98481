"""The policies the documentation shows are policies proxyd accepts: `proxyctl check` passes on
every file of docs/examples/ and on every ```toml block of README.md and docs/*.md that is a whole
policy. A block that is only part of a policy says so on the line before it, with the comment
`<!-- partial policy: not checked -->`, and is reported here as skipped, with its place, so that
no block goes unchecked without a word. `proxyctl check` runs as in a LeaderWorkerSet's pod (its
LWS_* variables set), so that policies with `lws:group` are checked as they would be there. Needs
no namespace: `proxyctl check` touches nothing."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import PROXYCTL, REPO_ROOT, check_binaries

EXAMPLES = sorted((REPO_ROOT / "docs" / "examples").glob("*.toml"))
DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
PARTIAL = "<!-- partial policy: not checked -->"
FENCE = re.compile(r"^```(\w*)\s*$")
# What LeaderWorkerSet sets in every pod of a group (docs/peer-names.md), for `lws:group`.
LWS_POD = {"LWS_LEADER_ADDRESS": "vllm-0.vllm.default", "LWS_GROUP_SIZE": "2"}


def toml_blocks(document: Path) -> list[tuple[int, str, bool]]:
    """Each ```toml block of a Markdown file: its first line's number, its text, and whether the
    line before it marks it as a partial policy."""
    blocks, lines = [], document.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next((j for j in range(index + 1, len(lines)) if lines[j].startswith("```")), len(lines))
        if opening[1] == "toml":
            before = next((lines[j].strip() for j in range(index - 1, -1, -1) if lines[j].strip()), "")
            blocks.append((index + 2, "\n".join(lines[index + 1:end]) + "\n", before == PARTIAL))
        index = end + 1
    return blocks


def block_params() -> list:
    params = []
    for document in DOCUMENTS:
        name = document.relative_to(REPO_ROOT)
        for line, text, partial in toml_blocks(document):
            marks = [pytest.mark.skip(reason=f"{name}:{line} is marked as a partial policy")] if partial else []
            params.append(pytest.param(text, id=f"{name}:{line}", marks=marks))
    return params


def check(policy: Path) -> subprocess.CompletedProcess:
    check_binaries()
    return subprocess.run([str(PROXYCTL), "check", str(policy)], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, **LWS_POD))


def test_the_readme_shows_policies():
    assert any(not partial for _, _, partial in toml_blocks(REPO_ROOT / "README.md"))
    assert {path.name for path in EXAMPLES} >= {"two-node-hosts.toml", "lws.toml"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: f"docs/examples/{path.name}")
def test_check_accepts_the_example(example: Path):
    result = check(example)
    assert result.returncode == 0, result.stderr
    assert ": ok: " in result.stdout, result.stdout


@pytest.mark.parametrize("text", block_params())
def test_check_accepts_the_documented_block(text: str, tmp_path: Path):
    policy = tmp_path / "block.toml"
    policy.write_text(text)
    result = check(policy)
    assert result.returncode == 0, result.stderr
    assert ": ok: " in result.stdout, result.stdout


def test_a_block_marked_partial_is_told_apart(tmp_path: Path):
    document = tmp_path / "doc.md"
    document.write_text(f"```toml\n[peers]\n```\n\n{PARTIAL}\n\n```toml\nallow = []\n```\n\n```sh\nls\n```\n")
    assert toml_blocks(document) == [(2, "[peers]\n", False), (8, "allow = []\n", True)]

"""deploy/container/build-runtime.sh, the build steps the Containerfile runs: it builds release
binaries with the Swift standard library linked in statically and assembles the runtime's file
tree; every library the binaries load is inside the tree (the loader's own list, run inside it),
none is a Swift runtime library, and the binaries run there: `proxyctl check` on the example
policy, `proxyd --help`.

No base image can be pulled on these machines, so the tree is checked where it is built, with
chroot (and a private /proc, which Swift's CommandLine reads) instead of a container runtime.
The build directory is `.build-container` in the repository (git-ignored, kept between runs);
from clean the build takes about 1.5 minutes here.
"""

import subprocess
from pathlib import Path

from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "deploy" / "container" / "build-runtime.sh"
LOADER = "/lib64/ld-linux-x86-64.so.2"


def in_tree(tree: Path, *command: str) -> subprocess.CompletedProcess:
    """Runs `command` chrooted into `tree`, with /proc mounted in a private mount namespace."""
    script = f'mount -t proc proc "{tree}/proc" && exec chroot "{tree}" "$@"'
    return subprocess.run(["unshare", "--mount", "--fork", "sh", "-c", script, "sh", *command],
                          capture_output=True, text=True, timeout=60)


def test_runtime_tree_builds_holds_every_library_its_binaries_load_and_they_run_inside_it(netns_capable, tmp_path):
    tree = tmp_path / "runtime"
    built = subprocess.run([str(SCRIPT), str(tree), str(REPO_ROOT / ".build-container")],
                           capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, f"build-runtime.sh failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
    for binary in ("proxyd", "proxyctl"):
        listed = in_tree(tree, LOADER, "--list", f"/usr/local/bin/{binary}")
        assert listed.returncode == 0, f"{binary}: {listed.stderr}"
        assert "not found" not in listed.stdout, f"{binary} misses a library in the tree:\n{listed.stdout}"
        assert "libswift" not in listed.stdout and "libFoundation" not in listed.stdout, \
            f"{binary} loads the Swift runtime dynamically:\n{listed.stdout}"
        for line in listed.stdout.splitlines():
            path = line.split("=>")[-1].split("(")[0].strip()
            if path.startswith("/"):
                assert (tree / path.lstrip("/")).exists(), f"{binary} loads {path}, which is not in the tree"
    check = in_tree(tree, "/usr/local/bin/proxyctl", "check", "/etc/ringfence/policy.toml")
    assert check.returncode == 0 and "ok: 5 guards" in check.stdout, f"{check.stdout}{check.stderr}"
    help_text = in_tree(tree, "/usr/local/bin/proxyd", "--help")
    assert help_text.returncode == 0 and "--policy" in help_text.stdout, f"{help_text.stdout}{help_text.stderr}"
    print(f"runtime tree: {sum(f.stat().st_size for f in tree.rglob('*') if f.is_file()) >> 20} MiB")

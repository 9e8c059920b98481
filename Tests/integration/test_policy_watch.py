"""`[daemon] watch = true`: proxyd follows its policy file. A Kubernetes ConfigMap update (a new
timestamped directory, `..data` swapped to it by an atomic rename, the old directory deleted)
gives exactly one reload and puts the new policy in force; a swap to a bad policy is refused and
logged and the old policy stays; an in-place rewrite of a plain file reloads once; a touch, or a
watch turned off by a reload, reloads nothing."""

import os
import shutil
import time
from pathlib import Path

from conftest import HOST_V4, OK_V4, OK_V6, Proxyd, policy_toml
from controlkit import status

WATCH = "[daemon]\nwatch = true\n\n"
# peer_ok's addresses replaced by ones no namespace has.
WITHOUT_PEER_OK = policy_toml(ok_peers=["10.77.0.4", "fd77::4"])
RELOADED = 'msg="policy file changed; reloading"'


class ConfigMapVolume:
    """A directory laid out as kubelet lays out a ConfigMap volume: `..data` a symbolic link to
    a timestamped directory holding the real file, `policy.toml -> ..data/policy.toml`; an
    update writes a new timestamped directory, makes `..data_tmp` point at it, renames
    `..data_tmp` over `..data` (the atomic swap) and deletes the old directory."""

    def __init__(self, root: Path, text: str):
        self.root = root
        root.mkdir()
        self.generation = 0
        self.current = self._write(text)
        os.symlink(self.current, root / "..data")
        os.symlink("..data/policy.toml", root / "policy.toml")

    @property
    def policy(self) -> Path:
        return self.root / "policy.toml"

    def _write(self, text: str) -> str:
        self.generation += 1
        name = f"..2026_12_04_15_00_0{self.generation}.{123 + self.generation}"
        (self.root / name).mkdir()
        (self.root / name / "policy.toml").write_text(text)
        return name

    def update(self, text: str) -> None:
        new = self._write(text)
        os.symlink(new, self.root / "..data_tmp")
        os.rename(self.root / "..data_tmp", self.root / "..data")
        shutil.rmtree(self.root / self.current)
        self.current = new


def start(topo, policy: Path) -> Proxyd:
    d = Proxyd(topo.host, policy, topo.tmp / f"proxyd{len(topo.daemons)}.log")
    topo.daemons.append(d)
    d.wait_running()
    d.wait_for_log(r'msg="watching the policy file"')
    return d


def settle(d: Proxyd, since: int, pattern: str) -> str:
    """Waits for `pattern` after `since`, then a quiet second (longer than the debounce), and
    returns the log written since."""
    d.wait_for_log(pattern, since=since)
    time.sleep(1.0)
    return d.log()[since:]


def test_configmap_symlink_swap_gives_exactly_one_reload_and_the_new_policy(topo, tmp_path):
    """peer_ok is allowed; the ConfigMap is updated to a policy without it: one "policy file
    changed" line, one "policy reloaded" line, status counts one reload, and peer_ok is now
    refused while the fence stays. Then a swap to a bad policy: refused and logged with its
    position, the old (new) policy stays, no further reload applied."""
    topo.echo_server(29500)
    volume = ConfigMapVolume(tmp_path / "configmap", WATCH + policy_toml())
    d = start(topo, volume.policy)
    assert topo.connect_outcome(topo.peer_ok, HOST_V4, 29500) == "connected"

    since = d.log_size()
    volume.update(WATCH + WITHOUT_PEER_OK)
    log = settle(d, since, 'msg="policy reloaded"')
    assert log.count(RELOADED) == 1, log
    assert log.count('msg="policy reloaded"') == 1, log
    assert "reload refused" not in log, log
    assert status(d)["reloads_applied"] == 1
    assert topo.connect_outcome(topo.peer_ok, HOST_V4, 29500) == "refused"

    # The watch followed `..data` into the new directory: a second swap reloads once more.
    since = d.log_size()
    volume.update(WATCH + policy_toml(ok_peers=[OK_V4, OK_V6, "10.77.0.9"]))
    log = settle(d, since, 'msg="policy reloaded"')
    assert log.count(RELOADED) == 1 and log.count('msg="policy reloaded"') == 1, log
    assert topo.connect_outcome(topo.peer_ok, HOST_V4, 29500) == "connected"

    since = d.log_size()
    volume.update(WATCH + policy_toml(extra='alow = ["10.77.0.3"]\n'))
    log = settle(d, since, 'msg="reload refused')
    assert log.count(RELOADED) == 1, log
    assert "alow" in log and "unknown key" in log, log
    assert 'msg="policy reloaded"' not in log, log
    s = status(d)
    assert s["reloads_applied"] == 2 and s["reloads_refused"] == 1, s
    assert topo.connect_outcome(topo.peer_ok, HOST_V4, 29500) == "connected"
    assert d.proc.poll() is None


def test_in_place_rewrite_of_a_plain_file_reloads_once_and_a_touch_not_at_all(topo):
    """A plain policy file (no links) rewritten in place, as `cp` or an editor that truncates
    does: one reload. A touch (attributes change, content the same): none. A reload that sets
    `watch = false` stops the watch: a later rewrite reloads nothing."""
    topo.echo_server(29500)
    policy = topo.write_policy(WATCH + policy_toml())
    d = start(topo, policy)

    since = d.log_size()
    with open(policy, "w") as f:  # truncate and write: the same inode
        f.write(WATCH + WITHOUT_PEER_OK)
    log = settle(d, since, 'msg="policy reloaded"')
    assert log.count(RELOADED) == 1 and log.count('msg="policy reloaded"') == 1, log
    assert topo.connect_outcome(topo.peer_ok, HOST_V4, 29500) == "refused"

    since = d.log_size()
    os.utime(policy)
    time.sleep(1.0)
    assert RELOADED not in d.log()[since:], d.log()[since:]

    since = d.log_size()
    with open(policy, "w") as f:
        f.write(policy_toml())  # no [daemon] watch: the watch stops after this reload
    log = settle(d, since, 'msg="policy watch stopped"')
    assert log.count('msg="policy reloaded"') == 1, log
    assert topo.connect_outcome(topo.peer_ok, HOST_V4, 29500) == "connected"

    since = d.log_size()
    with open(policy, "w") as f:
        f.write(WITHOUT_PEER_OK)
    time.sleep(1.0)
    assert RELOADED not in d.log()[since:] and "policy reloaded" not in d.log()[since:]
    assert status(d)["reloads_applied"] == 2

"""The Kubernetes manifests in deploy/kubernetes/ are what an API server accepts, and what they
say agrees with the Ringfence policies they carry.

- Every document validates against the Kubernetes schemas of 1.29 (the first release with
  native sidecars on by default) and of 1.37 (the newest kubernetes-validate bundles), strictly:
  a field the schema does not know is an error, as with kubectl's default `--validate=strict`.
- The LeaderWorkerSet validates against the LWS CRD's own schema (schemas/leaderworkerset-v1.json,
  from lws v0.10.0), strictly too, and its leader and worker pod templates as PodTemplateSpecs.
- Each of those checks refuses a broken manifest (a misspelled field, a value outside an enum,
  a wrong type), and so do the checks below for what no schema says.
- The Ringfence containers are what deploy/kubernetes/README.md promises: a native sidecar in
  both LWS templates, CAP_NET_ADMIN and nothing else, a startup probe on `proxyctl status` at the
  policy's control socket, the policy from its ConfigMap, read-only, with `watch = true`; vLLM is
  started the way vLLM documents multi-node serving, its master port guarded by the TCPStore
  relay, its API port and proxyd's metrics port public.
- Every policy in a ConfigMap passes `proxyctl check`, with the variables LWS sets in the
  environment.

Needs no root and no namespaces: kubernetes-validate and jsonschema from the Makefile's venv,
proxyctl from RINGFENCE_BIN_DIR.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from conftest import PROXYCTL, REPO_ROOT, check_binaries

MANIFESTS = sorted((REPO_ROOT / "deploy" / "kubernetes").glob("*.yaml"))
LWS_SCHEMA = Path(__file__).resolve().parent / "schemas" / "leaderworkerset-v1.json"
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
# As LWS sets them in every container of group 0's pods of a LeaderWorkerSet named vllm.
LWS_ENV = {"LWS_LEADER_ADDRESS": "vllm-0.vllm.default", "LWS_GROUP_SIZE": "2", "LWS_WORKER_INDEX": "0"}
SIDECAR = "ringfence"


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def all_documents() -> list[dict]:
    return [doc for path in MANIFESTS for doc in documents(path)]


def the(kind: str, name: str) -> dict:
    (found,) = [d for d in all_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def policy_of(configmap: dict) -> dict:
    return tomllib.loads(configmap["data"]["policy.toml"])


def control_socket(policy: dict) -> str:
    """The policy's [daemon] control_socket, or proxyd's default."""
    return policy.get("daemon", {}).get("control_socket", "/run/ringfence/control.sock")


# --------------------------------------------------------------------------------------------
# The checks, each a list of problems (empty: accepted), so that a test can show each refusing


def kubernetes_problems(doc: dict, version: str) -> list[str]:
    """The document against the Kubernetes schema of `version`, unknown fields refused."""
    try:
        used = kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{doc['kind']} {doc['metadata'].get('name')}: {'.'.join(map(str, error.path))}: {error.message}"]
    assert used == version.rsplit(".", 1)[0], f"kubernetes-validate used the {used} schemas for {version}"
    return []


def strict(schema):
    """The CRD schema as the API server applies it under strict field validation (kubectl's
    default): an object field the schema does not list is an error instead of being pruned."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: ({name: strict(s) for name, s in value.items()} if key == "properties" else strict(value))
           for key, value in schema.items()}
    if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


LWS_VALIDATOR = jsonschema.Draft4Validator(strict(json.loads(LWS_SCHEMA.read_text())))


def lws_crd_problems(doc: dict) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in LWS_VALIDATOR.iter_errors(doc)]


def pod_templates(lws: dict) -> dict[str, dict]:
    template = lws["spec"]["leaderWorkerTemplate"]
    return {"leaderTemplate": template["leaderTemplate"], "workerTemplate": template["workerTemplate"]}


def pod_template_problems(lws: dict, version: str) -> list[str]:
    """Each LWS pod template as the core PodTemplateSpec it becomes."""
    return [problem for name, template in pod_templates(lws).items()
            for problem in kubernetes_problems(
                {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}, "template": template}, version)]


def flag(args: list[str], name: str) -> str | None:
    """The value of `--name=VALUE` (or `--name VALUE`) in `args`; "" for a bare `--name`."""
    for index, arg in enumerate(args):
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
        if arg == name:
            following = args[index + 1] if index + 1 < len(args) else ""
            return "" if following.startswith("--") else following
    return None


def fence_problems(container: dict, pod: dict, policy: dict) -> list[str]:
    """What the README promises of a container running proxyd."""
    problems = []
    security = container.get("securityContext", {})
    if security.get("capabilities") != {"drop": ["ALL"], "add": ["NET_ADMIN"]}:
        problems.append(f"capabilities must drop ALL and add NET_ADMIN only: {security.get('capabilities')}")
    if security.get("privileged") or security.get("allowPrivilegeEscalation") is not False:
        problems.append("must be neither privileged nor allowed to escalate privileges")
    socket = control_socket(policy)
    probe = container.get("startupProbe", {}).get("exec", {}).get("command", [])
    if probe[:2] != ["/usr/local/bin/proxyctl", "status"] or flag(probe, "--control-socket") != socket:
        problems.append(f"startupProbe must run proxyctl status --control-socket {socket}: {probe}")
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    policy_mount = mounts.get("/etc/ringfence", {})
    if not policy_mount.get("readOnly") or "configMap" not in volumes.get(policy_mount.get("name"), {}):
        problems.append("the policy must come read-only from a ConfigMap at /etc/ringfence")
    if os.path.dirname(socket) not in mounts:
        problems.append(f"the control socket's directory {os.path.dirname(socket)} needs a volume (read-only root)")
    if policy.get("daemon", {}).get("watch") is not True:
        problems.append("the policy must say [daemon] watch = true")
    return problems


def sidecar_problems(pod: dict, policy: dict) -> list[str]:
    """A native sidecar: the first init container, restarting always, fenced as above; and no
    other container may change the fence or reach proxyd's control socket."""
    first = pod.get("initContainers", [{}])[0]
    if first.get("name") != SIDECAR:
        return [f"the first init container must be {SIDECAR}"]
    problems = fence_problems(first, pod, policy)
    if first.get("restartPolicy") != "Always":
        problems.append(f"restartPolicy must be Always (a native sidecar): {first.get('restartPolicy')}")
    socket = control_socket(policy)
    socket_volume = next((m["name"] for m in first["volumeMounts"] if m["mountPath"] == os.path.dirname(socket)), None)
    for container in pod["containers"]:
        if "NET_ADMIN" in container.get("securityContext", {}).get("capabilities", {}).get("add", []):
            problems.append(f"{container['name']} must not have NET_ADMIN: it could delete the fence")
        if any(m["name"] == socket_volume for m in container.get("volumeMounts", [])):
            problems.append(f"{container['name']} must not mount the control socket's volume")
    return problems


# --------------------------------------------------------------------------------------------
# The tests


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_every_document_validates_against_the_kubernetes_schemas(manifest, version):
    docs = [d for d in documents(manifest) if d["kind"] != "LeaderWorkerSet"]  # a CRD: below
    assert docs, f"{manifest.name} has no Kubernetes documents"
    assert [p for d in docs for p in kubernetes_problems(d, version)] == []


def test_the_leaderworkerset_validates_against_the_lws_crd_schema():
    assert lws_crd_problems(the("LeaderWorkerSet", "vllm")) == []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_lws_pod_templates_validate_as_pod_template_specs(version):
    assert pod_template_problems(the("LeaderWorkerSet", "vllm"), version) == []


def test_every_check_refuses_a_broken_manifest():
    lws, daemonset = the("LeaderWorkerSet", "vllm"), the("DaemonSet", "ringfence-proxyd")
    policy = policy_of(the("ConfigMap", "vllm-ringfence-policy"))

    misspelled = copy.deepcopy(lws)
    sidecar = misspelled["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["initContainers"][0]
    sidecar["restartPolcy"] = sidecar.pop("restartPolicy")
    assert any("restartPolcy" in p for p in lws_crd_problems(misspelled))
    assert any("restartPolcy" in p for p in pod_template_problems(misspelled, KUBERNETES_VERSIONS[0]))

    bad_enum = copy.deepcopy(lws)
    bad_enum["spec"]["leaderWorkerTemplate"]["restartPolicy"] = "RecreateGroupOnRestart"
    assert any("RecreateGroupOnRestart" in p for p in lws_crd_problems(bad_enum))

    for version in KUBERNETES_VERSIONS:
        wrong_type = copy.deepcopy(daemonset)
        wrong_type["spec"]["template"]["spec"]["hostNetwork"] = "yes"
        assert any("hostNetwork" in p for p in kubernetes_problems(wrong_type, version))
        unknown = copy.deepcopy(daemonset)
        unknown["spec"]["template"]["spec"]["containers"][0]["startupProbes"] = {}
        assert any("startupProbes" in p for p in kubernetes_problems(unknown, version))

    # What no schema says: a restartPolicy value (no enum), capabilities, the probe's socket.
    leader = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]
    for change, expected in [
        (lambda pod: pod["initContainers"][0].update(restartPolicy="Allways"), "restartPolicy must be Always"),
        (lambda pod: pod["initContainers"][0]["securityContext"]["capabilities"]["add"].append("SYS_ADMIN"), "NET_ADMIN only"),
        (lambda pod: pod["initContainers"][0]["startupProbe"]["exec"].update(command=["/usr/local/bin/proxyctl", "status"]), "startupProbe"),
        (lambda pod: pod["containers"][0].update(securityContext={"capabilities": {"add": ["NET_ADMIN"]}}), "could delete the fence"),
    ]:
        broken = copy.deepcopy(leader)
        change(broken)
        assert any(expected in p for p in sidecar_problems(broken, policy)), expected


def test_ringfence_is_a_native_sidecar_with_net_admin_only_in_both_lws_templates():
    policy = policy_of(the("ConfigMap", "vllm-ringfence-policy"))
    lws = the("LeaderWorkerSet", "vllm")
    volumes = set()
    for name, template in pod_templates(lws).items():
        assert sidecar_problems(template["spec"], policy) == [], name
        volumes |= {v["configMap"]["name"] for v in template["spec"]["volumes"] if "configMap" in v}
    assert volumes == {"vllm-ringfence-policy"}


def test_the_daemonset_runs_proxyd_on_the_host_network_with_net_admin_only():
    pod = the("DaemonSet", "ringfence-proxyd")["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    (proxyd,) = pod["containers"]
    assert fence_problems(proxyd, pod, policy_of(the("ConfigMap", "ringfence-policy"))) == []


def test_vllm_runs_multi_node_as_documented_with_its_ports_guarded_or_public():
    policy = policy_of(the("ConfigMap", "vllm-ringfence-policy"))
    guards = {g["kind"]: g for g in policy["guard"]}
    lws = the("LeaderWorkerSet", "vllm")
    size = lws["spec"]["leaderWorkerTemplate"]["size"]
    templates = pod_templates(lws)
    leader, worker = (templates[t]["spec"]["containers"][0] for t in ("leaderTemplate", "workerTemplate"))
    for container, rank in ((leader, "0"), (worker, "$(LWS_WORKER_INDEX)")):
        args = container["args"]
        assert container["command"] == ["vllm", "serve"]
        assert flag(args, "--distributed-executor-backend") == "mp"
        assert flag(args, "--nnodes") == "$(LWS_GROUP_SIZE)" and size > 1
        assert flag(args, "--node-rank") == rank
        assert flag(args, "--master-addr") == "$(LWS_LEADER_ADDRESS)"
        # The store rank 0 opens on --master-port goes through the TCPStore gate.
        assert int(flag(args, "--master-port")) == guards["tcp"]["port"] and guards["tcp"]["protocol"] == "tcpstore"
        (host_ip,) = [e for e in container["env"] if e["name"] == "VLLM_HOST_IP"]
        assert host_ip["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert flag(worker["args"], "--headless") == "" and flag(leader["args"], "--headless") is None
    assert guards["zmq-xpub"]["discover"] is True
    for guard in policy["guard"]:
        assert guard["allow"] == ["lws:group"], guard["name"]

    # The API port (the Service's clients, the kubelet's probes from the node) and the metrics
    # port (the scrape) are public; vLLM's probes go to the API port.
    public = set(guards["host"]["public"])
    api_port = int(flag(leader["args"], "--port"))
    (http,) = [p for p in leader["ports"] if p["name"] == "http"]
    (service_port,) = the("Service", "vllm-leader")["spec"]["ports"]
    assert http["containerPort"] == api_port and service_port["targetPort"] == "http"
    probed = {leader[p]["httpGet"]["port"] for p in ("startupProbe", "readinessProbe")}
    metrics_port = int(policy["daemon"]["metrics_listen"].rsplit(":", 1)[1])
    assert probed == {api_port} and {api_port, metrics_port} <= public


def configmap_policies() -> list:
    return [pytest.param(manifest, doc["metadata"]["name"], key, id=f"{manifest.name}:{doc['metadata']['name']}")
            for manifest in MANIFESTS for doc in documents(manifest)
            if doc["kind"] == "ConfigMap" for key in doc["data"] if key.endswith(".toml")]


@pytest.mark.parametrize("manifest,name,key", configmap_policies())
def test_every_policy_in_a_configmap_passes_proxyctl_check(manifest, name, key, tmp_path):
    check_binaries()
    (configmap,) = [d for d in documents(manifest) if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name]
    policy = tmp_path / key
    policy.write_text(configmap["data"][key])
    result = subprocess.run([str(PROXYCTL), "check", str(policy)], capture_output=True, text=True, timeout=30,
                            env={**os.environ, **LWS_ENV})
    assert result.returncode == 0, f"proxyctl check of {manifest.name} ConfigMap {name}:\n{result.stdout}{result.stderr}"

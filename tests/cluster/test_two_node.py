"""The index and evaluate jobs, submitted with `ray job submit` to a real two-node Ray cluster:
audio, manifest and checkpoint in a loopback S3 bucket, vectors into a Milvus Lite server, the
report back into the bucket. Both nodes must have done work, as the jobs' own records show."""

import json
import subprocess
import time

import s3fs

from coattn_dist.data import clip_id_for
from coattn_dist.data.formats import read_esc50
from coattn_dist.store import ClipStore
from coattn_dist.store.lite_server import milvus_lite_server
from tests.cluster.conftest import VENV_BIN

CLASSES = ("dog", "rain", "church_bells", "crying_baby", "clock_tick", "helicopter")  # trained on
DIM = 256


def submit(cluster: dict, *entrypoint, attempts: int = 10) -> dict:
    """Runs a job to its end; returns the one-line JSON summary it printed last. The head's job
    agent may still be starting just after the cluster is up: that one error is retried."""
    for _ in range(attempts):
        proc = subprocess.run(
            [
                str(VENV_BIN / "ray"),
                "job",
                "submit",
                f"--address={cluster['dashboard']}",
                "--",
                *map(str, entrypoint),
            ],
            env=cluster["env"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if "No available agent" not in proc.stderr:
            break
        time.sleep(3)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")][-1]


def test_index_then_evaluate_jobs_use_both_nodes(
    ray_cluster, s3_server, sample_dir, trained_checkpoint, tmp_path
):
    table = read_esc50(str(sample_dir / "meta" / "esc50.csv"), captions="all").to_pylist()
    names = sorted({r["audio"].rsplit("/", 1)[-1]: r["label"] for r in table}.items())
    chosen = {n for c in CLASSES for n in [n for n, label in names if label == c][:2]}
    fs = s3fs.S3FileSystem(**s3_server, skip_instance_cache=True)
    fs.mkdir("cluster")
    fs.put(trained_checkpoint, "cluster/checkpoint", recursive=True)
    fs.pipe({f"cluster/audio/{n}": (sample_dir / "audio" / n).read_bytes() for n in chosen})
    test_rows = [
        {"audio": f"s3://cluster/audio/{name}", "caption": r["caption"], "label": r["label"]}
        for r in table
        if (name := r["audio"].rsplit("/", 1)[-1]) in chosen
    ]
    fs.pipe("cluster/test.jsonl", "".join(json.dumps(r) + "\n" for r in test_rows).encode())
    nodes = set(ray_cluster["nodes"])
    assert len(nodes) == 2

    # one clip per block to a pool started whole (the job waits for it): both actors get blocks
    with milvus_lite_server(tmp_path / "milvus") as uri:
        index = submit(
            ray_cluster,
            "coattn",
            "index",
            "--source",
            "s3://cluster/audio",
            "--checkpoint",
            "s3://cluster/checkpoint",
            "--milvus-uri",
            uri,
            "--collection",
            "clips",
            "--failures",
            "s3://cluster/failures.parquet",
            "--num-workers",
            2,
            "--batch-size",
            1,
        )
        with ClipStore(uri, "clips", DIM) as store:
            stored = store.all_ids()
    assert (index["indexed"], index["failed"]) == (len(chosen), 0)
    assert stored == {clip_id_for(f"s3://cluster/audio/{n}") for n in chosen}
    assert set(index["nodes"]) == nodes and sum(index["nodes"].values()) == len(chosen)

    # two evaluation cells of one CPU each (the checkpoint under two names): one per node
    evaluate = submit(
        ray_cluster,
        "coattn",
        "evaluate",
        "--checkpoint",
        "a=s3://cluster/checkpoint",
        "--checkpoint",
        "b=s3://cluster/checkpoint",
        "--manifest",
        "s3://cluster/test.jsonl",
        "--report",
        "s3://cluster/report",
        "--cache",
        "",
    )
    report = {p.rsplit("/", 1)[-1] for p in fs.ls("cluster/report", refresh=True)}
    assert {"metrics.json", "report.md", "systems.png"} <= report and set(
        evaluate["files"]
    ) == report
    metrics = json.loads(fs.cat("cluster/report/metrics.json"))
    assert set(metrics["placement"]) == nodes and sum(metrics["placement"].values()) == 2
    assert metrics["systems"] == evaluate["systems"]

"""`coattn index` against real servers: SeaweedFS S3, Milvus Lite (file and server), a real kill."""

import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import s3fs

from coattn_dist.cli import main
from coattn_dist.data import clip_id_for
from coattn_dist.pipeline.reader import list_folder
from coattn_dist.pipeline.runner import IndexingStopped, run_index
from coattn_dist.store import ClipStore
from coattn_dist.store.lite_server import free_port, milvus_lite_server
from tests.harness.servers import aws_env

REPO = Path(__file__).resolve().parents[2]
DIM = 256  # the checkpoints' stage-1 width
CLASSES = ("dog", "rain", "church_bells", "crying_baby", "clock_tick", "helicopter")  # trained on


def esc50_labels(sample_dir: Path) -> dict[str, str]:
    """Every sample clip's file name -> its ESC-50 category, in file name order."""
    with open(sample_dir / "meta" / "esc50.csv") as f:
        return dict(sorted((r["filename"], r["category"]) for r in csv.DictReader(f)))


def bucket_with(s3: dict, bucket: str, files: dict[str, bytes]) -> s3fs.S3FileSystem:
    fs = s3fs.S3FileSystem(**s3, skip_instance_cache=True)
    fs.mkdir(bucket)
    fs.pipe({f"{bucket}/{key}": data for key, data in files.items()})
    return fs


def run_cli(capsys, *args: str) -> tuple[int, dict, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, json.loads(out.strip().splitlines()[-1]), err


@pytest.mark.parametrize("layout", ["ray", "local"])
def test_bucket_with_bad_files_rerun_new_files_and_search(
    s3_server, sample_dir, bad_audio, trained_checkpoint, ray_local, tmp_path, capsys, layout
):
    """The same job in both layouts: Ray Data's graph, and one process (`pipeline.local`)."""
    bucket = f"e2e-{layout}"  # one S3 server for the session
    labels = esc50_labels(sample_dir)
    by_class = {c: sorted(n for n, label in labels.items() if label == c) for c in CLASSES}
    good = {names[0]: c for c, names in by_class.items()}
    new_name = by_class["dog"][1]
    good_files = {f"audio/{n}": (sample_dir / "audio" / n).read_bytes() for n in good}
    bad_files = {f"bad/{n}": data for n, (data, _) in bad_audio.items()}
    manifest = "audio,caption,label\n" + "".join(
        [f"audio/{n},,{label}\n" for n, label in good.items()]
        + [f"bad/{n},,\n" for n in [*bad_audio, "missing.flac"]]
    )
    fs = bucket_with(
        s3_server, bucket, {**good_files, **bad_files, "manifest.csv": manifest.encode()}
    )
    common = [
        "--checkpoint",
        trained_checkpoint,
        "--milvus-uri",
        tmp_path / "milvus.db",
        "--collection",
        "clips",
        "--failures",
        tmp_path / "failures.parquet",
        "--batch-size",
        3,
        "--num-workers",
        1,
        "--storage-options",
        json.dumps(s3_server),
        "--layout",
        layout,
    ]

    code, summary, err = run_cli(
        capsys,
        "index",
        "--manifest",
        f"s3://{bucket}/manifest.csv",
        "--embed-threads",
        "2",
        *common,
    )
    assert code == 0, err
    assert (summary["indexed"], summary["skipped"], summary["failed"]) == (len(good), 0, 6)
    assert 0 < summary["startup_s"] < summary["seconds"]  # the fixed cost, reported
    assert f"[index] {len(good) + 6}/{len(good) + 6}" in err
    failures = pq.read_table(tmp_path / "failures.parquet").to_pylist()
    assert {f["uri"].rsplit("/", 1)[1]: f["kind"] for f in failures} == {
        **{n: kind for n, (_, kind) in bad_audio.items()},
        "missing.flac": "unreadable",
    }
    assert all(f["clip_id"] == clip_id_for(f["uri"]) and f["message"] for f in failures)

    code, summary, _ = run_cli(capsys, "index", "--source", f"s3://{bucket}/audio", *common)
    assert code == 0 and (summary["indexed"], summary["skipped"], summary["failed"]) == (
        0,
        len(good),
        0,
    )
    assert summary["startup_s"] is None  # nothing to store

    fs.pipe(f"{bucket}/audio/{new_name}", (sample_dir / "audio" / new_name).read_bytes())
    code, summary, _ = run_cli(capsys, "index", "--source", f"s3://{bucket}/audio", *common)
    assert code == 0 and (summary["indexed"], summary["skipped"], summary["failed"]) == (
        1,
        len(good),
        0,
    )

    search = ["search", "a dog barks", "-k", 2, "--rerank", 5, "--checkpoint", trained_checkpoint]
    search += ["--milvus-uri", tmp_path / "milvus.db", "--collection", "clips"]
    for encoder in ("onnx", "onnx-int8", "torch"):
        code, answer, _ = run_cli(capsys, *search, "--query-encoder", encoder)
        assert code == 0 and answer["timings_ms"]["total"] > 0
        assert {r["uri"] for r in answer["results"]} == {
            f"s3://{bucket}/audio/{n}" for n in by_class["dog"][:2]
        }, encoder


def ray_processes(temp_dir: str) -> list[int]:
    return [
        int(p.parent.name)
        for p in Path("/proc").glob("[0-9]*/cmdline")
        if temp_dir.encode() in _read(p)
    ]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def test_killed_mid_run_then_rerun_indexes_every_clip_exactly_once(
    s3_server, sample_dir, trained_checkpoint, ray_local, tmp_path, capsys
):
    names = list(esc50_labels(sample_dir))[:16]
    bucket_with(
        s3_server, "killed", {f"audio/{n}": (sample_dir / "audio" / n).read_bytes() for n in names}
    )
    expected = {clip_id_for(f"s3://killed/audio/{n}") for n in names}
    with (
        tempfile.TemporaryDirectory(prefix="ray-", dir="/tmp") as ray_temp,  # short: socket paths
        milvus_lite_server(tmp_path / "milvus") as uri,
        ClipStore(uri, "clips", DIM) as store,
    ):
        job = [
            "--checkpoint",
            trained_checkpoint,
            "--milvus-uri",
            uri,
            "--collection",
            "clips",
            "--failures",
            tmp_path / "failures.parquet",
            "--num-workers",
            1,
        ]
        env = {**os.environ, **aws_env(s3_server), "RAY_ADDRESS": "local", "RAY_TMPDIR": ray_temp}
        with open(tmp_path / "job.log", "wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jobs.index",
                    "--source",
                    "s3://killed/audio",
                    "--batch-size",
                    "2",
                    *map(str, job),
                ],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            written = wait_for_rows(store, lambda: proc.poll() is None, timeout_s=240)
            assert ray_processes(ray_temp)  # the job's own Ray: raylet, workers, actors
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole job, as a lost node would go
            proc.wait()
        deadline = time.monotonic() + 30
        while ray_processes(ray_temp) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not ray_processes(ray_temp)  # the killed job's Ray went with it
        # counted once nothing of the job is left: a write task outside the job's process group
        # can land its batch after the kill, until its raylet is gone
        time.sleep(2)
        at_kill = store.count()
        assert 0 < written <= at_kill < len(names), (tmp_path / "job.log").read_text()[-3000:]

        code, summary, err = run_cli(
            capsys,
            "index",
            "--source",
            "s3://killed/audio",
            *job,
            "--storage-options",
            json.dumps(s3_server),
        )
        assert code == 0, err
        assert (summary["skipped"], summary["indexed"]) == (at_kill, len(names) - at_kill)
        assert store.count() == len(names)  # a duplicate id would count twice
        assert store.all_ids() == expected


def wait_for_rows(store: ClipStore, running, timeout_s: float) -> int:
    """Rows in the collection once the job has written some (it creates the collection first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and running():
        try:
            if (n := store.count()) > 0:
                return n
        except Exception:  # noqa: BLE001 - the collection does not exist yet
            pass
        time.sleep(0.1)
    raise AssertionError(f"no rows within {timeout_s} s, or the job ended first")


def test_milvus_outage_stops_the_job_and_keeps_what_was_written(
    sample_dir, trained_checkpoint, ray_local, tmp_path
):
    folder = tmp_path / "audio"
    folder.mkdir()
    for name in list(esc50_labels(sample_dir))[:16]:
        (folder / name).write_bytes((sample_dir / "audio" / name).read_bytes())
    data, port, served = tmp_path / "milvus", free_port(), threading.Event()
    seen = []

    def serve_until_rows_arrive() -> None:
        with milvus_lite_server(data, port) as uri, ClipStore(uri, "clips", DIM) as store:
            served.set()
            seen.append(wait_for_rows(store, lambda: True, timeout_s=240))
        # leaving the block stops the server: SIGTERM, as an operator or a crash would

    outage = threading.Thread(target=serve_until_rows_arrive)
    outage.start()
    served.wait(60)
    with pytest.raises(IndexingStopped, match="StoreUnavailable") as stopped:
        run_index(
            list_folder(str(folder)),
            trained_checkpoint,
            f"http://127.0.0.1:{port}",
            "clips",
            str(tmp_path / "failures.parquet"),
            batch_size=1,
            num_workers=1,
            store_options={"attempts": 3, "backoff_s": 0.2, "connect_timeout_s": 1.0},
        )
    outage.join()
    acknowledged = stopped.value.summary.indexed
    with milvus_lite_server(data, port) as uri, ClipStore(uri, "clips", DIM) as store:
        assert 0 < seen[0] <= store.count() and acknowledged <= store.count() < 16


def test_a_collection_of_another_size_stops_the_job_before_any_work(
    sample_dir, trained_checkpoint, ray_local, tmp_path, capsys
):
    with milvus_lite_server(tmp_path / "milvus") as uri:
        with ClipStore(uri, "clips", 64) as store:
            store.create_if_absent()
        code, summary, err = run_cli(
            capsys,
            "index",
            "--source",
            sample_dir / "audio",
            "--checkpoint",
            trained_checkpoint,
            "--milvus-uri",
            uri,
            "--collection",
            "clips",
            "--failures",
            tmp_path / "failures.parquet",
        )
        with ClipStore(uri, "clips", 64) as store:
            assert store.count() == 0
    assert code == 1 and "does not match this store (vector dim 64 vs 256" in err
    assert summary["indexed"] == 0 and "does not match" in summary["error"]

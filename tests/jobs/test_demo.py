"""`coattn demo` end to end, on a 6-clip copy of the shipped sample to keep it short."""

import csv
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import requests

from coattn_dist.checkpoints import GENERAL
from coattn_dist.store.lite_server import free_port
from tests.harness.servers import port_open


def small_sample(sample_dir, dest, classes=("dog", "rain", "church_bells")):
    (dest / "meta").mkdir(parents=True)
    (dest / "audio").mkdir()
    with open(sample_dir / "meta" / "esc50.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["category"] in classes]
    with open(dest / "meta" / "esc50.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for r in rows:
        shutil.copy(sample_dir / "audio" / r["filename"], dest / "audio")
    return dest


def test_demo_answers_with_the_shipped_checkpoint_on_a_readable_screen(sample_dir, tmp_path):
    """No training first: the sample is indexed with the shipped checkpoint and the answers are on
    the first screen, with none of Ray's own INFO lines or progress bars in the way."""
    sample = small_sample(sample_dir, tmp_path / "esc50")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    env.pop("COATTN_CHECKPOINT", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "coattn_dist.cli",
            "demo",
            "--no-serve",
            "--sample",
            str(sample),
            "--out",
            str(tmp_path / "run"),
            "-k",
            "2",
            "--query",
            "a dog is barking",
            "--query",
            "rain falling on the ground",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    lines = done.stdout.splitlines()
    summary = json.loads(lines[-1])
    assert (
        summary["checkpoint"] == str(GENERAL) and summary["clips"] == 6 and summary["failed"] == 0
    )
    names = {
        r["filename"]: r["category"] for r in csv.DictReader(open(sample / "meta" / "esc50.csv"))
    }
    assert [names[n] for n in summary["answers"]["a dog is barking"]] == ["dog", "dog"]
    assert [names[n] for n in summary["answers"]["rain falling on the ground"]] == ["rain", "rain"]
    first_answer = lines.index("'a dog is barking'")
    # a first screen, not a log to scroll through: our progress lines, and little else
    others = [
        line for line in lines[:first_answer] if line.strip() and not line.startswith("[index]")
    ]
    assert len(others) <= 5, others
    assert not [line for line in lines if " INFO " in line or "Running Dataset" in line]


def test_demo_serves_the_sample_until_interrupted(sample_dir, tmp_path):
    """Without --no-serve the demo indexes the sample into a Milvus Lite server and serves the
    query service on loopback; SIGINT (Ctrl-C) stops it, and its Milvus server, cleanly."""
    sample = small_sample(sample_dir, tmp_path / "esc50")
    port = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "demo.log"
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coattn_dist.cli",
            "demo",
            "--sample",
            str(sample),
            "--out",
            str(tmp_path / "run"),
            "-k",
            "1",
            "--query",
            "a dog",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env=env,
    )
    lines = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in demo.stdout] + [lines.put("")], daemon=True
    ).start()
    try:
        while not (line := lines.get(timeout=600)).startswith('{"clips"'):
            assert line, f"the demo exited before serving: {log.read_text()[-3000:]}"
        summary = json.loads(line)
        assert summary["url"] == f"http://127.0.0.1:{port}" and summary["clips"] == 6
        body = requests.get(
            f"{summary['url']}/search", params={"q": "rain falling", "k": 2}, timeout=60
        ).json()
        names = {
            r["filename"]: r["category"]
            for r in csv.DictReader(open(sample / "meta" / "esc50.csv"))
        }
        assert [names[Path(r["uri"]).name] for r in body["results"]] == ["rain", "rain"]
        assert '<form id="search">' in requests.get(f"{summary['url']}/", timeout=30).text
    finally:
        demo.send_signal(signal.SIGINT)
        # ~10 s on an idle machine (Serve's graceful replica stops, then Milvus, then Ray)
        assert demo.wait(120) == 0
    assert not port_open(port)
    milvus_dir = str(tmp_path / "run" / "milvus")  # the demo's own Milvus Lite server is gone too
    assert (tmp_path / "run" / "milvus" / "milvus-lite.log").exists()
    assert not [p for p in Path("/proc").glob("[0-9]*/cmdline") if milvus_dir in cmdline(p)]


def cmdline(path: Path) -> str:
    try:
        return path.read_bytes().decode(errors="replace")
    except OSError:  # the process ended while we looked
        return ""

"""`coattn index` over a hostile corpus: every kind of bad file or row is one failure row with
its kind, every odd but valid file is indexed, the job exits 0, and memory stays bounded while
files that ask for hundreds of gigabytes go by."""

import csv
import json
import os
import threading
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf

from coattn_dist.cli import main
from coattn_dist.data import clip_id_for
from coattn_dist.store import ClipStore
from tests.audio.hostile import encoded, flac_claiming, noise, silence_flac, wav_with

GiB = 2**30
CAPS = ["--decode-limit", "max_bytes=1500000", "--decode-limit", "max_seconds=60"]


def hostile_folder(root: Path, sample_dir: Path, bad_audio: dict) -> tuple[dict, set]:
    """Files under `root`: name -> the failure kind it must get, and the names that must index."""
    flac = next(iter(sorted((sample_dir / "audio").glob("*.flac")))).read_bytes()
    failing = {
        **{name: (data, kind) for name, (data, kind) in bad_audio.items()},
        "one_hertz.wav": (wav_with(rate=1), "bad_rate"),
        "forty_megahertz.wav": (wav_with(rate=40_000_000), "bad_rate"),
        "no_channels.wav": (wav_with(channels=0), "bad_channels"),
        "sixty_four_channels.wav": (encoded(noise(0.05, channels=64)), "bad_channels"),
        "claims_2_36_frames.flac": (flac_claiming(2**36 - 1), "too_long"),
        "silence_bomb.flac": (silence_flac(600.0), "too_long"),  # 10 min in a few KB
        "over_the_byte_cap.wav": (encoded(noise(40.0)), "too_large"),  # 1.8 MB
        "page.flac": (b"<html><script>alert(1)</script></html>", "not_audio"),
        "corrupt_middle.flac": (flac[:2000] + bytes(4000) + flac[6000:], "truncated"),
    }
    odd = {
        "really_a_flac.wav": flac,  # the wrong extension
        "caf\udce9_latin1_name.flac": flac,  # a name that is not UTF-8
        "/".join(f"d{i}" for i in range(40)) + "/deep.flac": flac,
        "digital_silence.wav": encoded(np.zeros((22050, 1), np.float32)),
        "eight_khz.wav": encoded(noise(1.0, rate=8000), rate=8000),
        "six_channels_48k.flac": encoded(noise(0.5, rate=48000, channels=6), 48000, "FLAC"),
        "a_twentieth_of_a_second.wav": encoded(noise(0.05)),
        "LOUD.WAV": encoded(np.clip(noise(0.5) * 50, -1, 1)),
    }
    for name, data in {**{n: d for n, (d, _) in failing.items()}, **odd}.items():
        path = os.path.join(os.fsencode(root), os.fsencode(name))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    os.symlink(root / "nowhere.flac", root / "dangling.flac")
    failing["dangling.flac"] = (None, "unreadable")
    return {n: kind for n, (_, kind) in failing.items()}, set(odd)


def hostile_manifest(path: Path, audio: Path, sample_dir: Path) -> dict[str, str]:
    """Rows that no file can fix: uri -> the failure kind it must get."""
    good = str(next(iter(sorted((sample_dir / "audio").glob("*.flac")))))
    long_uri = str(audio / ("x" * 2100 + ".flac"))
    (audio / "a_folder.flac").mkdir(parents=True)
    rows = {
        str(audio / "missing.flac"): ("", "", "unreadable"),
        str(audio / "a_folder.flac"): ("", "", "unreadable"),
        long_uri: ("", "", "uri_too_long"),
        good: ("", "y" * 300, "label_too_long"),
        good + "?copy": ('bad"id', "", "bad_clip_id"),
    }
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["audio", "caption", "clip_id", "label"])
        for uri, (clip_id, label, _) in rows.items():
            writer.writerow([uri, "a sound", clip_id, label])
    return {uri: kind for uri, (_, _, kind) in rows.items()}


def workers_rss() -> int:
    """Resident bytes of this machine's Ray worker processes."""
    total = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"default_worker" not in (proc / "cmdline").read_bytes():
                continue
            status = (proc / "status").read_text().splitlines()
        except OSError:  # the process ended while we looked
            continue
        total += sum(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))
    return total


class PeakMemory:
    """The Ray workers' resident memory above what it was before, sampled while a job runs."""

    def __enter__(self):
        self.baseline, self.peak, self._stop = workers_rss(), 0, threading.Event()

        def sample():
            while not self._stop.wait(0.05):
                self.peak = max(self.peak, workers_rss() - self.baseline)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def test_a_hostile_corpus_fails_row_by_row_and_indexes_every_good_clip(
    sample_dir, bad_audio, trained_checkpoint, ray_local, tmp_path, capsys
):
    audio = tmp_path / "audio"
    audio.mkdir()
    expected_kinds, odd = hostile_folder(audio, sample_dir, bad_audio)
    manifest_kinds = hostile_manifest(tmp_path / "rows.csv", tmp_path / "rows", sample_dir)
    common = [
        "--checkpoint", trained_checkpoint,
        "--milvus-uri", tmp_path / "milvus.db",
        "--collection", "clips",
        "--batch-size", 3,
        "--num-workers", 1,
        *CAPS,
    ]  # fmt: skip

    with PeakMemory() as memory:
        code = main(
            [
                str(a)
                for a in ["index", "--source", audio, *common, "--failures", tmp_path / "f.parquet"]
            ]
        )
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert (summary["indexed"], summary["failed"]) == (len(odd), len(expected_kinds))
    failures = pq.read_table(tmp_path / "f.parquet").to_pylist()
    assert {Path(f["uri"]).name: f["kind"] for f in failures} == expected_kinds
    assert all(f["message"] for f in failures)
    assert memory.peak < 2 * GiB  # the bombs above ask for 256 GiB and more

    with ClipStore(str(tmp_path / "milvus.db"), "clips", 256) as store:
        uris = {hit.uri for hit in store.fetch(list(store.all_ids()), False).values()}
    assert len(uris) == len(odd)
    non_utf8 = next(u for u in uris if "latin1" in u)
    assert non_utf8.startswith("file://") and "%E9" in non_utf8  # stored as a file URL
    assert any(u.endswith("/d39/deep.flac") for u in uris)

    code = main(
        [str(a) for a in ["index", "--manifest", tmp_path / "rows.csv", *common,
                          "--milvus-uri", tmp_path / "rows.db", "--failures", tmp_path / "rows.parquet"]]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    failures = pq.read_table(tmp_path / "rows.parquet").to_pylist()
    assert {f["uri"]: f["kind"] for f in failures} == manifest_kinds
    assert json.loads(out.strip().splitlines()[-1])["failed"] == len(manifest_kinds)
    assert clip_id_for(str(tmp_path / "rows" / "missing.flac"))  # ids still derive from the uri
    assert sf.info(str(audio / "really_a_flac.wav")).format == "FLAC"

"""Build the sound-effects corpus from a folder of Debian packages.

For each package: read its files as a stream (``sources``) → keep audio that the path rules
call a real recording (``rules``) → name it (``captions``; package docs as a fallback hint) →
drop copies and files that do not decode, are shorter than 0.1 s or digitally silent → write
the file unchanged under ``OUT/audio/<package>/`` → one manifest row per (clip, caption).
Every file that is not kept is counted under a reason, so the summary accounts for all of them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from coattn_dist.data.sfx.captions import group_of, name_clip
from coattn_dist.data.sfx.docs import MAX_DOC_BYTES, DocHints, is_doc
from coattn_dist.data.sfx.licence import Licences
from coattn_dist.data.sfx.rules import drop_reason, is_audio
from coattn_dist.data.sfx.sources import data_path, package_entries, package_name
from coattn_dist.data.table import GENERIC_COLUMNS, clip_id_for
from coattn_dist.progress import Progress

# Packages set aside for independent evaluation: never opened. gamine-data is not one of them by
# name, but ships Tux Paint's sound effects (its file names are Tux Paint's), so it is closed too.
RESERVED = (
    "tuxpaint",
    "openttd-opensfx",
    "minetest-data",
    "minetest-mod-homedecor",
    "ufoai-sound",
    "gamine-data",
)
MIN_SECONDS = 0.1
SILENCE_PEAK = 1e-3  # -60 dBFS: below this everywhere, a file holds no sound


def is_reserved(package: str) -> bool:
    return any(package == r or package.startswith(r) for r in RESERVED)


def check_audio(data: bytes) -> tuple[str | None, float]:
    """(reason to drop or None, duration in seconds) after decoding the whole file."""
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception:  # libsndfile raises several types for broken input
        return "corrupt", 0.0
    seconds = len(samples) / rate if rate else 0.0
    if seconds < MIN_SECONDS:
        return "too_short", seconds
    if not np.isfinite(samples).all():
        return "corrupt", seconds
    if float(np.abs(samples).max()) < SILENCE_PEAK:
        return "silent", seconds
    return None, seconds


@dataclass
class PackageResult:
    package: str
    rows: list[dict] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    licences: Counter = field(default_factory=Counter)
    seconds_of_audio: float = 0.0
    dropped_paths: dict[str, list[str]] = field(default_factory=dict)

    def drop(self, reason: str, path: str) -> None:
        self.dropped[reason] += 1
        self.dropped_paths.setdefault(reason, []).append(path)

    def summary(self) -> dict:
        clips = {r["clip_id"] for r in self.rows}
        return {
            "clips": len(clips),
            "captions": len(self.rows),
            "concepts": len({r["label"] for r in self.rows}),
            "groups": len({r["group"] for r in self.rows}),
            "hours": round(self.seconds_of_audio / 3600, 2),
            "licence": dict(self.licences.most_common()),
            "dropped": dict(self.dropped.most_common()),
        }


def build_package(deb_path: str, out: Path) -> PackageResult:
    package = package_name(deb_path)
    result = PackageResult(package)
    progress = Progress(f"sfx {package}")
    docs: dict[str, str] = {}
    candidates: list[tuple[str, str, bytes]] = []
    for n, entry in enumerate(
        package_entries(deb_path, on_error=lambda p, e: result.drop("corrupt", p)), 1
    ):
        progress(n)
        if is_doc(entry.path) and entry.size <= MAX_DOC_BYTES and entry.link is None:
            docs[entry.path] = entry.read().decode("utf-8", "replace")
            continue
        if not is_audio(entry.path):
            result.drop("not_audio", entry.path)
            continue
        where = data_path(entry.path)
        reason = drop_reason(package, where) or ("duplicate" if entry.link else None)
        if reason:
            result.drop(reason, entry.path)
            continue
        candidates.append((entry.path, where, entry.read()))

    licence_of = Licences(package, docs, [path for path, _, _ in candidates])
    hint_of = DocHints(package, docs)
    seen: set[str] = set()
    kept: set[Path] = set()
    folder = out / "audio" / package
    for path, where, data in candidates:
        naming = name_clip(package, where, hint_of(path, where))
        if naming is None:
            result.drop("unnamed", path)
            continue
        digest = hashlib.sha1(data).hexdigest()
        if digest in seen:
            result.drop("duplicate", path)
            continue
        seen.add(digest)
        reason, seconds = check_audio(data)
        if reason:
            result.drop(reason, path)
            continue
        target = folder / where
        if target in kept:  # two archives with the same member path: fall back to the full path
            target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        kept.add(target)
        licence = licence_of(path)
        result.licences[licence] += 1
        result.seconds_of_audio += seconds
        audio = target.relative_to(out).as_posix()
        # the id of "<package>/<path inside package>", not of the written file: stable wherever OUT is
        cid, group = clip_id_for(f"{package}/{path}"), group_of(package, where)
        for caption in naming.captions:
            result.rows.append(
                {
                    "audio": audio,
                    "caption": caption,
                    "clip_id": cid,
                    "label": naming.label,
                    "group": group,
                    "source": package,
                    "licence": licence,
                }
            )
    _remove_stale(folder, kept)
    print(progress.line() + f"  kept {len(kept)}", file=progress.stream, flush=True)
    return result


def _remove_stale(folder: Path, kept: set[Path]) -> None:
    """Files a previous run wrote for this package that this run did not keep."""
    if not folder.exists():
        return
    for root, _, files in os.walk(folder):
        for name in files:
            p = Path(root) / name
            if p not in kept:
                p.unlink()


def write_manifest_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=GENERIC_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _write_dropped(results: list[PackageResult], path: Path) -> None:
    """Every audio file not kept, with its reason, for review (files that are not audio left out)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("source", "reason", "path"))
        for r in results:
            for reason, paths in sorted(r.dropped_paths.items()):
                if reason != "not_audio":
                    writer.writerows((r.package, reason, p) for p in paths)


def build_corpus(debs_dir: str, out: str) -> dict:
    """Every .deb in ``debs_dir`` (reserved packages skipped) → ``out/manifest.csv``,
    ``out/summary.json`` and the audio under ``out/audio/``. Returns the summary."""
    start = time.monotonic()
    out_path = Path(out).resolve()
    out_path.mkdir(parents=True, exist_ok=True)
    debs = sorted(str(p) for p in Path(debs_dir).glob("*.deb"))
    skipped = [package_name(d) for d in debs if is_reserved(package_name(d))]
    rows: list[dict] = []
    packages: dict[str, dict] = {}
    dropped: Counter = Counter()
    results = []
    for deb in debs:
        if is_reserved(package_name(deb)):
            continue
        result = build_package(deb, out_path)
        results.append(result)
        rows += result.rows
        packages[result.package] = result.summary()
        dropped.update(result.dropped)
    write_manifest_csv(rows, out_path / "manifest.csv")
    _write_dropped(results, out_path / "dropped.csv")
    summary = {
        "clips": len({r["clip_id"] for r in rows}),
        "captions": len(rows),
        "concepts": len({r["label"] for r in rows}),
        "groups": len({r["group"] for r in rows}),
        "hours": round(sum(p["hours"] for p in packages.values()), 2),
        "dropped": dict(dropped.most_common()),
        "packages": packages,
        "reserved_skipped": skipped,
        "manifest": "manifest.csv",  # relative to OUT, so the file reads the same wherever OUT is
        "seconds": round(time.monotonic() - start, 1),
    }
    (out_path / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary

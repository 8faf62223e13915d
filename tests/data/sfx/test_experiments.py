"""The corpus's experiment manifests: one package held out whole, concepts never split, scenes
worded from the corpus's own captions."""

import csv
import shutil

from coattn_dist.data import read_manifest
from coattn_dist.data.sfx.experiments import LATER_PACKAGES, write_experiments
from coattn_dist.data.splits import split_concepts

CLASSES = [
    "dog",
    "rain",
    "church_bells",
    "clock_tick",
    "rooster",
    "cow",
    "frog",
    "crickets",
    "helicopter",
    "thunderstorm",
    "door_wood_knock",
    "sheep",
]
CAPTIONS = {c: [f"the sound of {c}", f"{c} can be heard"] for c in CLASSES}


def tiny_corpus(sample_dir, out):
    """Real clips of the sample posing as a corpus of three packages, two takes per group."""
    with open(sample_dir / "meta" / "esc50.csv") as f:
        meta = [r for r in csv.DictReader(f) if r["category"] in CAPTIONS]
    (out / "audio").mkdir(parents=True)
    rows = []
    for i, r in enumerate(meta):
        shutil.copy(sample_dir / "audio" / r["filename"], out / "audio")
        package = "outside-pkg" if r["category"] == "rooster" else f"pkg{i % 2}"
        for caption in CAPTIONS[r["category"]]:
            rows.append(
                {
                    "audio": f"audio/{r['filename']}",
                    "caption": caption,
                    "clip_id": f"c{i:03d}",
                    "label": r["category"],
                    "group": f"{package}/{r['src_file']}",
                    "source": package,
                    "licence": "CC-BY-NC-3.0",
                }
            )
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def test_concepts_stay_whole_and_the_outside_package_is_never_trained_on(sample_dir, tmp_path):
    rows = tiny_corpus(sample_dir, tmp_path)
    counts = write_experiments(str(tmp_path), outside="outside-pkg", scenes={"train": 4, "val": 2})
    read = {name: read_manifest(str(tmp_path / name)) for name in counts}
    outside = read["outside.csv"]
    assert set(outside["source"].to_pylist()) == {"outside-pkg"}
    assert outside.num_rows == len({r["clip_id"] for r in rows if r["source"] == "outside-pkg"})
    labels = {
        n: set(read[n]["label"].to_pylist())
        for n in ("sfx-train.csv", "sfx-val.csv", "sfx-test.csv")
    }
    assert "rooster" not in set().union(*labels.values())
    assert not labels["sfx-train.csv"] & (labels["sfx-val.csv"] | labels["sfx-test.csv"])
    assert labels["sfx-val.csv"] and labels["sfx-test.csv"]
    # training keeps every paraphrase, evaluation one canonical caption per clip
    train = read["sfx-train.csv"]
    assert train.num_rows == 2 * len(set(train["clip_id"].to_pylist()))
    assert set(read["sfx-val.csv"]["caption"].to_pylist()) <= {c[0] for c in CAPTIONS.values()}
    scenes = read["scenes-sfx-train.jsonl"]["caption"].to_pylist()
    words = [c for cs in CAPTIONS.values() for c in cs]
    assert len(scenes) == 4 and all(sum(w in s for w in words) >= 2 for s in scenes)
    assert (tmp_path / "scenes-sfx" / "train").is_dir()


def test_split_concepts_never_cuts_a_concept():
    ids = [f"c{i}" for i in range(60)]
    labels = [f"concept{i % 12}" for i in range(60)]
    split = split_concepts(ids, labels, {"val": 0.2}, seed=3)
    sides = {}
    for cid, label in zip(ids, labels):
        sides.setdefault(label, set()).add(split[cid])
    assert all(len(s) == 1 for s in sides.values())
    assert sum(s == {"val"} for s in sides.values()) >= 2


def test_a_later_package_leaves_the_concept_split_as_it_was(sample_dir, tmp_path):
    """Clips of a package added after the split train when their concept does (or is new) and
    are left out when it is held out: val and test stay exactly what they were."""
    before, after = tmp_path / "before", tmp_path / "after"
    rows = tiny_corpus(sample_dir, before)
    write_experiments(str(before), outside="outside-pkg", scenes={})
    tiny_corpus(sample_dir, after)
    later = [
        dict(r, clip_id=f"later-{r['clip_id']}", source=LATER_PACKAGES[0])
        for r in rows
        if r["source"] != "outside-pkg"
    ]
    later += [dict(later[0], clip_id="later-new", label="gong", group="later/gong")]
    with open(after / "manifest.csv", "a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(rows[0])).writerows(later)
    write_experiments(str(after), outside="outside-pkg", scenes={})

    def sides(folder):
        out = {}
        for name in ("sfx-train.csv", "sfx-val.csv", "sfx-test.csv"):
            table = read_manifest(str(folder / name))
            for cid, label in zip(table["clip_id"].to_pylist(), table["label"].to_pylist()):
                out[cid] = (name, label)
        return out

    old, new = sides(before), sides(after)
    assert all(new[cid] == side for cid, side in old.items())  # the first packages: unchanged
    for name in ("sfx-val.csv", "sfx-test.csv"):
        assert {c for c, (n, _) in new.items() if n == name} == {
            c for c, (n, _) in old.items() if n == name
        }
    split_of = {label: name for name, label in old.values()}
    later = {cid: side for cid, side in new.items() if cid.startswith("later-")}
    assert later["later-new"][0] == "sfx-train.csv"
    assert all(split_of[label] == "sfx-train.csv" for _, label in later.values() if label != "gong")
    held_out = {r["clip_id"] for r in rows if split_of.get(r["label"]) != "sfx-train.csv"}
    assert held_out and not {f"later-{c}" for c in held_out} & set(later)

"""`coattn demo` end to end, on a 6-clip copy of the shipped sample to keep it short."""
import csv
import json
import shutil

from coattn_dist.cli import main
from coattn_dist.model import RetrievalModel


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


def test_demo_trains_saves_and_answers(sample_dir, tmp_path, capsys):
    sample = small_sample(sample_dir, tmp_path / "esc50")
    code = main(["demo", "--no-serve", "--sample", str(sample), "--out", str(tmp_path / "run"), "-k", "2",
                 "--query", "a dog is barking", "--query", "rain falling on the ground",
                 "--set", "train.epochs=30", "train.rerank_epochs=5"])
    assert code == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["clips"] == 6 and summary["failed"] == 0
    assert "[embed clips] 6/6" in err and "[train stage1]" in err
    names = {r["filename"]: r["category"] for r in csv.DictReader(open(sample / "meta" / "esc50.csv"))}
    assert [names[n] for n in summary["answers"]["a dog is barking"]] == ["dog", "dog"]
    assert [names[n] for n in summary["answers"]["rain falling on the ground"]] == ["rain", "rain"]
    assert RetrievalModel.load(summary["checkpoint"]).cfg.train.rerank_epochs == 5

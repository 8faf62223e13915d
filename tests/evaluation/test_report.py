"""The report folder: metrics.json as given, tables and plots read from the same numbers."""

import json

import fsspec

from coattn_dist.evaluation.report import markdown, write_report


def system(r1: float, map10: float, ms: float = 0.0) -> dict:
    return {
        "R@1": r1,
        "R@5": 0.9,
        "R@10": 1.0,
        "mAP@10": map10,
        "clip_accuracy": 0.5,
        "ms_per_query": ms,
    }


METRICS = {
    "matrix": {
        "esc50": {
            "esc50": {"stage1": system(0.25, 0.4), "single": system(0.5, 0.7, 1.5)},
            "scenes": {"stage1": system(0.1, 0.2), "single": system(0.2, 0.3, 1.25)},
        },
        "scenes": {
            "esc50": {"stage1": system(0.3, 0.45), "single": system(0.3, 0.35, 2.0)},
            "scenes": {"stage1": system(0.4, 0.5), "single": system(0.6, 0.65, 2.5)},
        },
    },
    "order": {"esc50": {"stage1": 0.0, "single": 0.75}, "scenes": {"stage1": 0.0, "single": 0.9}},
    "noise": {
        "esc50": {
            "white": {"clean": {"stage1": 0.4, "single": 0.7}, "0": {"stage1": 0.2, "single": 0.3}},
            "pink": {
                "clean": {"stage1": 0.4, "single": 0.7},
                "0": {"stage1": 0.25, "single": 0.35},
            },
        }
    },
    "text_perturbation": {
        "esc50": {"stage1": 0.33, "single": 0.6},
        "scenes": {"stage1": 0.3, "single": 0.5},
    },
}


def test_report_files_hold_the_same_numbers(tmp_path):
    folder = tmp_path / "report"
    files = write_report(METRICS, str(folder))
    assert files == ["metrics.json", "noise-esc50.png", "report.md", "systems.png"]
    assert sorted(p.name for p in folder.iterdir()) == files
    assert json.loads((folder / "metrics.json").read_text()) == METRICS
    assert (folder / "report.md").read_text() == markdown(METRICS)
    for png in ("noise-esc50.png", "systems.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_tables():
    lines = markdown(METRICS).splitlines()
    at = lines.index("## esc50 → esc50")
    assert lines[at + 2] == "| system | R@1 | R@5 | R@10 | mAP@10 | clip_accuracy | ms_per_query |"
    assert lines[at + 5] == "| single | 0.500 | 0.900 | 1.000 | 0.700 | 0.500 | 1.500 |"
    # the cross-dataset matrix takes the best system of each cell
    at = lines.index(
        "## Cross-dataset mAP@10 (best system per cell; rows: trained on, columns: tested on)"
    )
    assert lines[at + 2 : at + 6] == [
        "| trained on | esc50 | scenes |",
        "|---|---|---|",
        "| esc50 | 0.700 | 0.300 |",
        "| scenes | 0.450 | 0.650 |",
    ]
    assert "| scenes | 0.000 | 0.900 |" in lines  # order test
    at = lines.index("**pink**")
    assert lines[at + 2 : at + 6] == [
        "| SNR (dB) | stage1 | single |",
        "|---|---|---|",
        "| clean | 0.400 | 0.700 |",
        "| 0 | 0.250 | 0.350 |",
    ]
    assert "| esc50 | 0.330 | 0.600 |" in lines  # perturbed text


def test_one_cell_and_no_sweeps_give_one_table_and_one_plot():
    metrics = {"matrix": {"esc50": {"esc50": {"stage1": system(0.25, 0.4)}}}}
    text = markdown(metrics)
    assert text.count("## ") == 1 and "Cross-dataset" not in text and "Noise" not in text
    files = write_report(metrics, "memory://reports/one")
    assert files == ["metrics.json", "report.md", "systems.png"]
    fs = fsspec.filesystem("memory")
    assert json.loads(fs.cat("reports/one/metrics.json")) == metrics

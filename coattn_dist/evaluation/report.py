"""The report folder: metrics.json (for scripts), report.md (tables) and PNG plots (for people).

Every number in report.md and the plots is read back from the same dict that metrics.json holds,
so the three never disagree.
"""

from __future__ import annotations

import json

import fsspec
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLUMNS = ["R@1", "R@5", "R@10", "mAP@10", "clip_accuracy", "ms_per_query"]


def _table(header: list[str], rows: list[list]) -> list[str]:
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(fmt(v) for v in row) + " |" for row in rows),
    ]


def markdown(metrics: dict) -> str:
    lines = ["# Evaluation report", ""]
    for ckpt, tests in metrics["matrix"].items():
        for test, systems in tests.items():
            lines += [f"## {ckpt} → {test}", ""]
            lines += _table(
                ["system", *COLUMNS], [[s, *(m[c] for c in COLUMNS)] for s, m in systems.items()]
            )
            lines.append("")
    if len(metrics["matrix"]) > 1 or any(len(t) > 1 for t in metrics["matrix"].values()):
        tests = list(next(iter(metrics["matrix"].values())))
        lines += [
            "## Cross-dataset mAP@10 (best system per cell; rows: trained on, columns: tested on)",
            "",
        ]
        lines += _table(
            ["trained on", *tests],
            [
                [ckpt, *(max(m["mAP@10"] for m in t[test].values()) for test in tests)]
                for ckpt, t in metrics["matrix"].items()
            ],
        )
        lines.append("")
    if metrics.get("order"):
        lines += ["## Order test (true-order caption scores above the swapped one)", ""]
        systems = list(next(iter(metrics["order"].values())))
        lines += _table(
            ["checkpoint", *systems],
            [[c, *(o[s] for s in systems)] for c, o in metrics["order"].items()],
        )
        lines.append("")
    for ckpt, sweep in metrics.get("noise", {}).items():
        lines += [f"## Noise robustness: mAP@10 ({ckpt})", ""]
        for kind, by_snr in sweep.items():
            systems = list(next(iter(by_snr.values())))
            lines += [f"**{kind}**", ""]
            lines += _table(
                ["SNR (dB)", *systems],
                [[snr, *(v[s] for s in systems)] for snr, v in by_snr.items()],
            )
            lines.append("")
    if metrics.get("text_perturbation"):
        lines += ["## Perturbed query text: mAP@10 (typos, dropped words)", ""]
        systems = list(next(iter(metrics["text_perturbation"].values())))
        lines += _table(
            ["checkpoint", *systems],
            [[c, *(p[s] for s in systems)] for c, p in metrics["text_perturbation"].items()],
        )
        lines.append("")
    return "\n".join(lines)


def noise_plot(sweep: dict, title: str):
    """mAP@10 against SNR, one panel per noise kind, one line per system."""
    fig, axes = plt.subplots(1, len(sweep), figsize=(4.5 * len(sweep), 3.6), squeeze=False)
    for ax, (kind, by_snr) in zip(axes[0], sweep.items()):
        snrs = list(by_snr)
        for system in next(iter(by_snr.values())):
            ax.plot(range(len(snrs)), [by_snr[s][system] for s in snrs], marker="o", label=system)
        ax.set_xticks(range(len(snrs)), snrs)
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel("mAP@10")
        ax.set_title(kind)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def systems_plot(matrix: dict):
    """mAP@10 of every system on every (checkpoint, test set) pair, grouped bars."""
    cells = [
        (f"{c}\n→ {t}", systems) for c, tests in matrix.items() for t, systems in tests.items()
    ]
    names = list(cells[0][1])
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(cells) * len(names) / 2), 3.8))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        ax.bar(
            [j + i * width for j in range(len(cells))],
            [s.get(name, {}).get("mAP@10", 0) for _, s in cells],
            width,
            label=name,
        )
    ax.set_xticks(
        [j + 0.4 - width / 2 for j in range(len(cells))], [c for c, _ in cells], fontsize=8
    )
    ax.set_ylabel("mAP@10")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def write_report(metrics: dict, folder: str, storage_options: dict | None = None) -> list[str]:
    """Writes the report files into a local folder or any fsspec URI; returns their names."""
    fs, root = fsspec.core.url_to_fs(folder, **(storage_options or {}))
    fs.makedirs(root, exist_ok=True)
    files = {
        "metrics.json": json.dumps(metrics, indent=2).encode(),
        "report.md": markdown(metrics).encode(),
    }
    figures = {"systems.png": systems_plot(metrics["matrix"])}
    for ckpt, sweep in metrics.get("noise", {}).items():
        figures[f"noise-{ckpt}.png"] = noise_plot(sweep, f"mAP@10 vs SNR ({ckpt})")
    for name, fig in figures.items():
        with fs.open(f"{root}/{name}", "wb") as f:
            fig.savefig(f, format="png", dpi=110)
        plt.close(fig)
    for name, data in files.items():
        with fs.open(f"{root}/{name}", "wb") as f:
            f.write(data)
    return sorted([*files, *figures])

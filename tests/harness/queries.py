"""Query text the tests and the benchmarks share: real captions, not made-up strings."""

import csv
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "data" / "sfx" / "manifest.csv"


def varied_queries(n: int = 1000) -> list[str]:
    """Corpus captions of every package (one to a dozen words), in file order, no repeats."""
    with CORPUS.open() as f:
        captions = dict.fromkeys(row["caption"] for row in csv.DictReader(f))
    return list(captions)[:n]

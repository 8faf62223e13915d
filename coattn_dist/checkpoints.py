"""Which checkpoint a command reads when none is given: $COATTN_CHECKPOINT, else the general one
that ships in the repo (trained on every real corpus the project may use; RESULTS.md)."""

from __future__ import annotations

import os
from pathlib import Path

GENERAL = Path(__file__).resolve().parents[1] / "checkpoints" / "general"


def resolve_checkpoint(given: str | None = None) -> str:
    """`given`, else the environment's, else the shipped one; a missing default is an error that
    says how to get one rather than a file-not-found deep in a loader."""
    chosen = given or os.environ.get("COATTN_CHECKPOINT")
    if chosen:
        return chosen
    if not (GENERAL / "config.json").exists():
        raise FileNotFoundError(
            f"no checkpoint given and the shipped one is missing ({GENERAL}): pass --checkpoint, "
            "set COATTN_CHECKPOINT, or rebuild it with experiments/general.sh"
        )
    return str(GENERAL)

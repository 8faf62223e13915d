"""Flags the jobs share."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def storage_options(text: str) -> dict:
    """fsspec options as JSON, or ``@FILE`` holding that JSON: secrets then stay off the command
    line, which any user of the machine can read (``ps``, a Ray job's entrypoint)."""
    try:
        if text.startswith("@"):
            text = Path(text[1:]).read_text()
        options = json.loads(text)
    except (OSError, ValueError) as error:
        raise argparse.ArgumentTypeError(f"storage options: {error}") from None
    if not isinstance(options, dict):
        raise argparse.ArgumentTypeError("storage options must be a JSON object")
    return options


STORAGE_HELP = (
    "fsspec options as JSON, or @FILE.json to keep secrets off the command line "
    "(default: the AWS_* environment variables)"
)

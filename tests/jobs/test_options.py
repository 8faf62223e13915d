"""Storage options from the command line or, for secrets, from a file."""

import argparse

import pytest

from jobs.options import storage_options


def test_json_text_or_a_file(tmp_path):
    assert storage_options('{"key": "k"}') == {"key": "k"}
    secrets = tmp_path / "s3.json"
    secrets.write_text('{"key": "k", "secret": "s"}')
    assert storage_options(f"@{secrets}") == {"key": "k", "secret": "s"}


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "@/nowhere/s3.json"])
def test_bad_options_are_a_usage_error(text):
    with pytest.raises(argparse.ArgumentTypeError, match="storage options"):
        storage_options(text)

"""The harness's S3 server enforces credentials, never collides, and leaves nothing behind."""

from urllib.parse import urlparse

import pytest
import s3fs

from tests.harness.servers import aws_env, port_open, processes_using, seaweedfs_s3


def test_seaweedfs_s3_with_auth_and_no_port_collisions(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    with seaweedfs_s3(one, "key-one", "secret-one") as s3, seaweedfs_s3(two, "k2", "s2") as other:
        assert s3 == {"endpoint_url": s3["endpoint_url"], "key": "key-one", "secret": "secret-one"}
        assert s3["endpoint_url"] != other["endpoint_url"]
        fs = s3fs.S3FileSystem(**s3, skip_instance_cache=True)
        fs.mkdir("audio-bucket")
        fs.pipe("audio-bucket/clips/a.bin", b"\x00\x01 waveform")
        assert fs.cat("audio-bucket/clips/a.bin") == b"\x00\x01 waveform"
        assert fs.ls("audio-bucket/clips") == ["audio-bucket/clips/a.bin"]
        assert "audio-bucket" not in s3fs.S3FileSystem(**other, skip_instance_cache=True).ls("")

        wrong = s3fs.S3FileSystem(
            key="key-one",
            secret="not-the-secret",
            endpoint_url=s3["endpoint_url"],
            skip_instance_cache=True,
        )
        with pytest.raises(PermissionError):
            wrong.cat("audio-bucket/clips/a.bin")
        assert aws_env(s3)["AWS_ENDPOINT_URL"] == s3["endpoint_url"]
        assert processes_using(one) and processes_using(two)
    assert not port_open(urlparse(s3["endpoint_url"]).port)
    assert not port_open(urlparse(other["endpoint_url"]).port)
    assert not processes_using(one) and not processes_using(two)

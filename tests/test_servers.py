"""The local servers start, answer, refuse bad credentials, and leave nothing behind."""

import socket
from pathlib import Path

import pytest
import s3fs
from pymilvus import MilvusClient

from coattn_dist.servers import (ServerError, aws_env, milvus_lite_server, port_open,
                                 seaweedfs_s3)


def processes_using(path: Path) -> list[int]:
    """Pids whose command line names `path`: our servers all take their data dir as argument."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(path).encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_milvus_lite_server_answers_and_stops(tmp_path):
    data = tmp_path / "milvus"
    with milvus_lite_server(data) as uri:
        assert uri.startswith("http://127.0.0.1:")
        client = MilvusClient(uri=uri)
        client.create_collection("probe", dimension=4)
        assert "probe" in client.list_collections()
        client.close()
        assert processes_using(data)
    assert not port_open(port_of(uri))
    assert not processes_using(data)


def test_busy_port_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerError, match="milvus-lite exited .* last lines"):
            with milvus_lite_server(tmp_path / "milvus", port=port):
                pass
    assert not processes_using(tmp_path / "milvus")


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

        wrong = s3fs.S3FileSystem(key="key-one", secret="not-the-secret",
                                  endpoint_url=s3["endpoint_url"], skip_instance_cache=True)
        with pytest.raises(PermissionError):
            wrong.cat("audio-bucket/clips/a.bin")
        assert aws_env(s3)["AWS_ENDPOINT_URL"] == s3["endpoint_url"]
        assert processes_using(one) and processes_using(two)
    assert not port_open(port_of(s3["endpoint_url"]))
    assert not port_open(port_of(other["endpoint_url"]))
    assert not processes_using(one) and not processes_using(two)

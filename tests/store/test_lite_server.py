"""The Milvus Lite server answers, fails clearly on a busy port, and leaves nothing behind."""

import socket
from urllib.parse import urlparse

import pytest
from pymilvus import MilvusClient

from coattn_dist.store.lite_server import ServerError, milvus_lite_server
from tests.harness.servers import port_open, processes_using


def test_milvus_lite_server_answers_and_stops(tmp_path):
    data = tmp_path / "milvus"
    with milvus_lite_server(data) as uri:
        assert uri.startswith("http://127.0.0.1:")
        client = MilvusClient(uri=uri)
        client.create_collection("probe", dimension=4)
        assert "probe" in client.list_collections()
        client.close()
        assert processes_using(data)
    assert not port_open(urlparse(uri).port)
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

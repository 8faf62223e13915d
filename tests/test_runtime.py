import os

from coattn_dist.runtime import use_serve_fast_path


def test_fast_path_is_on_by_default_without_direct_ingress(monkeypatch):
    monkeypatch.setattr(os, "environ", {})
    use_serve_fast_path()
    assert os.environ == {
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0",
    }


def test_fast_path_keeps_what_an_operator_set(monkeypatch):
    monkeypatch.setattr(os, "environ", {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "0"})
    use_serve_fast_path()
    assert os.environ == {
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "0",
        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0",
    }

"""Search by a sound against the real app: more like an indexed clip (`GET /search?like=`), more
like an uploaded file (`POST /search`), each result's spectrogram, and every bad request's 4xx."""

import io

import numpy as np
import pytest
import requests

from coattn_dist.metrics import map_at_k
from coattn_dist.query.sound import UPLOAD_LIMITS


def like(service, clip_id, **params):
    return requests.get(f"{service}/search", params={"like": clip_id, **params}, timeout=60)


def test_more_like_an_indexed_clip_finds_its_class_and_never_itself(service, indexed):
    ids = sorted(indexed)
    scores, relevant = np.zeros((len(ids), len(ids))), np.zeros((len(ids), len(ids)), bool)
    for q, clip_id in enumerate(ids):
        response = like(service, clip_id, k=len(ids) - 1)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["query"] == {"like": clip_id}
        found = [r["clip_id"] for r in body["results"]]
        assert clip_id not in found and len(found) == len(ids) - 1
        for rank, c in enumerate(found):
            scores[q, ids.index(c)] = len(ids) - rank
        scores[q, q] = -1.0  # never returned: ranked last
        relevant[q] = [indexed[c]["label"] == indexed[clip_id]["label"] for c in ids]
        relevant[q, q] = False
    quality = map_at_k(scores, relevant, 10)
    print(f"more like this on the 12 served clips (6 classes x 2): mAP@10 {quality:.3f}")
    assert quality >= 0.75  # chance is about 0.2: one same-class clip among 11


def test_unknown_or_malformed_ids_and_ambiguous_queries_are_4xx(service):
    missing = like(service, "no-such-clip")
    assert missing.status_code == 404 and "no clip 'no-such-clip'" in missing.json()["detail"]
    assert like(service, 'bad"id').status_code == 422
    both = requests.get(f"{service}/search", params={"q": "a dog", "like": "x"}, timeout=30)
    neither = requests.get(f"{service}/search", timeout=30)
    for response in (both, neither):
        assert response.status_code == 422
        assert response.json()["detail"] == "q: give one query, words (q) or an indexed clip (like)"


def upload(service, data: bytes, name="clip.flac", **fields):
    files = {"audio": (name, io.BytesIO(data), "application/octet-stream")}
    return requests.post(f"{service}/search", files=files, data=fields, timeout=60)


def test_an_uploaded_clip_finds_its_indexed_copy_first(service, indexed):
    for clip_id in sorted(indexed)[:3]:
        data = indexed[clip_id]["path"].read_bytes()
        response = upload(service, data, "mine.flac", k="3")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["query"] == {"audio": "mine.flac"}
        assert len(body["results"]) == 3
        assert body["results"][0]["clip_id"] == clip_id
        assert body["results"][0]["stage1_score"] == pytest.approx(1.0, abs=1e-3)
        assert {"encode", "retrieve", "total"} <= set(body["timings_ms"])


def test_every_bad_upload_gets_its_4xx(service, indexed):
    real = indexed[sorted(indexed)[0]]["path"].read_bytes()
    cases = {
        "empty": (upload(service, b""), 422),
        "not_audio": (upload(service, b"<html>no sound here</html>" * 40, "page.wav"), 422),
        "truncated": (upload(service, real[: len(real) // 2]), 422),
    }
    for kind, (response, status) in cases.items():
        assert response.status_code == status, (kind, response.text)
        assert response.json()["detail"].endswith(f"({kind})")
    over = b"\0" * (UPLOAD_LIMITS.max_bytes + 1)
    said = upload(service, over)  # Content-Length says it: refused before the body is read
    streamed = requests.post(  # chunked, no length: refused one byte past the cap
        f"{service}/search",
        data=iter(
            [
                b'--b\r\nContent-Disposition: form-data; name="audio"; filename="x"\r\n\r\n',
                over,
                b"\r\n--b--\r\n",
            ]
        ),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
        timeout=120,
    )
    for response in (said, streamed):
        assert response.status_code == 413 and "cap" in response.json()["detail"]
    no_field = requests.post(f"{service}/search", files={"file": ("x", b"abc")}, timeout=30)
    assert no_field.status_code == 422 and "'audio'" in no_field.json()["detail"]
    not_form = requests.post(f"{service}/search", data=b"raw", timeout=30)
    assert not_form.status_code == 422
    assert upload(service, real, k="0").status_code == 422
    assert upload(service, real, k="many").status_code == 422


def test_each_result_has_a_spectrogram(service, indexed):
    clip_id = sorted(indexed)[0]  # the one read from the S3 bucket
    picture = requests.get(f"{service}/spectrogram/{clip_id}", timeout=60)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert picture.content.startswith(b"\x89PNG\r\n\x1a\n") and len(picture.content) > 1000
    assert requests.get(f"{service}/spectrogram/nope", timeout=30).status_code == 404

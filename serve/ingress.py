"""Deployment: the HTTP face of the service (FastAPI), and its query encoders. `/search` and
`/health` go to `serve.flow.SearchFlow` (encode here, then the reranker, which fetches its own
candidates; bounded waits; degraded answers): `GET /search?q=` for words, `GET /search?like=ID`
for more like an indexed clip, `POST /search` with a multipart `audio` file for more like a sound.
`/audio/{clip_id}` streams a clip from wherever the index says it lives, `/spectrogram/{clip_id}`
draws it; `/` is the search page. A malformed request is a 4xx whose `detail` is one readable
sentence.
"""
# No `from __future__ import annotations` here: FastAPI must see the Query(...) annotations
# themselves, and a replica cannot resolve them from strings.

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import fsspec
import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from ray import serve
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle
from starlette.datastructures import UploadFile

from coattn_dist.audio import AudioError, decode
from coattn_dist.audio.paths import local_path
from coattn_dist.audio.spectrogram import RATE as SPECTROGRAM_RATE
from coattn_dist.audio.spectrogram import spectrogram_png
from coattn_dist.model import RetrievalModel
from coattn_dist.query.encode import QueryEncoder
from coattn_dist.query.sound import UPLOAD_LIMITS, SoundEncoder
from coattn_dist.store import StoreUnavailable
from coattn_dist.store.roots import media_type
from serve.flow import Deadlines, SearchFlow, busy, problem, store_unavailable, within
from serve.handles import as_configured

MAX_QUERY_CHARS = 500
MAX_K = 100
MAX_RERANK = 500
CHUNK_BYTES = 1 << 16
FORM_OVERHEAD = 1 << 16  # multipart boundaries and the small fields beside the file
K = Annotated[int, Query(ge=1, le=MAX_K, description="results to return")]
RERANK = Annotated[
    int,
    Query(
        ge=0,
        le=MAX_RERANK,
        description="stage-1 candidates the second stage rescores (0: stage 1 only)",
    ),
]
PAGE = Path(__file__).with_name("page.html")

app = FastAPI(
    title="coattn search", description="Language-based audio retrieval with co-attention reranking."
)


@app.exception_handler(RequestValidationError)
async def _invalid(_request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 lists pydantic errors; ours says what is wrong in one line."""
    detail = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in error.errors())
    return problem(422, detail, "invalid")


# Helpers live above the class: `serve.ingress(app)` pickles the app's routes as it decorates it.
def _audio_file(uri: str, storage_options: dict):
    """(filesystem, path) of a URI `Retriever.locate` allowed (a percent-encoded local name too)."""
    path = local_path(uri)
    if path is not None:
        return fsspec.filesystem("file"), path
    return fsspec.core.url_to_fs(uri, **storage_options)


def _chunks(fs, path: str) -> Iterator[bytes]:
    with fs.open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk


def _gone(clip_id: str) -> JSONResponse:
    return problem(404, f"clip {clip_id!r} is indexed but its audio is gone", "not_found")


def _bounded(value, default: int, low: int, high: int, name: str) -> int:
    """A form field's integer within [low, high] (the query parameter's value when absent)."""
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not low <= number <= high:
        raise ValueError(f"{name}: expected an integer from {low} to {high}, got {value!r}")
    return number


# A quarter CPU: it waits on the other stages far more than it computes (≈ 5 ms of encoding a
# search), and on a small node its autoscaled replicas at half a CPU each took the CPU that a
# replacement reranker needs (BENCHMARKS.md, "The failure drill").
@serve.deployment(ray_actor_options={"num_cpus": 0.25})
@serve.ingress(app)
class Ingress:
    def __init__(
        self,
        checkpoint: str,
        retriever: DeploymentHandle,
        reranker: DeploymentHandle,
        storage_options: dict,
        deadlines: dict | None = None,
        query_encoder: str = "onnx",
    ):
        model = RetrievalModel.load(checkpoint, storage_options=storage_options)
        encode = QueryEncoder.for_model(model, runtime=query_encoder)  # on the replica's CPU
        encode_sound = SoundEncoder(model)
        # warm, before the replica reports ready
        encode(["a dog barks while rain falls"])
        encode_sound.encoder([np.random.default_rng(0).standard_normal(44100).astype(np.float32)])
        self.retriever, reranker = map(as_configured, (retriever, reranker))
        self.storage_options = storage_options
        self.deadlines = Deadlines(**(deadlines or {}))
        self.flow = SearchFlow(encode, self.retriever, reranker, self.deadlines, encode_sound)
        self.page = PAGE.read_text()

    @app.get("/", response_class=HTMLResponse)
    async def page(self) -> str:
        return self.page

    @app.get("/health")
    async def health(self) -> JSONResponse:
        return await self.flow.health()

    @app.get("/search")
    async def search(
        self,
        q: Annotated[
            str | None,
            Query(min_length=1, max_length=MAX_QUERY_CHARS, description="what to find, in words"),
        ] = None,
        like: Annotated[
            str | None,
            Query(min_length=1, description="instead of words: clips like this indexed one"),
        ] = None,
        k: K = 10,
        rerank: RERANK = 50,
    ) -> JSONResponse:
        if (q is None) == (like is None):
            return problem(422, "q: give one query, words (q) or an indexed clip (like)", "invalid")
        if like is not None:
            return await self.flow.like(like, k, rerank)
        if not q.strip():
            return problem(422, "q: the query needs some text, not only spaces", "invalid")
        return await self.flow.search(q, k, rerank)

    @app.post("/search")
    async def search_sound(self, request: Request, k: K = 10, rerank: RERANK = 50):
        """More like an uploaded sound (multipart field `audio`; `k` and `rerank` as query or
        form fields): refused with 413 before the body is read when it says it is over the cap,
        and after reading at most one byte past it when it does not."""
        cap = UPLOAD_LIMITS.max_bytes
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > cap + FORM_OVERHEAD:
            return problem(413, f"audio: the upload is over the {cap}-byte cap", "invalid")
        try:
            form = await request.form(max_files=1, max_fields=4)
        except Exception as error:  # not multipart, malformed, too many parts
            return problem(
                422, f"audio: send the sound as multipart/form-data ({error})", "invalid"
            )
        upload = form.get("audio")
        if not isinstance(upload, UploadFile):
            return problem(
                422, "audio: attach the sound file as the multipart field 'audio'", "invalid"
            )
        try:
            k = _bounded(form.get("k"), k, 1, MAX_K, "k")
            rerank = _bounded(form.get("rerank"), rerank, 0, MAX_RERANK, "rerank")
        except ValueError as error:
            return problem(422, str(error), "invalid")
        data = await upload.read(cap + 1)
        if len(data) > cap:
            return problem(413, f"audio: the upload is over the {cap}-byte cap", "invalid")
        return await self.flow.sound(data, upload.filename or "upload", k, rerank)

    async def _locate(self, clip_id: str) -> str | JSONResponse:
        """The clip's audio URI (`Retriever.locate`), or the answer that says why there is none."""
        try:
            uri = await within(self.retriever.locate.remote(clip_id), self.deadlines.stage1_s)
        except StoreUnavailable as error:
            return store_unavailable(error)
        except ValueError as error:
            return problem(422, f"clip_id: {error}", "invalid")
        except (BackPressureError, TimeoutError) as error:
            return busy("locate", error)
        if uri is None:  # unknown, or a row pointing outside the roots: the same answer
            return problem(404, f"no audio for clip {clip_id!r}", "not_found")
        return uri

    @app.get("/audio/{clip_id}")
    async def audio(self, clip_id: str):
        """The clip's bytes, read in chunks from its indexed URI with the storage options the
        service was given, when that URI lies under the roots the collection was indexed from
        (``store.roots``); an audio type from the allow-list, never sniffed by the browser."""
        uri = await self._locate(clip_id)
        if isinstance(uri, Response):
            return uri
        fs, path = _audio_file(uri, self.storage_options)
        try:
            size = await asyncio.to_thread(fs.size, path)
        except FileNotFoundError:
            return _gone(clip_id)
        return StreamingResponse(
            _chunks(fs, path),
            media_type=media_type(uri),
            headers={"Content-Length": str(size), "X-Content-Type-Options": "nosniff"},
        )

    @app.get("/spectrogram/{clip_id}")
    async def spectrogram(self, clip_id: str):
        """A PNG of the clip's log-mel spectrogram (`audio.spectrogram`), cacheable: a clip's
        audio does not change under its id."""
        uri = await self._locate(clip_id)
        if isinstance(uri, Response):
            return uri
        try:
            picture = await asyncio.to_thread(self._draw, uri)
        except FileNotFoundError:
            return _gone(clip_id)
        except AudioError as error:
            return problem(422, f"clip {clip_id!r} cannot be drawn: {error.reason}", "invalid")
        return Response(picture, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    def _draw(self, uri: str) -> bytes:
        fs, path = _audio_file(uri, self.storage_options)
        with fs.open(path, "rb") as f:
            return spectrogram_png(decode(f.read(), uri, SPECTROGRAM_RATE))

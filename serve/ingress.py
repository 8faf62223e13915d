"""Deployment: the HTTP face of the service (FastAPI), and its query encoder. `/search` and
`/health` go to `serve.flow.SearchFlow` (encode here, then the reranker, which fetches its own
candidates; bounded waits; degraded answers); `/audio/{clip_id}` streams a clip from wherever the index says it
lives; `/` is the search page. A malformed request is a 422 whose `detail` is one readable
sentence.
"""
# No `from __future__ import annotations` here: FastAPI must see the Query(...) annotations
# themselves, and a replica cannot resolve them from strings.

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import fsspec
from fastapi import FastAPI, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from ray import serve
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle

from coattn_dist.audio.paths import local_path
from coattn_dist.model import RetrievalModel
from coattn_dist.query.encode import QueryEncoder
from coattn_dist.store import StoreUnavailable
from coattn_dist.store.roots import media_type
from serve.flow import Deadlines, SearchFlow, busy, problem, store_unavailable, within
from serve.handles import as_configured

MAX_QUERY_CHARS = 500
MAX_K = 100
MAX_RERANK = 500
CHUNK_BYTES = 1 << 16
PAGE = Path(__file__).with_name("page.html")

app = FastAPI(
    title="coattn search", description="Language-based audio retrieval with co-attention reranking."
)


@app.exception_handler(RequestValidationError)
async def _invalid(_request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 lists pydantic errors; ours says what is wrong in one line."""
    detail = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in error.errors())
    return problem(422, detail, "invalid")


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


@serve.deployment(ray_actor_options={"num_cpus": 0.5})
@serve.ingress(app)
class Ingress:
    def __init__(
        self,
        checkpoint: str,
        retriever: DeploymentHandle,
        reranker: DeploymentHandle,
        storage_options: dict,
        deadlines: dict | None = None,
    ):
        model = RetrievalModel.load(checkpoint, storage_options=storage_options)
        encode = QueryEncoder.for_model(model)  # ONNX Runtime on the replica's CPU
        encode(["a dog barks while rain falls"])  # warm, before the replica reports ready
        self.retriever, reranker = map(as_configured, (retriever, reranker))
        self.storage_options = storage_options
        self.deadlines = Deadlines(**(deadlines or {}))
        self.flow = SearchFlow(encode, self.retriever, reranker, self.deadlines)
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
            str,
            Query(min_length=1, max_length=MAX_QUERY_CHARS, description="what to find, in words"),
        ],
        k: Annotated[int, Query(ge=1, le=MAX_K, description="results to return")] = 10,
        rerank: Annotated[
            int,
            Query(
                ge=0,
                le=MAX_RERANK,
                description="stage-1 candidates "
                "the co-attention cascade rescores (0: stage 1 only)",
            ),
        ] = 50,
    ) -> JSONResponse:
        if not q.strip():
            return problem(422, "q: the query needs some text, not only spaces", "invalid")
        return await self.flow.search(q, k, rerank)

    @app.get("/audio/{clip_id}")
    async def audio(self, clip_id: str):
        """The clip's bytes, read in chunks from its indexed URI with the storage options the
        service was given, when that URI lies under the roots the collection was indexed from
        (``store.roots``); an audio type from the allow-list, never sniffed by the browser."""
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
        fs, path = _audio_file(uri, self.storage_options)
        try:
            size = await asyncio.to_thread(fs.size, path)
        except FileNotFoundError:
            return problem(404, f"clip {clip_id!r} is indexed but its audio is gone", "not_found")
        return StreamingResponse(
            _chunks(fs, path),
            media_type=media_type(uri),
            headers={"Content-Length": str(size), "X-Content-Type-Options": "nosniff"},
        )

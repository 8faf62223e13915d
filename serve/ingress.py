"""Deployment: the HTTP face of the service (FastAPI). `/search` chains the other deployments
through their handles (encode -> retrieve -> rerank), timing each stage; `/audio/{clip_id}`
streams a clip from wherever the index says it lives; `/` is the search page; `/health`.

Errors: a malformed request is a 422 whose `detail` is one readable sentence; Milvus down is a
503 (with Retry-After) and the next request after it is back succeeds, no restart needed.
"""
# No `from __future__ import annotations` here: FastAPI must see the Query(...) annotations
# themselves, and a replica cannot resolve them from strings.

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import fsspec
from fastapi import FastAPI, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from ray import serve
from ray.serve._private import constants as serve_constants
from ray.serve.handle import DeploymentHandle

from coattn_dist.audio.paths import local_path
from coattn_dist.query.answer import Answer, Clock
from coattn_dist.store import StoreUnavailable
from coattn_dist.store.fingerprint import CheckpointMismatch
from coattn_dist.store.roots import media_type
from serve.metrics import service_metrics

MAX_QUERY_CHARS = 500
MAX_K = 100
MAX_RERANK = 500
CHUNK_BYTES = 1 << 16
PAGE = Path(__file__).with_name("page.html")

app = FastAPI(
    title="coattn search", description="Language-based audio retrieval with co-attention reranking."
)


def _problem(status: int, detail: str, outcome: str, **headers: str) -> JSONResponse:
    service_metrics().refused(outcome)
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


@app.exception_handler(RequestValidationError)
async def _invalid(_request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 lists pydantic errors; ours says what is wrong in one line."""
    detail = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in error.errors())
    return _problem(422, detail, "invalid")


log = logging.getLogger("coattn.serve")


def _unavailable(error: StoreUnavailable) -> JSONResponse:
    """A 503 that says what failed, not where: the store's address stays in the server log."""
    log.warning("vector store unavailable: %s", error)
    return _problem(
        503, "the vector store is unavailable, retry shortly", "unavailable", **{"Retry-After": "5"}
    )


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


@serve.deployment(ray_actor_options={"num_cpus": 0.25})
@serve.ingress(app)
class Ingress:
    def __init__(
        self,
        encoder: DeploymentHandle,
        retriever: DeploymentHandle,
        reranker: DeploymentHandle,
        storage_options: dict,
    ):
        # A handle keeps the options of the process that built the app, which may have imported
        # Serve before the fast path was set (runtime.SERVE_FAST_PATH): this replica's own setting
        # decides whether calls go by value over the replicas' gRPC servers. (Read here, not at
        # import: this class travels by value, with the driver's module globals.)
        by_reference = not serve_constants.RAY_SERVE_USE_GRPC_BY_DEFAULT
        self.encoder, self.retriever, self.reranker = (
            h.options(_by_reference=by_reference) for h in (encoder, retriever, reranker)
        )
        self.storage_options = storage_options
        self.page = PAGE.read_text()

    @app.get("/", response_class=HTMLResponse)
    async def page(self) -> str:
        return self.page

    @app.get("/health")
    async def health(self) -> JSONResponse:
        ok = await self.retriever.available.remote()
        return JSONResponse(
            {"status": "ok" if ok else "degraded", "milvus": "ok" if ok else "unavailable"},
            status_code=200 if ok else 503,
        )

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
            return _problem(422, "q: the query needs some text, not only spaces", "invalid")
        clock = Clock()
        tokens, vector = await self.encoder.remote(q)
        clock.lap("encode")
        try:
            hits = await self.retriever.search.remote(vector, k, rerank)
        except StoreUnavailable as error:
            return _unavailable(error)
        except CheckpointMismatch as error:  # an operator's mistake: say it, rank nothing
            return _problem(500, str(error), "misconfigured")
        clock.lap("retrieve")
        results = await self.reranker.remote((tokens, hits, k))
        clock.lap("rerank")
        service_metrics().answered(clock.laps)
        return JSONResponse(Answer(q, results, clock.laps).to_dict())

    @app.get("/audio/{clip_id}")
    async def audio(self, clip_id: str):
        """The clip's bytes, read in chunks from its indexed URI with the storage options the
        service was given, when that URI lies under the roots the collection was indexed from
        (``store.roots``); an audio type from the allow-list, never sniffed by the browser."""
        try:
            uri = await self.retriever.locate.remote(clip_id)
        except StoreUnavailable as error:
            return _unavailable(error)
        except ValueError as error:
            return _problem(422, f"clip_id: {error}", "invalid")
        if uri is None:  # unknown, or a row pointing outside the roots: the same answer
            return _problem(404, f"no audio for clip {clip_id!r}", "not_found")
        fs, path = _audio_file(uri, self.storage_options)
        try:
            size = await asyncio.to_thread(fs.size, path)
        except FileNotFoundError:
            return _problem(404, f"clip {clip_id!r} is indexed but its audio is gone", "not_found")
        return StreamingResponse(
            _chunks(fs, path),
            media_type=media_type(uri),
            headers={"Content-Length": str(size), "X-Content-Type-Options": "nosniff"},
        )

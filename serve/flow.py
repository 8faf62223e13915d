"""How the ingress answers `/search` and `/health`: the query encoded in the ingress' own process,
then the other deployments through their handles; apart from HTTP routing so that a test can drive
it with recording handles. Every wait bounded (`Deadlines`), every failure mapped to its answer.

- a full queue anywhere, the encoder past its deadline: 503 with Retry-After, at once;
- Milvus down: 503 (with Retry-After); the next request after it is back succeeds;
- the reranker dead, erroring, overloaded or past its deadline: stage 1's ranking, marked
  `"degraded": "rerank_unavailable"`, never a 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from fastapi.responses import JSONResponse
from ray.serve.handle import DeploymentHandle, DeploymentResponse

from coattn_dist.audio import AudioError, TooLargeError
from coattn_dist.data.scenes import several_events
from coattn_dist.query.answer import Answer, Clock, ranked_by_stage1
from coattn_dist.store import StoreUnavailable
from coattn_dist.store.fingerprint import CheckpointMismatch
from serve.metrics import service_metrics

RETRY_AFTER_S = "1"  # an overloaded or restarting stage is back within about a second
RERANK_UNAVAILABLE = "rerank_unavailable"
log = logging.getLogger("coattn.serve")


@dataclass(frozen=True)
class Deadlines:
    """Seconds the ingress waits for each stage (the app's `deadlines` argument overrides them);
    no stage waits longer than what is left of `search_s`."""

    encode_s: float = 2.0  # the ingress' own encoder; then 503
    rank_s: float = 2.0  # retrieve + rerank; then stage 1 answers alone
    stage1_s: float = 2.0  # that stage-1 answer's own retrieve, and /audio's lookup; then 503
    health_s: float = 1.0  # a deployment slower than this to answer a ping is reported down
    search_s: float = 5.0  # the whole search
    # After the reranker fails (dead, erroring, late), stage 1 answers alone this long before the
    # reranker is asked again: a dead replica otherwise costs every request the whole rank_s.
    rerank_rest_s: float = 3.0
    sound_s: float = 10.0  # decoding and embedding an uploaded sound (on top of search_s)


async def within(response: DeploymentResponse, seconds: float):
    """The response's value, or TimeoutError after `seconds` (the request is then cancelled)."""

    async def value():
        return await response

    try:
        return await asyncio.wait_for(value(), max(seconds, 0.0))
    except TimeoutError:
        response.cancel()
        raise


def problem(status: int, detail: str, outcome: str, **headers: str) -> JSONResponse:
    service_metrics().refused(outcome)
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


def store_unavailable(error: StoreUnavailable) -> JSONResponse:
    """A 503 that says what failed, not where: the store's address stays in the server log."""
    log.warning("vector store unavailable: %s", error)
    return problem(
        503, "the vector store is unavailable, retry shortly", "unavailable", **{"Retry-After": "5"}
    )


def busy(stage: str, error: BaseException) -> JSONResponse:
    log.warning("%s could not answer: %r", stage, error)
    return problem(
        503,
        f"the service is busy ({stage}), retry shortly",
        "overloaded",
        **{"Retry-After": RETRY_AFTER_S},
    )


class SearchFlow:
    """encode (here: ONNX Runtime, ≈ 5 ms a query on one core, cheaper than a hop to another
    replica) -> the reranker, which fetches its own candidates from Milvus (their segment features
    reach no other replica) -> the top k; stage 1 alone for `rerank=0` and
    whenever the reranker cannot answer. `encode`: queries -> (token features, vectors), as
    `QueryEncoder`."""

    def __init__(
        self,
        encode: Callable,
        retriever: DeploymentHandle,
        reranker: DeploymentHandle,
        deadlines: Deadlines,
        encode_sound: Callable | None = None,
    ):
        self.encode, self.retriever, self.reranker = encode, retriever, reranker
        self.deadlines = deadlines
        self.encode_sound = encode_sound  # bytes, name -> (segments, vector): `SoundEncoder`
        self.rerank_rests_until = 0.0  # monotonic time; set by a reranker failure

    async def _encode(self, q: str, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        tokens, vectors = await asyncio.wait_for(asyncio.to_thread(self.encode, [q]), seconds)
        return tokens[0].cpu().numpy(), vectors[0]

    async def search(self, q: str, k: int, rerank: int) -> JSONResponse:
        clock, end = Clock(), time.monotonic() + self.deadlines.search_s
        left = lambda limit: min(limit, end - time.monotonic())  # noqa: E731
        try:
            tokens, vector = await self._encode(q, left(self.deadlines.encode_s))
        except TimeoutError as error:  # the ingress' own threads are all busy
            return busy("encode", error)
        clock.lap("encode")
        degraded = None
        if rerank and time.monotonic() < self.rerank_rests_until:
            degraded = RERANK_UNAVAILABLE  # it failed a moment ago: do not wait on it again
        try:
            if rerank and not degraded:
                ranked = self.reranker.search.remote(tokens, vector, k, rerank, several_events(q))
                try:
                    results, laps = await within(ranked, left(self.deadlines.rank_s))
                except (StoreUnavailable, CheckpointMismatch):
                    raise
                except Exception as error:  # dead, erroring, overloaded, late: stage 1 answers
                    log.warning("reranker unavailable, answering by stage 1: %r", error)
                    degraded = RERANK_UNAVAILABLE
                    self.rerank_rests_until = time.monotonic() + self.deadlines.rerank_rest_s
                clock.lap("rerank")
                if not degraded:  # the reranker's own split of its time; the rest is transport
                    clock.laps["retrieve"] = laps["retrieve"]
                    clock.laps["rerank"] = round(clock.laps["rerank"] - laps["retrieve"], 2)
            if not rerank or degraded:
                hits = self.retriever.search.remote(vector, k, 0)
                try:
                    results = ranked_by_stage1(await within(hits, left(self.deadlines.stage1_s)), k)
                except (StoreUnavailable, CheckpointMismatch):
                    raise
                except Exception as error:
                    return busy("retrieve", error)
                clock.lap("retrieve")
                clock.laps.setdefault("rerank", 0.0)
        except StoreUnavailable as error:
            return store_unavailable(error)
        except CheckpointMismatch as error:  # an operator's mistake: say it, rank nothing
            return problem(500, str(error), "misconfigured")
        service_metrics().answered(clock.laps, degraded)
        return JSONResponse(Answer(q, results, clock.laps, degraded).to_dict())

    async def like(self, clip_id: str, k: int, depth: int) -> JSONResponse:
        """More like an indexed clip: the retriever ranks it end to end (`query.like`)."""
        clock = Clock()
        ranked = self.retriever.like.remote(clip_id, k, depth)
        return await self._by_sound({"like": clip_id}, ranked, clock, self.deadlines.search_s)

    async def sound(self, data: bytes, name: str, k: int, depth: int) -> JSONResponse:
        """More like an uploaded sound: decoded and embedded here, ranked by the retriever.
        413 over the size cap, 422 with the failure kind for anything that is not a whole
        sound; nothing is stored."""
        clock = Clock()
        try:
            segments, vector = await asyncio.wait_for(
                asyncio.to_thread(self.encode_sound, data, name), self.deadlines.sound_s
            )
        except AudioError as error:
            status = 413 if isinstance(error, TooLargeError) else 422
            return problem(status, f"audio: {error.reason} ({error.kind})", "invalid")
        except TimeoutError as error:
            return busy("encode", error)
        clock.lap("encode")
        ranked = self.retriever.search_sound.remote(segments, vector, k, depth)
        return await self._by_sound({"audio": name}, ranked, clock, self.deadlines.search_s)

    async def _by_sound(
        self, query: dict, ranked: DeploymentResponse, clock: Clock, seconds: float
    ) -> JSONResponse:
        try:
            results = await within(ranked, seconds)
        except StoreUnavailable as error:
            return store_unavailable(error)
        except CheckpointMismatch as error:
            return problem(500, str(error), "misconfigured")
        except ValueError as error:  # a malformed clip id
            return problem(422, f"like: {error}", "invalid")
        except Exception as error:  # overloaded, late, dead
            return busy("retrieve", error)
        if results is None:
            return problem(404, f"no clip {query['like']!r} in the collection", "not_found")
        clock.lap("retrieve")
        service_metrics().answered(clock.laps, None)
        return JSONResponse(Answer(query, results, clock.laps).to_dict())

    async def health(self) -> JSONResponse:
        """Each deployment behind the ingress answers a ping within `health_s`, and Milvus is
        reachable: "ok" (200); only the reranker down: "degraded" (200: searches answer, by stage
        1); else 503."""
        pings = {
            "Retriever": self.retriever.available.remote(),
            "Reranker": self.reranker.ping.remote(),
        }
        answers = await asyncio.gather(
            *(within(r, self.deadlines.health_s) for r in pings.values()), return_exceptions=True
        )
        up = {name: not isinstance(a, BaseException) for name, a in zip(pings, answers)}
        milvus = up["Retriever"] and answers[0] is True
        if all(up.values()) and milvus:
            status, code = "ok", 200
        elif milvus:  # only the reranker is down: stage 1 answers
            status, code = "degraded", 200
        else:
            status, code = "unavailable", 503
        return JSONResponse(
            {
                "status": status,
                "milvus": "ok" if milvus else "unavailable",
                "deployments": {n: "ok" if ok else "unavailable" for n, ok in up.items()},
            },
            status_code=code,
        )

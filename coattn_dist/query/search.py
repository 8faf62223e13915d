"""`encode -> retrieve -> rerank` in one process: what `coattn search` runs. The service
(`serve/`) runs the same three stages in three deployments, so both rank alike."""

from __future__ import annotations

from coattn_dist.model import RetrievalModel
from coattn_dist.query.answer import Answer, Clock, Result
from coattn_dist.query.embed import model_device
from coattn_dist.query.encode import QueryEncoder
from coattn_dist.query.like import AudioRanking, like_depth, rank_like
from coattn_dist.query.rerank import rerank_hits, several_flags
from coattn_dist.query.retrieve import retrieve
from coattn_dist.query.sound import SoundEncoder
from coattn_dist.store import ClipStore
from coattn_dist.store.fingerprint import check_fingerprint


def check_request(queries: list[str], k: int, rerank_depth: int) -> None:
    if not queries or any(not q.strip() for q in queries):
        raise ValueError("every query needs some text")
    if k < 1 or rerank_depth < 0:
        raise ValueError(f"need k >= 1 and rerank >= 0, got k={k}, rerank={rerank_depth}")


class Searcher:
    def __init__(self, encoder: QueryEncoder, store: ClipStore):
        self.encode, self.model, self.store = encoder, encoder.model, store
        self._sound: SoundEncoder | None = None  # loaded by the first search by sound

    @classmethod
    def open(
        cls,
        checkpoint: str,
        milvus_uri: str,
        collection: str,
        storage_options: dict | None = None,
        device: str = "cpu",
        query_encoder: str = "onnx",
    ) -> Searcher:
        """`query_encoder`: the runtime that encodes the words (`QueryEncoder.for_model`)."""
        model = RetrievalModel.load(
            checkpoint, storage_options=storage_options, map_location=device
        )
        store = ClipStore(milvus_uri, collection, model.cfg.model.dim)
        try:
            if not store.exists():
                raise ValueError(
                    f"no collection {collection!r} at {milvus_uri}: index it first (coattn index)"
                )
            check_fingerprint(store.properties(), model.fingerprint(), collection)
        except Exception:
            store.close()
            raise
        return cls(QueryEncoder.for_model(model, device, query_encoder), store)

    def close(self) -> None:
        self.store.close()

    def search(self, query: str, k: int = 10, rerank_depth: int = 50) -> Answer:
        return self.search_batch([query], k, rerank_depth)[0]

    def search_batch(self, queries: list[str], k: int = 10, rerank_depth: int = 50) -> list[Answer]:
        """Top-`k` clips per query: stage 1 retrieves max(k, `rerank_depth`) candidates from
        Milvus with their segment features, the co-attention cascade rescores them (skipped when
        `rerank_depth` is 0), and the fused score ranks them."""
        check_request(queries, k, rerank_depth)
        clock = Clock()
        tokens, vectors = self.encode(queries)
        clock.lap("encode")
        hits = retrieve(self.store, vectors, k, rerank_depth)
        clock.lap("retrieve")
        ranked = rerank_hits(self.model, tokens, hits, [k] * len(queries), several_flags(queries))
        clock.lap("rerank")
        return [Answer(q, r, dict(clock.laps)) for q, r in zip(queries, ranked)]

    def ranking(self, rerank_depth: int) -> AudioRanking:
        return AudioRanking(self.model.cfg.model.like_fusion, rerank_depth)

    def like(self, clip_id: str, k: int = 10, rerank_depth: int = 50) -> Answer:
        """The clips nearest to an indexed one, itself excluded (`query.like`); KeyError for an
        id the collection does not hold."""
        check_request(["like"], k, rerank_depth)
        clock = Clock()
        rescored = like_depth(self.ranking(rerank_depth)) > 0
        row = self.store.fetch([clip_id], rescored, with_vectors=True).get(clip_id)
        if row is None:
            raise KeyError(f"no clip {clip_id!r} in collection {self.store.collection!r}")
        results = self._like(row.segments, row.vector, k, rerank_depth, clock, exclude=clip_id)
        return Answer({"like": clip_id}, results, dict(clock.laps))

    def search_sound(self, data: bytes, name: str, k: int = 10, rerank_depth: int = 50) -> Answer:
        """The clips nearest to a sound file's bytes (`query.sound`): nothing is stored."""
        check_request(["sound"], k, rerank_depth)
        clock = Clock()
        if self._sound is None:
            self._sound = SoundEncoder(self.model, model_device(self.model))
        segments, vector = self._sound(data, name)
        clock.lap("encode")
        results = self._like(segments, vector, k, rerank_depth, clock)
        return Answer({"audio": name}, results, dict(clock.laps))

    def _like(self, segments, vector, k, rerank_depth, clock, exclude=None) -> list[Result]:
        ranking = self.ranking(rerank_depth)
        hits = retrieve(self.store, vector[None], k + 1, like_depth(ranking))[0]
        clock.lap("retrieve")
        results = rank_like(segments, hits, k, ranking, exclude)
        clock.lap("rerank")
        return results

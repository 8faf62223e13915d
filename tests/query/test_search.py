"""Searcher on a real Milvus Lite ranks a collection as `score_matrix` ranks the same features:
the service's path and evaluation's meet in the one `rerank`."""

import pytest
import torch

from coattn_dist.audio import EmptyFileError, NotAudioError, TruncatedAudioError
from coattn_dist.model import RetrievalModel
from coattn_dist.query.embed import embed_clips, stage1_matrix
from coattn_dist.query.encode import QueryEncoder
from coattn_dist.query.like import AudioRanking
from coattn_dist.query.rerank import LIFT, like_matrix, rerank_matrix, score_matrix
from coattn_dist.query.search import Searcher
from coattn_dist.store import ClipStore


@pytest.fixture(scope="module")
def searcher(small_features, trained_checkpoint, text_encoder, tmp_path_factory):
    """The 12 `small_features` clips upserted straight into a Milvus Lite file."""
    model = RetrievalModel.load(trained_checkpoint)
    vectors = embed_clips(model, small_features.segments).numpy()
    store = ClipStore(
        str(tmp_path_factory.mktemp("search") / "milvus.db"), "clips", model.cfg.model.dim
    )
    store.create_if_absent()
    store.upsert(
        [
            {"clip_id": c, "vector": v, "uri": u, "label": "", "segments": s.numpy()}
            for c, v, u, s in zip(
                small_features.clip_ids, vectors, small_features.uris, small_features.segments
            )
        ]
    )
    store.flush()
    yield Searcher(QueryEncoder(model, text_encoder), store)
    store.close()


@pytest.mark.parametrize("depth", [0, 5, 12])
def test_ranks_and_scores_match_score_matrix(searcher, small_features, depth):
    texts, tokens, segments = (
        small_features.texts[::7],
        small_features.tokens[::7],
        small_features.segments,
    )
    expected = score_matrix(searcher.model, tokens, segments, depth=depth)
    stage1 = stage1_matrix(searcher.model, tokens, segments)
    # what the service reranks: the features as Milvus stores them (float16), widened
    stored = rerank_matrix(
        searcher.model, stage1, tokens, [s.half().float() for s in segments], depth
    )
    lift = LIFT if depth else 0.0
    for row, row1, row16, answer in zip(
        expected, stage1, stored, searcher.search_batch(texts, 4, depth)
    ):
        top = row.topk(4).indices.tolist()
        assert [r.clip_id for r in answer.results] == [small_features.clip_ids[c] for c in top]
        scores = torch.tensor([r.score for r in answer.results])
        torch.testing.assert_close(scores, row16[top] - lift, atol=1e-4, rtol=0)
        torch.testing.assert_close(scores, row[top] - lift, atol=5e-3, rtol=0)  # float16 storage
        torch.testing.assert_close(
            torch.tensor([r.stage1_score for r in answer.results]), row1[top], atol=1e-5, rtol=0
        )
        assert set(answer.timings_ms) == {"encode", "retrieve", "rerank", "total"}


def test_a_batch_ranks_each_query_as_it_ranks_alone(searcher, small_features):
    """The cascade scores a batch's queries in one pass (as the service's batches do): padding to
    the batch's longest query must not change any query's ranking."""
    texts = small_features.texts[::5]
    for text, answer in zip(texts, searcher.search_batch(texts, 5, 12)):
        alone = searcher.search(text, k=5, rerank_depth=12)
        assert [r.clip_id for r in answer.results] == [r.clip_id for r in alone.results]
        torch.testing.assert_close(
            torch.tensor([r.score for r in answer.results]),
            torch.tensor([r.score for r in alone.results]),
            atol=1e-5,
            rtol=0,
        )


def test_finds_the_described_sound(searcher, small_features):
    answer = searcher.search("a dog barks", k=2, rerank_depth=12)
    dogs = {
        c
        for c, row in zip(small_features.clip_ids, small_features.relevant.T)
        if row[small_features.texts.index("a dog barks")]
    }
    assert {r.clip_id for r in answer.results} == dogs
    assert answer.query == "a dog barks"


def test_rejects_empty_queries_and_bad_depths(searcher):
    with pytest.raises(ValueError, match="needs some text"):
        searcher.search("   ")
    with pytest.raises(ValueError, match="k >= 1"):
        searcher.search("a dog barks", k=0)


def test_a_missing_collection_is_a_clear_error(trained_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="no collection 'nothing' .* index it first"):
        Searcher.open(trained_checkpoint, str(tmp_path / "milvus.db"), "nothing")


@pytest.mark.parametrize("weight", [1.0, 0.3])
def test_more_like_a_clip_ranks_as_like_matrix_and_never_returns_the_clip(
    searcher, small_features, weight
):
    searcher.model.cfg.model.like_fusion = weight
    try:
        stored = [s.half().float() for s in small_features.segments]  # as Milvus holds them
        for q in (0, 5, 11):
            clip_id = small_features.clip_ids[q]
            answer = searcher.like(clip_id, k=5, rerank_depth=12)
            expected = like_matrix(searcher.model, stored, [q], AudioRanking(weight, 12))[0]
            top = expected.topk(5).indices.tolist()
            assert [r.clip_id for r in answer.results] == [small_features.clip_ids[c] for c in top]
            assert clip_id not in {r.clip_id for r in answer.results}
            assert answer.query == {"like": clip_id}
    finally:
        searcher.model.cfg.model.like_fusion = 1.0


def test_an_uploaded_sound_finds_its_indexed_copy_first(searcher, small_features):
    for q in (2, 9):
        data = open(small_features.uris[q], "rb").read()
        answer = searcher.search_sound(data, "upload.flac", k=3, rerank_depth=12)
        assert answer.results[0].clip_id == small_features.clip_ids[q]
        assert answer.results[0].stage1_score == pytest.approx(1.0, abs=1e-3)
        assert answer.query == {"audio": "upload.flac"}
        assert set(answer.timings_ms) == {"encode", "retrieve", "rerank", "total"}


def test_bad_sounds_and_unknown_clips_are_clear_errors(searcher, small_features):
    with pytest.raises(KeyError, match="no clip 'nope'"):
        searcher.like("nope")
    with pytest.raises(ValueError, match="invalid clip_id"):
        searcher.like('a"b')
    with pytest.raises(EmptyFileError):
        searcher.search_sound(b"", "empty.wav")
    with pytest.raises(NotAudioError):
        searcher.search_sound(b"<html>not a sound</html>" * 10, "page.wav")
    data = open(small_features.uris[0], "rb").read()
    with pytest.raises(TruncatedAudioError):
        searcher.search_sound(data[: len(data) // 2], "cut.flac")

"""ClipEmbedder: the same vectors as the library's own path, failed rows passed through."""

import numpy as np
import torch

from coattn_dist.audio import load
from coattn_dist.config import AudioEncoderConfig
from coattn_dist.model import RetrievalModel
from coattn_dist.pipeline.embed import ClipEmbedder, encoder_sample_rate
from coattn_dist.query.embed import embed_clips


def test_vectors_and_segments_match_embed_clips(sample_dir, random_checkpoint, audio_encoder):
    files = sorted((sample_dir / "audio").glob("*.flac"))[:2]
    waves = [load(str(f), 44100) for f in files]
    batch = {
        "uri": np.array(["a", "b", "bad"], dtype=object),
        "wave": np.fromiter([waves[0], np.zeros(0, np.float32), waves[1]], dtype=object),
        "kind": np.array(["", "empty", ""], dtype=object),
    }

    out = ClipEmbedder(random_checkpoint, device="cpu")(batch)

    model = RetrievalModel.load(random_checkpoint)
    expected = embed_clips(model, audio_encoder(waves)).numpy()
    assert "wave" not in out and out["vector"].shape == (3, model.cfg.model.dim)
    np.testing.assert_allclose(out["vector"][[0, 2]], expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out["vector"][[0, 2]], axis=1), 1.0, atol=1e-5)
    assert not out["vector"][1].any() and out["segments"][1].shape == (0, 512)
    assert out["segments"][0].shape == (3, 512)  # 5 s at a 1 s hop of 2.3 s blocks
    torch.testing.assert_close(torch.from_numpy(out["segments"][2]), audio_encoder([waves[1]])[0])


def test_an_embedder_runs_the_torch_threads_its_layout_gives_it(random_checkpoint):
    before = torch.get_num_threads()
    try:
        ClipEmbedder(random_checkpoint, device="cpu", threads=2)
        assert torch.get_num_threads() == 2  # the actor's process: Ray would have given it one
    finally:
        torch.set_num_threads(before)


def test_sample_rate_is_known_without_loading_weights():
    assert encoder_sample_rate(AudioEncoderConfig()) == 44100

"""The aisfx CNN loaded offline from its packaged weights, against the package's own pipeline."""

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from coattn_dist.audio import load
from coattn_dist.encoders.aisfx import (
    BLOCK_FRAMES,
    SAMPLE_RATE,
    AisfxEncoder,
    LogMel,
    converted_weights,
    length_buckets,
    resolve_precision,
)


def test_weights_convert_once_to_safetensors(tmp_path):
    path = converted_weights(tmp_path)
    assert path.suffix == ".safetensors" and path.exists()
    mtime = path.stat().st_mtime_ns
    assert converted_weights(tmp_path) == path and path.stat().st_mtime_ns == mtime


def test_matches_the_packages_librosa_pipeline(sample_dir, audio_encoder):
    """Front end and CNN reproduce aisfx's own (slow, librosa) embeddings of a real clip."""
    from aisfx.preprocessing import blocking, spectrogram_normalize
    from aisfx.spectrogram.spectrogram_librosa import compute_spectrogram

    clip = str(sample_dir / "audio" / "4-102844-A-49.flac")
    ref_spec = spectrogram_normalize(
        compute_spectrogram(clip, 44100.0, 2048, 1024, 96, 0.0, 22050.0).T
    )
    wave = load(clip, SAMPLE_RATE)
    ours = LogMel()(torch.tensor(wave)[None])[0].numpy()
    np.testing.assert_allclose(ours, ref_spec, atol=1e-4)

    # the package's default hop, in the package's precision
    encoder = AisfxEncoder(segment_hop_s=50 * 1024 / SAMPLE_RATE, precision="fp32")
    with torch.no_grad():
        ref = encoder.cnn(
            torch.tensor(blocking(ref_spec, BLOCK_FRAMES, 50, True), dtype=torch.float32)
        )
    got = encoder([wave])[0]
    assert got.shape == ref.shape == (3, 512)
    assert F.cosine_similarity(got, ref).min() > 0.9999


@pytest.mark.parametrize("seconds, segments", [(0.2, 1), (2.0, 1), (5.0, 3), (30.0, 28)])
def test_segments_follow_the_hop_and_short_clips_are_padded(audio_encoder, seconds, segments):
    wave = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * SAMPLE_RATE))).astype(
        np.float32
    )
    (out,) = audio_encoder([wave])
    assert out.shape == (segments, 512) and torch.isfinite(out).all()


def test_batching_does_not_change_embeddings(sample_dir, audio_encoder):
    waves = [load(str(p), SAMPLE_RATE) for p in sorted((sample_dir / "audio").glob("*.flac"))[:3]]
    together = audio_encoder(waves + [waves[0][: SAMPLE_RATE // 2]])
    for w, t in zip(waves, together):
        torch.testing.assert_close(audio_encoder([w])[0], t, atol=1e-4, rtol=1e-4)


def test_batched_front_end_equals_the_per_clip_one(sample_dir, audio_encoder):
    """Clips of many lengths (shorter than a block, odd sample counts, two buckets, one clip
    over the bucket budget) through the padded STFT: each clip's log-mel and embeddings as if
    it ran alone."""
    waves = [load(str(p), SAMPLE_RATE) for p in sorted((sample_dir / "audio").glob("*.flac"))[:4]]
    cuts = [waves[0][:1000], waves[1][: SAMPLE_RATE + 7], waves[2], waves[3][:-333]]
    cuts.append(np.concatenate(waves[:3]))  # 15 s: past the budget below, a bucket of its own
    encoder = AisfxEncoder(bucket_samples=3 * len(waves[2]))
    alone = [audio_encoder.frontend(torch.as_tensor(w)[None])[0] for w in cuts]
    batched = encoder.spectrograms(cuts)
    for a, b in zip(alone, batched):
        assert a.shape == b.shape
        assert (a - b).abs().max() <= 1e-4
    for a, b in zip(encoder(cuts), [audio_encoder([w])[0] for w in cuts]):
        assert F.cosine_similarity(a, b).min() >= 0.9999


def test_length_buckets_bound_padding_and_size():
    lengths = [100, 5000, 120, 110, 4900, 90000, 5100]
    buckets = length_buckets(lengths, budget=20000)
    assert sorted(i for b in buckets for i in b) == list(range(len(lengths)))
    for b in buckets:
        sizes = [lengths[i] for i in b]
        assert max(sizes) <= 1.25 * min(sizes)
        assert max(sizes) * len(b) <= 20000 or len(b) == 1
    assert [lengths[i] for i in buckets[-1]] == [90000]  # over the budget: alone


def test_same_class_clips_are_closer_than_different_classes(small_features):
    """The pretrained embeddings carry class information before any training."""
    f = small_features
    rel = f.relevant.float()
    same = (rel.T @ rel) > 0  # clips of one class share its captions
    emb = F.normalize(torch.stack([s.mean(0) for s in f.segments]), dim=-1)
    sim = emb @ emb.T
    off_diag = ~torch.eye(len(f.segments), dtype=torch.bool)
    assert sim[same & off_diag].mean() > sim[~same].mean() + 0.05


def test_real_clip_read_with_soundfile_and_resampled(sample_dir, audio_encoder, tmp_path):
    """A 22.05 kHz stereo copy of a real clip embeds close to the original."""
    clip = sample_dir / "audio" / "4-102844-A-49.flac"
    wave = load(str(clip), SAMPLE_RATE)
    low = load(str(clip), 22050)
    sf.write(tmp_path / "stereo.wav", np.stack([low, low], axis=1), 22050)
    a, b = audio_encoder([wave, load(str(tmp_path / "stereo.wav"), SAMPLE_RATE)])
    assert F.cosine_similarity(a.mean(0), b.mean(0), dim=0) > 0.9


def test_bfloat16_keeps_every_embedding_within_cosine_0_9995(sample_dir):
    waves = [load(str(p), SAMPLE_RATE) for p in sorted((sample_dir / "audio").glob("*.flac"))[:6]]
    full, half = AisfxEncoder(precision="fp32"), AisfxEncoder(precision="bf16")
    for a, b in zip(full(waves), half(waves)):
        assert b.dtype == torch.float32 and a.shape == b.shape
        assert F.cosine_similarity(a, b).min() >= 0.9995  # 0.9998 at worst on ESC-50's 414
    assert half.cache_key == full.cache_key + "-bf16"  # never read from float32's feature cache


def test_auto_precision_is_bfloat16_only_where_the_cpu_has_it():
    assert AisfxEncoder().precision == resolve_precision("auto", "cpu")
    assert resolve_precision("auto", "meta") == "fp32"  # no GPU or other device guesses bf16
    assert AisfxEncoder(precision="fp32").cache_key == "aisfx-hop43"
    with pytest.raises(ValueError, match="precision"):
        AisfxEncoder(precision="fp16")

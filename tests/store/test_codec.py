import numpy as np
import pytest

from coattn_dist.store.codec import (
    MAX_CHARS,
    MAX_SEGMENTS,
    decode_segments,
    encode_segments,
    encoded_length,
    pool_segments,
)

rng = np.random.default_rng(0)


def test_round_trip_keeps_float16_precision_and_shape():
    x = rng.standard_normal((5, 512)).astype(np.float32)
    text = encode_segments(x)
    assert text.startswith("5,512:")
    y = decode_segments(text)
    assert y.dtype == np.float16 and y.shape == (5, 512)
    np.testing.assert_array_equal(y, x.astype(np.float16))
    np.testing.assert_allclose(y, x, rtol=2**-10, atol=1e-7)


def test_decode_needs_no_side_information():
    for shape in [(1, 3), (7, 64), (0, 512)]:
        x = rng.standard_normal(shape)
        assert decode_segments(encode_segments(x)).shape == shape


def test_long_sequences_are_average_pooled_to_max_segments():
    ramp = np.repeat(np.arange(100, dtype=np.float64)[:, None], 4, axis=1)
    pooled = pool_segments(ramp)
    assert pooled.shape == (MAX_SEGMENTS, 4)
    chunks = np.array_split(np.arange(100), MAX_SEGMENTS)
    np.testing.assert_allclose(pooled[:, 0], [c.mean() for c in chunks])
    assert np.all(np.diff(pooled[:, 0]) > 0)  # time order survives
    assert decode_segments(encode_segments(ramp)).shape == (MAX_SEGMENTS, 4)


def test_short_sequences_are_untouched():
    x = rng.standard_normal((MAX_SEGMENTS, 8))
    assert pool_segments(x) is x


@pytest.mark.parametrize("d", [1, 64, 256, 384, 512])
@pytest.mark.parametrize("n", [1, 3, 32, 33, 1000])
def test_every_width_up_to_512_fits_a_varchar(n, d):
    text = encode_segments(rng.standard_normal((n, d)))
    assert len(text) == encoded_length(min(n, MAX_SEGMENTS), d) <= MAX_CHARS


def test_byte_budget_for_512_wide_features():
    assert encoded_length(3, 512) == 4102
    assert encoded_length(32, 512) == 43699
    assert encoded_length(47, 512) <= MAX_CHARS < encoded_length(48, 512)


def test_too_wide_features_are_refused_with_the_limit():
    with pytest.raises(ValueError, match="at most 23 fit"):
        encode_segments(np.zeros((32, 1024)))
    assert decode_segments(encode_segments(np.zeros((23, 1024)))).shape == (23, 1024)


@pytest.mark.parametrize(
    "bad", [np.zeros(512), np.zeros((2, 3, 4)), np.full((2, 4), 1e6), np.full((2, 4), np.nan)]
)
def test_bad_input_is_refused(bad):
    with pytest.raises(ValueError):
        encode_segments(bad)

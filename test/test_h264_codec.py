"""Per-macroblock-QP H.264 on stock libx264: the decoder reads back the requested QP for every
macroblock that carries residual, the map changes the bitrate, and the decoder survives corrupt
and lost access units by waiting for the next keyframe."""
import numpy as np
import pytest

import av  # noqa: E402,F401
from how2compress_ros.codec import (DEFAULT_LEVEL_QPS, H264Decoder, H264DecodeError,  # noqa: E402
                                    H264EncoderConfig, MacroblockQPEncoder, levels_to_qp_map, mb_grid)
from how2compress_ros.codec.x264_ctypes import X264Error, X264Library  # noqa: E402

RNG = np.random.default_rng(0)


def noise(h, w):
    return RNG.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def smooth(h, w, t=0):
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx + 3 * t) % 256, (yy * 2) % 256, ((xx + yy) // 2) % 256], axis=-1)
    return img.astype(np.uint8)


@pytest.mark.parametrize("width,height,bframes", [(640, 360, 0), (320, 240, 2), (176, 144, 0)])
def test_decoded_qp_equals_requested_map_on_every_macroblock(width, height, bframes):
    cfg = H264EncoderConfig(width, height, gop=4, bframes=bframes, preset="veryfast")
    rows, cols = mb_grid(width, height)
    dec = H264Decoder(export_qp=True)
    maps, decoded = [], []
    with MacroblockQPEncoder(cfg) as enc:
        assert enc.grid == (rows, cols)
        units = []
        for _ in range(6):
            levels = RNG.integers(0, 5, size=(rows, cols))
            maps.append(levels_to_qp_map(levels))
            units += enc.encode(noise(height, width), maps[-1])
        units += enc.flush()
    assert len(units) == 6 and units[0].keyframe and units[4].keyframe
    for u in units:
        decoded += dec.decode(u.data, u.keyframe)
    decoded += dec.flush()
    assert len(decoded) == 6   # display order, as the maps were given
    for frame, qp in zip(decoded, maps):
        assert frame.qp_map.shape == (rows, cols)
        assert (frame.qp_map == qp).mean() == 1.0


def test_higher_emphasis_costs_more_bytes_and_gives_better_quality():
    w, h = 320, 192
    img = smooth(h, w) // 2 + noise(h, w) // 2
    rows, cols = mb_grid(w, h)
    sizes, errors = [], []
    for level in range(5):
        with MacroblockQPEncoder(H264EncoderConfig(w, h, gop=1)) as enc:
            (unit,) = enc.encode(img, levels_to_qp_map(np.full((rows, cols), level)))
        (frame,) = H264Decoder().decode(unit.data, unit.keyframe)
        sizes.append(len(unit.data))
        errors.append(np.abs(frame.rgb.astype(int) - img).mean())
    assert sizes == sorted(sizes) and sizes[-1] > 3 * sizes[0]
    assert errors == sorted(errors, reverse=True)


def test_region_map_saves_bytes_against_uniform_high_quality():
    w, h = 320, 192
    img = smooth(h, w) // 2 + noise(h, w) // 2
    rows, cols = mb_grid(w, h)
    roi = np.zeros((rows, cols), int)
    roi[rows // 4: 3 * rows // 4, cols // 4: 3 * cols // 4] = 4
    out = {}
    for name, levels in (("uniform", np.full((rows, cols), 4)), ("roi", roi)):
        with MacroblockQPEncoder(H264EncoderConfig(w, h, gop=1)) as enc:
            (unit,) = enc.encode(img, levels_to_qp_map(levels))
        out[name] = (unit, H264Decoder().decode(unit.data, True)[0].rgb)
    assert len(out["roi"][0].data) < 0.6 * len(out["uniform"][0].data)
    c = (slice(h // 4 + 8, 3 * h // 4 - 8), slice(w // 4 + 8, 3 * w // 4 - 8))
    err_roi = np.abs(out["roi"][1][c].astype(int) - img[c]).mean()
    err_uni = np.abs(out["uniform"][1][c].astype(int) - img[c]).mean()
    assert abs(err_roi - err_uni) < 1.0     # the emphasised region keeps its quality


def test_forced_keyframe_and_gop():
    w, h = 160, 96
    with MacroblockQPEncoder(H264EncoderConfig(w, h, gop=100)) as enc:
        keys = [enc.encode(smooth(h, w, t), None, force_keyframe=(t == 3))[0].keyframe for t in range(6)]
    assert keys == [True, False, False, True, False, False]


def test_corrupt_access_unit_is_reported_then_decoder_resumes_at_next_keyframe():
    w, h = 320, 192
    with MacroblockQPEncoder(H264EncoderConfig(w, h, gop=4)) as enc:
        units = [enc.encode(smooth(h, w, t) // 2 + noise(h, w) // 2, None)[0] for t in range(8)]
    assert [u.keyframe for u in units] == [True, False, False, False] * 2
    dec = H264Decoder()
    assert len(dec.decode(units[0].data, True)) == 1
    truncated = units[1].data[: len(units[1].data) // 2]
    with pytest.raises(H264DecodeError, match="corrupt access unit"):
        dec.decode(truncated, False)
    assert dec.waiting_for_keyframe and dec.errors == 1
    assert dec.decode(units[2].data, False) == [] and dec.decode(units[3].data, False) == []
    assert dec.dropped == 2
    frames = dec.decode(units[4].data, True)
    assert len(frames) == 1 and not dec.waiting_for_keyframe
    assert len(dec.decode(units[5].data, False)) == 1


def test_bit_errors_are_caught_by_the_crc():
    import zlib

    w, h = 160, 96
    with MacroblockQPEncoder(H264EncoderConfig(w, h, gop=2)) as enc:
        units = [enc.encode(smooth(h, w, t) // 2 + noise(h, w) // 2, None)[0] for t in range(3)]
    flipped = bytearray(units[1].data)
    for pos in range(20, len(flipped), 97):
        flipped[pos] ^= 0xFF
    lenient = H264Decoder()
    lenient.decode(units[0].data, True)
    assert len(lenient.decode(bytes(flipped), False)) == 1     # H.264 alone does not notice
    dec = H264Decoder()
    dec.decode(units[0].data, True, zlib.crc32(units[0].data))
    with pytest.raises(H264DecodeError, match="CRC-32 mismatch"):
        dec.decode(bytes(flipped), False, zlib.crc32(units[1].data))
    assert dec.waiting_for_keyframe
    assert len(dec.decode(units[2].data, True, zlib.crc32(units[2].data))) == 1


def test_garbage_bytes_do_not_crash_the_decoder():
    dec = H264Decoder()
    outcomes = []
    for blob in (b"", b"\x00\x00\x00\x01" + bytes(range(256)) * 4, RNG.bytes(5000)):
        try:
            out = dec.decode(blob, True)
        except H264DecodeError:
            assert dec.waiting_for_keyframe and dec.errors >= 1      # reset, waiting for a keyframe
            outcomes.append("error")
            continue
        assert out == []                                            # nothing that could be shown
        outcomes.append("nothing")
    assert "error" in outcomes
    w, h = 160, 96
    with MacroblockQPEncoder(H264EncoderConfig(w, h)) as enc:
        unit = enc.encode(smooth(h, w), None)[0]
    dec.mark_lost()
    assert len(dec.decode(unit.data, True)) == 1


def test_lost_access_unit_makes_the_decoder_wait_for_a_keyframe():
    dec = H264Decoder()
    w, h = 160, 96
    with MacroblockQPEncoder(H264EncoderConfig(w, h, gop=3)) as enc:
        units = [enc.encode(smooth(h, w, t), None)[0] for t in range(4)]
    dec.decode(units[0].data, True)
    dec.mark_lost()
    assert dec.decode(units[2].data, False) == []
    assert len(dec.decode(units[3].data, True)) == 1


@pytest.mark.parametrize("kwargs,match", [
    ({"width": 161, "height": 96}, "even dimensions"),
    ({"width": 160, "height": 96, "base_qp": 60}, "base_qp"),
    ({"width": 160, "height": 96, "gop": 0}, "gop"),
])
def test_bad_encoder_config_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MacroblockQPEncoder(H264EncoderConfig(**kwargs))


def test_bad_maps_and_frames_are_rejected():
    with MacroblockQPEncoder(H264EncoderConfig(160, 96)) as enc:
        with pytest.raises(ValueError, match="6x10 macroblocks"):
            enc.encode(smooth(96, 160), np.full((5, 10), 30))
        with pytest.raises(ValueError, match=r"expected \(96, 160, 3\) uint8"):
            enc.encode(smooth(90, 160), None)
    with pytest.raises(ValueError, match=r"levels must be in \[0, 4\]"):
        levels_to_qp_map(np.array([[0, 5]]))
    assert list(levels_to_qp_map(np.arange(5))) == list(DEFAULT_LEVEL_QPS)


def test_a_library_that_is_not_a_verified_x264_build_is_refused():
    import ctypes.util

    libm = ctypes.util.find_library("m")
    with pytest.raises(X264Error, match="not an x264 build whose struct layout was verified"):
        X264Library(libm)

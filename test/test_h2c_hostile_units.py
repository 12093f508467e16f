"""How2Compress server against hostile access units: the SPS parser reads the picture size x264
and FFmpeg's libx264 write (odd sizes, cropping, baseline and 4:4:4 profiles) and never fails
on garbage except with SpsError; a unit whose SPS declares another size than its message, or
more than ``max_frame_pixels``, is refused without reaching the decoder; the decoder's own pixel
limit stands behind that; a unit dropped while waiting for a keyframe is not reported decoded;
decoders per stream are bounded and freed, so memory returns near its baseline after many
stream ids."""
import zlib
from fractions import Fraction

import numpy as np
import pytest

from how2compress_ros.codec import H264Decoder, H264DecodeError
from how2compress_ros.codec.sps import SpsError, declared_sizes, nal_units, parse_sps
from how2compress_ros.pipeline import EdgeSettings, How2CompressEdge, How2CompressServer
from offload_common.payload_checks import PayloadRejected, SequenceTracker, StreamLimits


class NoDetector:
    name = "none"

    def detect(self, rgb):
        return []


def encode(frames, preset="ultrafast"):
    edge = How2CompressEdge(None, EdgeSettings(gop=30, preset=preset), "uniform/qp30")
    try:
        return [p for rgb in frames for p in edge.process(rgb)]
    finally:
        edge.close()


def noise(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), np.uint8)


class BitWriter:
    def __init__(self):
        self.bits = []

    def u(self, n, v):
        self.bits += [(v >> (n - 1 - i)) & 1 for i in range(n)]

    def ue(self, v):
        code = bin(v + 1)[2:]
        self.bits += [0] * (len(code) - 1) + [int(c) for c in code]

    def nal(self, header: int) -> bytes:
        bits = self.bits + [1]
        bits += [0] * (-len(bits) % 8)
        raw = bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))
        out = bytearray([header])
        zeros = 0
        for b in raw:                                   # emulation prevention
            if zeros >= 2 and b <= 3:
                out.append(3)
                zeros = 0
            out.append(b)
            zeros = zeros + 1 if b == 0 else 0
        return bytes(out)


def crafted_sps(width_mbs: int, height_mbs: int) -> bytes:
    """A baseline-profile SPS (id 0) declaring width_mbs x height_mbs macroblocks, no cropping."""
    w = BitWriter()
    w.u(8, 66)
    w.u(8, 0)
    w.u(8, 40)
    w.ue(0)                 # seq_parameter_set_id
    w.ue(0)                 # log2_max_frame_num_minus4
    w.ue(2)                 # pic_order_cnt_type
    w.ue(1)                 # max_num_ref_frames
    w.u(1, 0)
    w.ue(width_mbs - 1)
    w.ue(height_mbs - 1)
    w.u(1, 1)               # frame_mbs_only_flag
    w.u(1, 1)
    w.u(1, 0)               # frame_cropping_flag
    w.u(1, 0)               # vui_parameters_present_flag
    return w.nal(0x67)


def with_sps(unit: bytes, sps: bytes) -> bytes:
    """``unit`` (Annex-B) with its SPS NAL replaced by ``sps``."""
    return b"".join(b"\x00\x00\x00\x01" + (sps if n[0] & 0x1F == 7 else n) for n in nal_units(unit))


@pytest.mark.parametrize("h,w", [(96, 128), (100, 130), (18, 34), (360, 640), (1080, 1920)])
def test_sps_size_matches_what_x264_encoded(h, w):
    (unit, *_) = encode([noise(h, w)])
    assert unit.keyframe and [(s.width, s.height) for s in declared_sizes(unit.data)] == [(w, h)]
    assert declared_sizes(encode([noise(h, w), noise(h, w, 1)])[1].data) == []     # P-frames carry none


@pytest.mark.parametrize("profile,pix_fmt", [("baseline", "yuv420p"), ("high444", "yuv444p"), ("high422", "yuv422p")])
def test_sps_size_matches_ffmpegs_libx264_across_profiles(profile, pix_fmt):
    import av

    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = 150, 86, pix_fmt      # odd crops in both directions for 4:2:x
    ctx.time_base = Fraction(1, 25)
    ctx.options = {"profile": profile, "preset": "ultrafast"}
    frame = av.VideoFrame.from_ndarray(noise(86, 150), format="rgb24").reformat(format=pix_fmt)
    data = b"".join(bytes(p) for p in ctx.encode(frame) + ctx.encode(None))
    (sps,) = declared_sizes(data)
    assert (sps.width, sps.height) == (150, 86)
    dec = H264Decoder()
    assert dec.decode(data, True)[0].rgb.shape[:2] == (86, 150)


def test_crafted_sps_round_trips_through_the_parser():
    assert (parse_sps(crafted_sps(1000, 1000)).width, parse_sps(crafted_sps(1000, 1000)).height) == (16000, 16000)
    assert parse_sps(crafted_sps(4, 4)).coded_width == 64


def test_the_sps_parser_fails_only_with_sps_error_on_garbage():
    rng = np.random.default_rng(3)
    (unit,) = encode([noise(96, 128)])
    (real,) = [n for n in nal_units(unit.data) if n[0] & 0x1F == 7]
    outcomes = {"ok": 0, "error": 0}
    for i in range(3000):
        kind = i % 4
        if kind == 0:
            nal = bytes([0x67]) + rng.bytes(int(rng.integers(0, 40)))
        elif kind == 1:
            nal = real[: int(rng.integers(0, len(real)))]
        elif kind == 2:
            b = bytearray(real)
            b[int(rng.integers(1, len(b)))] ^= 1 << int(rng.integers(0, 8))
            nal = bytes(b)
        else:
            nal = bytes([0x67]) + b"\x00" * int(rng.integers(0, 12)) + rng.bytes(4)
        try:
            info = parse_sps(nal)
            assert info.width > 0 and info.height > 0 and info.width <= info.coded_width
            outcomes["ok"] += 1
        except SpsError:
            outcomes["error"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0


@pytest.fixture
def decode_calls(monkeypatch):
    calls = []
    original = H264Decoder.decode

    def counting(self, data, keyframe, crc32=None):
        calls.append(len(data))
        return original(self, data, keyframe, crc32)

    monkeypatch.setattr(H264Decoder, "decode", counting)
    return calls


def send(server, unit_data, keyframe=True, width=128, height=96, stream="det", seq=0):
    return server.admit(stream, seq, unit_data, keyframe, zlib.crc32(unit_data), width=width, height=height,
                        config_id="uniform/qp30")


def test_a_unit_whose_sps_declares_a_huge_picture_never_reaches_the_decoder(decode_calls):
    server = How2CompressServer(NoDetector())
    (unit,) = encode([noise(96, 128)])
    for mbs in ((256, 256), (512, 512), (1000, 1000), (9, 6)):       # 4096², 8192², 16000², and 144x96
        hostile = with_sps(unit.data, crafted_sps(*mbs))
        with pytest.raises(PayloadRejected) as err:
            send(server, hostile)
        assert err.value.reason == "sps" and "the message 128x96" in str(err.value)
    assert decode_calls == [] and server.counters.reasons == {"sps": 4} and not server.streams
    out = send(server, unit.data)                                  # the real unit still decodes
    assert out.decoded and out.frames[0].rgb.shape == (96, 128, 3) and len(decode_calls) == 1


def test_a_real_large_unit_is_refused_by_size_before_decoding(decode_calls):
    flat = np.full((2048, 2048, 3), 128, np.uint8)
    (big,) = encode([flat])
    server = How2CompressServer(NoDetector())                      # max_frame_pixels: 1920 x 1080
    with pytest.raises(PayloadRejected, match="SPS declares 2048x2048 pictures, the message 64x64"):
        send(server, big.data, width=64, height=64)
    with pytest.raises(PayloadRejected, match="over max_frame_pixels") as err:
        send(server, big.data, width=2048, height=2048)
    assert err.value.reason == "dimensions" and decode_calls == []
    roomy = How2CompressServer(NoDetector(), max_frame_pixels=2048 * 2048)
    assert send(roomy, big.data, width=2048, height=2048).frames[0].rgb.shape == (2048, 2048, 3)


def test_the_decoders_own_pixel_limit_refuses_larger_pictures():
    (unit,) = encode([noise(96, 128)])
    with pytest.raises(H264DecodeError):
        H264Decoder(max_pixels=64 * 64).decode(unit.data, True)
    assert H264Decoder(max_pixels=128 * 96).decode(unit.data, True)[0].rgb.shape == (96, 128, 3)


def test_a_unit_dropped_while_waiting_for_a_keyframe_is_not_reported_decoded():
    units = encode([noise(96, 128, i) for i in range(3)])
    server = How2CompressServer(NoDetector())
    out = send(server, units[1].data, keyframe=False, seq=1)       # its keyframe never came
    assert not out.decoded and out.needs_keyframe and out.frames == []
    assert server.counters.waiting_dropped == 1 and server.counters.decoded == 0


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def test_decoders_per_stream_are_bounded_and_freed():
    (unit,) = encode([noise(720, 1280)])
    server = How2CompressServer(NoDetector(), limits=StreamLimits(max_streams=4))
    for i in range(4):
        assert send(server, unit.data, width=1280, height=720, stream=f"s{i}").decoded
    with pytest.raises(PayloadRejected) as err:                    # a fifth stream id while four are live
        send(server, unit.data, width=1280, height=720, stream="s4")
    assert err.value.reason == "streams" and len(server.streams) == 4

    clock = [0.0]
    server = How2CompressServer(NoDetector(), limits=StreamLimits(max_streams=4, idle_timeout_s=1.0))
    server.sequences = SequenceTracker(server.sequences.limits, clock=lambda: clock[0])
    for i in range(20):                                            # warm up allocator pools
        clock[0] += 2.0
        send(server, unit.data, width=1280, height=720, stream=f"warm{i}")
    base = rss_mb()
    for i in range(300):                                           # 300 distinct ids, each idle 2 s later
        clock[0] += 2.0
        assert send(server, unit.data, width=1280, height=720, stream=f"id{i}").decoded
        assert len(server.streams) <= 4 and len(server.sequences) <= 4
    assert server.counters.expired >= 300
    assert rss_mb() - base < 60, f"RSS grew {rss_mb() - base:.0f} MB over 300 stream ids"


@pytest.mark.parametrize("change,reason", [
    (dict(format_version=2), "version"),
    (dict(codec="hevc"), "codec"),
    (dict(data=b""), "size"),
    (dict(data=b"\x00" * 9_000_001), "size"),
    (dict(width=8), "dimensions"),
    (dict(height=9000), "dimensions"),
    (dict(config_id="h2c/base99"), "config"),
    (dict(config_id="jpeg/q80"), "config"),
])
def test_fields_the_readme_lists_are_refused_before_the_decoder(decode_calls, change, reason):
    """README: the How2Compress server rejects a bad format version, codec, size, dimensions or
    configuration id, counts it, and decodes the next valid unit."""
    (unit,) = encode([noise(96, 128)])
    server = How2CompressServer(NoDetector())
    good = dict(codec="h264", format_version=1, width=128, height=96, config_id="uniform/qp30")
    data = change.pop("data", unit.data)
    with pytest.raises(PayloadRejected) as err:
        server.admit("det", 0, data, True, zlib.crc32(data), **{**good, **change})
    assert err.value.reason == reason and server.counters.reasons == {reason: 1} and decode_calls == []
    assert server.admit("det", 0, unit.data, True, zlib.crc32(unit.data), **good).decoded

"""How2Compress configuration ids and the configurable level table (edge parameter level_qps)."""
import zlib

import numpy as np
import pytest

from how2compress_ros.pipeline import (ConfigIdError, EdgeSettings, How2CompressEdge, check_level_table,
                                       parse_config_id, parse_level_table)


def test_config_ids_shift_the_level_table():
    assert parse_config_id("h2c/base45").level_qps == (45, 43, 37, 34, 30)
    assert parse_config_id("h2c/base41").level_qps == (41, 39, 33, 30, 26)
    assert parse_config_id("h2c/base38", (38, 37, 35, 34, 32)).level_qps == (38, 37, 35, 34, 32)
    assert parse_config_id("h2c/base40", (38, 37, 35, 34, 32)).level_qps == (40, 39, 37, 36, 34)
    assert parse_config_id("uniform/qp30").level_qps == (30,) and not parse_config_id("uniform/qp30").uses_emphasis
    for bad in ("h2c/base", "h2c/base99", "uniform/qp-1", "vp9/qp30", ""):
        with pytest.raises(ConfigIdError):
            parse_config_id(bad)


def test_level_tables_are_checked():
    assert check_level_table([40, 38, 38, 30, 30]) == (40, 38, 38, 30, 30)
    for bad in ([30, 35, 37, 40, 45], [52, 40, 30, 20, 10], [45]):
        with pytest.raises(ConfigIdError):
            check_level_table(bad)
    assert parse_level_table("38,37,35,34,32") == (38, 37, 35, 34, 32)     # the CLIs' --level-qps
    for bad in ("38,37,x", "30,35", ""):
        with pytest.raises(ConfigIdError):
            parse_level_table(bad)


def test_edge_encodes_with_its_own_level_table():
    from how2compress_ros.emphasis.model import EmphasisModel, EmphasisModelConfig

    model = EmphasisModel(EmphasisModelConfig(downsample=4))
    rgb = np.random.default_rng(0).integers(0, 255, (256, 256, 3), np.uint8)
    edge = How2CompressEdge(model, EdgeSettings(gop=1), "h2c/base40", level_qps=(38, 37, 35, 34, 32))
    try:
        (p,) = edge.process(rgb)
        assert p.config.level_qps == (40, 39, 37, 36, 34) and p.levels is not None
        edge.set_config("h2c/base38")
        (p,) = edge.process(rgb)
        assert p.config.level_qps == (38, 37, 35, 34, 32)
    finally:
        edge.close()
    with pytest.raises(ConfigIdError):
        How2CompressEdge(model, EdgeSettings(), "h2c/base45", level_qps=(45, 40, 30))   # 3 QPs, 5 levels


def test_a_configuration_switch_during_a_frame_applies_from_the_next_frame():
    """The edge node's monitor callback calls set_config from another thread than the encoder's.
    A switch to edge_only while a frame is in the EA model must not mix the two configurations
    (edge_only has no level table: reading it mid-frame raised IndexError and killed the node's
    encoder thread)."""
    from how2compress_ros.emphasis.model import EmphasisModel, EmphasisModelConfig

    class SwitchingModel(EmphasisModel):
        """Predicts like the real model, then lets the 'monitor' switch the edge mid-frame."""
        switch_to = None

        def predict_levels(self, rgb):
            levels = super().predict_levels(rgb)
            if self.switch_to:
                edge.set_config(self.switch_to)
            return levels

    model = SwitchingModel(EmphasisModelConfig(downsample=4))
    rgb = np.random.default_rng(0).integers(0, 255, (128, 160, 3), np.uint8)
    edge = How2CompressEdge(model, EdgeSettings(gop=1), "h2c/base40")
    try:
        for target in ("edge_only", "uniform/qp30", "h2c/base38"):
            model.switch_to = target
            before = edge.config
            (p,) = edge.process(rgb)
            assert p.config == before and p.levels is not None      # this frame: the old configuration
            assert edge.config.config_id == target                  # the switch took effect for the next
            model.switch_to = None
            edge.set_config("h2c/base40")
        edge.set_config("edge_only")
        assert edge.process(rgb) == []
    finally:
        edge.close()


class CountingDetector:
    name = "counting"

    def __init__(self):
        self.frames = 0

    def detect(self, rgb):
        self.frames += 1
        return []


def _stream(frames, gop=30):
    """Access units of a fresh edge (uniform QP): what a (re)started edge node sends."""
    edge = How2CompressEdge(None, EdgeSettings(gop=gop), "uniform/qp30")
    try:
        return [p for rgb in frames for p in edge.process(rgb)]
    finally:
        edge.close()


def test_a_restarted_edge_is_decoded_and_repeats_are_still_refused():
    """A restarted edge node numbers its frames from 0 again. Its capture stamps are later than
    the old stream's, so the server starts the stream over (fresh decoder) instead of refusing
    every payload until the numbers pass the old ones; a repeated payload (same stamp) is still
    refused, and a restart whose keyframe was lost waits for a keyframe and asks for one."""
    from how2compress_ros.pipeline import How2CompressServer
    from offload_common.payload_checks import PayloadRejected

    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (96, 128, 3), np.uint8) for _ in range(6)]
    units = _stream(frames)
    det = CountingDetector()
    server = How2CompressServer(det)

    def send(seq, stamp_ns, p=None):
        p = p or units[seq]
        return server.handle("det", seq, p.data, p.keyframe, zlib.crc32(p.data), width=128, height=96,
                             config_id="uniform/qp30", stamp_ns=stamp_ns)

    for seq in range(6):                                   # the first run of the edge: seq 0..5
        send(seq, 1_000 + seq)
    with pytest.raises(PayloadRejected, match="duplicate or reordered"):
        send(5, 1_005)                                     # a repeat of the last payload
    with pytest.raises(PayloadRejected, match="duplicate or reordered"):
        send(2, 0)                                         # no stamp: cannot be told from a repeat
    assert det.frames == 6 and server.counters.restarts == 0 and server.sequences.run_length["det"] == 6

    for seq in range(3):                                   # restarted edge: seq 0.. again, later stamps
        results, need_keyframe = send(seq, 9_000 + seq)
        assert len(results) == 1 and not need_keyframe
    assert det.frames == 9 and server.counters.restarts == 1 and server.counters.lost == 0
    assert server.sequences.run_length["det"] == 3
    with pytest.raises(PayloadRejected, match="duplicate or reordered"):
        send(2, 9_002)

    results, need_keyframe = send(1, 20_001)               # restarted again, its keyframe (seq 0) lost
    assert results == [] and need_keyframe and server.counters.restarts == 2
    results, _ = send(2, 20_002)
    assert results == [] and det.frames == 9               # nothing decoded against the old stream


def test_restarts_close_together_are_reported_as_two_senders():
    from offload_common.payload_checks import SequenceTracker

    t = SequenceTracker()
    for seq in range(40):
        t.accept("det", seq, 100 + seq)
    assert t.restarts("det", 0, 1_000) and not t.restarts("det", 40, 1_000) and not t.restarts("det", 0, 139)
    assert t.pop_restart_note() is None
    for seq in range(3):                                   # the edge restarted after 40 payloads
        t.accept("det", seq, 1_000 + seq)
    long_run = t.pop_restart_note()
    assert "after 40 payloads: its edge node restarted" in long_run and "two edges" not in long_run
    assert t.pop_restart_note() is None                    # said once
    t.accept("det", 0, 2_000)                              # and again, 3 payloads later
    assert "two edges publish stream_id 'det'" in t.pop_restart_note()


def test_map_reuse_runs_the_emphasis_model_every_nth_frame():
    """README: map_reuse N computes the emphasis map every N frames and reuses it in between; each
    payload says how old its map is (map_age), and the QP map follows the reused levels."""
    from how2compress_ros.emphasis.model import EmphasisModel, EmphasisModelConfig

    class CountingModel(EmphasisModel):
        calls = 0

        def predict_levels(self, rgb):
            CountingModel.calls += 1
            return super().predict_levels(rgb)

    model = CountingModel(EmphasisModelConfig(downsample=4))
    rng = np.random.default_rng(4)
    edge = How2CompressEdge(model, EdgeSettings(gop=30, map_reuse=3), "h2c/base40")
    try:
        payloads = [p for _ in range(7) for p in edge.process(rng.integers(0, 255, (96, 128, 3), np.uint8))]
    finally:
        edge.close()
    assert CountingModel.calls == 3                                   # frames 0, 3 and 6
    assert [p.map_age for p in payloads] == [0, 1, 2, 0, 1, 2, 0]
    assert [p.model_ms > 0 for p in payloads] == [True, False, False, True, False, False, True]
    assert all(np.array_equal(payloads[i].levels, payloads[0].levels) for i in (1, 2))

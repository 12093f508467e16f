"""The equal-accuracy search and per-clip runs of the How2Compress evaluation."""
import numpy as np
import pytest

from footage import frames
from how2compress_ros.evaluation import Clip, RunResult, cheapest_meeting_bound, chosen, run_clip


def fake(knob, ok_from):
    return RunResult("c", "m", str(knob), kbps=100 + knob, f1=0.9 + knob / 100, ap50=0, ssim=0,
                     encode_ms=0, ea_ms=0, meets_bound=knob >= ok_from)


@pytest.mark.parametrize("ok_from", [0, 3, 7, 9, 99])
def test_search_finds_the_cheapest_knob_meeting_the_bound(ok_from):
    calls = []

    def ev(k):
        calls.append(k)
        return fake(k, ok_from)

    runs = cheapest_meeting_bound(ev, list(range(10)))
    best = chosen(runs)
    if ok_from <= 9:
        assert best.setting == str(ok_from) and best.meets_bound
    else:
        assert not best.meets_bound and best.setting == "9"
    assert len(calls) <= 6 and len(set(calls)) == len(calls)   # binary search, no re-runs


def test_uniform_qp_trades_bitrate_for_accuracy_on_real_footage():
    ssd = pytest.importorskip("how2compress_ros.detectors.ssdlite_person")
    det = ssd.SSDLitePersonDetector()
    clip = Clip("carphone", frames("carphone_pristine.mp4", 20), 30.0)
    refs = [det.detect(f) for f in clip.frames]
    grid = (9, 11)
    lo = run_clip(clip, refs, det, lambda i, f: np.full(grid, 22), 22, "uniform", "qp22", 0.98)
    hi = run_clip(clip, refs, det, lambda i, f: np.full(grid, 44), 44, "uniform", "qp44", 0.98)
    assert lo.kbps > 3 * hi.kbps
    assert lo.f1 >= hi.f1 and lo.ssim > hi.ssim
    assert lo.meets_bound


def test_h2c_profile_table_orders_settings_by_bytes_and_loads_in_the_monitor(tmp_path):
    """The "det" lookup table from the real edge and server pipelines: more quality costs more
    bytes, edge-only sends nothing and scores F1 1, and the monitor's chooser accepts the table."""
    ssd = pytest.importorskip("how2compress_ros.detectors.ssdlite_person")
    from how2compress_ros.emphasis.model import EmphasisModel, EmphasisModelConfig
    from how2compress_ros.pipeline import EdgeSettings
    from how2compress_ros.profiling import profile_settings
    from offload_common.lookup_table import LookupTable
    from offload_common.monitor import ConfigurationChooser, LinkState, Sla

    det = ssd.SSDLitePersonDetector()
    clip = frames("carphone_pristine.mp4", 12)
    model = EmphasisModel(EmphasisModelConfig(width_multiplier=0.5, downsample=4))
    lut = profile_settings(["h2c/base45", "h2c/base37", "uniform/qp40", "uniform/qp24", "edge_only"], clip, det,
                           model, EdgeSettings(gop=6))
    e = {x.config_id: x for x in lut.entries}
    assert e["uniform/qp24"].bytes > 2 * e["uniform/qp40"].bytes
    assert e["h2c/base37"].bytes > e["h2c/base45"].bytes
    assert e["h2c/base45"].edge_ms > 0 and e["uniform/qp40"].edge_ms == 0      # EA model only for h2c/
    assert e["uniform/qp24"].accuracy >= 0.9 and e["uniform/qp24"].extra["max_bytes"] >= e["uniform/qp24"].bytes
    assert e["edge_only"].bytes == 0 and e["edge_only"].accuracy == 1.0 and e["edge_only"].edge_ms > 0
    assert all(x.method in ("how2compress", "edge_only") for x in lut.entries)
    path = str(tmp_path / "lut.json")
    lut.save(path)
    loaded = LookupTable.load(path)
    assert loaded.stream_id == "det" and len(loaded.entries) == 5
    d = ConfigurationChooser([loaded]).choose(Sla("accuracy", accuracy=0.99), LinkState(False, 0.0), 0.0)
    assert d.config_id == "edge_only" and d.feasible                 # link down: detection stays on the edge

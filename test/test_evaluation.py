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

"""The equal-accuracy search and per-clip runs of the How2Compress evaluation."""
import numpy as np
import pytest

from footage import frames
from how2compress_ros.detectors.base import Box
from how2compress_ros.evaluation import (Clip, RunResult, block_resample, bootstrap_savings, cheapest_meeting_bound,
                                        chosen, interval, isotonic, rate_at_bound, run_clip)


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


def test_neighbours_add_runs_either_side_of_the_crossing():
    runs = cheapest_meeting_bound(lambda k: fake(k, 5), list(range(10)), neighbours=2)
    assert {3, 4, 5, 6, 7} <= {int(r.setting) for r in runs}
    assert chosen(runs).setting == "5"
    edge = cheapest_meeting_bound(lambda k: fake(k, 0), list(range(10)), neighbours=2)
    assert {0, 1, 2} <= {int(r.setting) for r in edge}


def test_runs_are_added_where_the_fitted_crossing_falls_between_distant_knobs():
    # bikes, uniform QP: a lucky pass at knob 13 (the binary search's find) with failing
    # neighbours; the true crossing is at knob 16, between neighbour 15 and the last knob 27
    def f1(k):
        return 0.983 if k == 13 else (0.99 if k >= 16 else 0.93)

    def ev(k):
        return RunResult("c", "uniform", str(k), 50.0 * 1.1 ** k, f1(k), 0, 0, 0, 0, f1(k) >= 0.98)

    knobs = list(range(28))
    sparse = cheapest_meeting_bound(ev, knobs, neighbours=2)
    dense = cheapest_meeting_bound(ev, knobs, neighbours=2, bound=0.98)
    assert {int(r.setting) for r in sparse} <= {int(r.setting) for r in dense}
    assert {15, 16} <= {int(r.setting) for r in dense}
    # the fitted crossing then lies between knobs 15 and 16, not far up toward knob 27
    assert 50 * 1.1 ** 15 <= rate_at_bound(dense, 0.98) <= 50 * 1.1 ** 16 < rate_at_bound(sparse, 0.98)


def test_confirmed_passes_make_two_identical_coders_read_the_same_whatever_their_knob_lists():
    # carphone: F1 against QP zigzags (41 passes, 40 fails, 39 and 38 pass, 37 fails); uniform QP
    # searches QPs 51..18, How2Compress a shift table whose top level runs 51..12 (a longer list),
    # so the binary searches sample the zigzag at different QPs
    f1 = {q: (0.95 if q in (40, 37) or q > 41 else 1.0) for q in range(0, 52)}

    def ev(qp):
        return RunResult("c", "m", f"qp{qp}", 19.0 * 1.13 ** (41 - qp), f1[qp], 0, 0, 0, 0, f1[qp] >= 0.98)

    lists = [list(range(51, 17, -1)), list(range(51, 11, -1))]
    plain = [rate_at_bound(cheapest_meeting_bound(ev, q, 2, 0.98), 0.98) for q in lists]
    confirmed = [cheapest_meeting_bound(ev, q, 2, 0.98, confirm=3) for q in lists]
    assert plain[0] != pytest.approx(plain[1], rel=0.05)          # the flaw: 22.5 against 34.4 kbit/s on carphone
    assert rate_at_bound(confirmed[0], 0.98) == pytest.approx(rate_at_bound(confirmed[1], 0.98), rel=1e-9)
    for runs in confirmed:                                        # every QP from the cheapest pass to 3 passes in a row
        assert {"qp41", "qp40", "qp39", "qp38", "qp37", "qp36", "qp35", "qp34"} <= {r.setting for r in runs}


def test_confirmation_stops_at_the_end_of_the_knobs_and_without_a_pass():
    calls = []

    def ev(k):
        calls.append(k)
        return fake(k, 8)

    runs = cheapest_meeting_bound(ev, list(range(10)), confirm=5)
    assert {8, 9} <= {int(r.setting) for r in runs} and max(calls) == 9 and len(set(calls)) == len(calls)
    assert len(cheapest_meeting_bound(lambda k: fake(k, 99), list(range(10)), confirm=3)) == 1


def test_isotonic_pools_violators_and_keeps_monotone_input():
    assert np.allclose(isotonic([0.9, 0.95, 0.99]), [0.9, 0.95, 0.99])
    assert np.allclose(isotonic([0.9, 0.98, 0.94, 0.99]), [0.9, 0.96, 0.96, 0.99])
    fit = isotonic([3, 1, 2, 0, 5])
    assert np.all(np.diff(fit) >= 0) and np.isclose(fit.sum(), 11)


def run(kbps, f1):
    return RunResult("c", "m", "", kbps=kbps, f1=f1, ap50=0, ssim=0, encode_ms=0, ea_ms=0, meets_bound=f1 >= 0.98)


def test_rate_at_bound_interpolates_in_log_rate():
    r = rate_at_bound([run(100, 0.96), run(400, 1.0)], 0.98)
    assert np.isclose(r, 200.0)                       # half-way in log-rate
    assert rate_at_bound([run(100, 0.9), run(200, 0.95)], 0.98) is None
    assert rate_at_bound([run(100, 0.99), run(200, 1.0)], 0.98) == 100.0


def test_rate_at_bound_is_not_fooled_by_a_lucky_cheap_run():
    # F1 noise: 150 kbit/s happens to pass, 170 and 190 do not; the fitted curve crosses later
    runs = [run(120, 0.93), run(150, 0.985), run(170, 0.95), run(190, 0.97), run(250, 0.99), run(400, 1.0)]
    assert min(r.kbps for r in runs if r.meets_bound) == 150
    r = rate_at_bound(runs, 0.98)
    assert 190 < r < 250


def test_searches_reach_qp_51_and_a_reading_at_their_cheap_end_is_flagged():
    from how2compress_ros.evaluation import BASELINE_QPS, cut_off_at_cheap_end

    assert BASELINE_QPS[0] == 51 and BASELINE_QPS == sorted(BASELINE_QPS, reverse=True)

    def runs(*pts):
        return [RunResult("c", "m", f"qp{i}", kbps, f1, 0, 0, 0, 0, f1 >= 0.98) for i, (kbps, f1) in enumerate(pts)]

    assert cut_off_at_cheap_end(runs((30, 0.99), (60, 1.0)), 0.98)               # passes where the search ends
    assert not cut_off_at_cheap_end(runs((30, 0.90), (60, 0.99)), 0.98)           # crossed inside the search
    assert not cut_off_at_cheap_end(runs((30, 0.99), (40, 0.90), (60, 0.97)), 0.98)   # a lucky cheap run
    assert not cut_off_at_cheap_end([], 0.98)


def test_block_resample_draws_whole_blocks_of_consecutive_frames():
    idx = block_resample(95, 10, np.random.default_rng(0))
    assert len(idx) == 95 and idx.min() >= 0 and idx.max() < 95
    steps = np.diff(idx.reshape(-1)[:90].reshape(9, 10), axis=1) % 95
    assert np.all(steps == 1)                           # each block runs on (wrapping round the clip)
    assert len(set(idx[::10].tolist())) > 3             # blocks start in different places


def counted(kbps, per_frame):
    """A run whose F1 comes from per-frame (tp, fp, fn) counts."""
    tp, fp, fn = np.sum(per_frame, axis=0)
    r = run(kbps, 2 * tp / (2 * tp + fp + fn))
    r.frame_counts = [tuple(c) for c in per_frame]
    return r


def test_bootstrap_savings_is_exact_when_every_frame_agrees_and_spreads_when_few_frames_decide():
    n = 60
    perfect, lossy = [(4, 0, 0)] * n, [(3, 0, 1)] * n          # F1 1.0 and 6/7 on every frame
    steady = {"uniform": [counted(100, lossy), counted(200, perfect)],
              "h2c": [counted(80, lossy), counted(150, perfect)]}
    boot = bootstrap_savings({"a": steady}, 0.98, ["h2c"], samples=50)["h2c"]
    expected = 1 - rate_at_bound(steady["h2c"], 0.98) / rate_at_bound(steady["uniform"], 0.98)
    assert np.allclose(boot["a"], expected) and np.allclose(boot["mean"], expected)
    # h2c's cheap run misses boxes on only 3 frames: whether it passes depends on the sample
    few = [(3, 0, 1) if i < 3 else (4, 0, 0) for i in range(n)]
    lucky = {"uniform": steady["uniform"], "h2c": [counted(80, few), counted(150, perfect)]}
    values = bootstrap_savings({"a": lucky, "b": steady}, 0.99, ["h2c"], samples=300)["h2c"]
    lo, hi = interval(values["a"])
    assert lo < hi and np.isclose(hi, 1 - 80 / rate_at_bound(steady["uniform"], 0.99))   # where the cheap run passes
    assert np.allclose(values["mean"], (values["a"] + values["b"]) / 2)
    with pytest.raises(ValueError, match="per-frame counts"):
        bootstrap_savings({"a": {"uniform": [run(100, 1.0)], "h2c": [run(80, 1.0)]}}, 0.98, ["h2c"], samples=2)


def test_bootstrap_draws_the_same_frames_for_every_method():
    few = [(3, 0, 1) if i < 3 else (4, 0, 0) for i in range(60)]
    runs = {"uniform": [counted(100, [(3, 0, 1)] * 60), counted(200, [(4, 0, 0)] * 60)],
            "a": [counted(80, few), counted(150, [(4, 0, 0)] * 60)]}
    runs["b"] = runs["a"]
    boot = bootstrap_savings({"c": runs}, 0.99, ["a", "b"], samples=100)
    a, b = boot["a"]["mean"], boot["b"]["mean"]
    assert np.nanstd(a) > 0 and np.array_equal(a, b, equal_nan=True)     # paired: same frames each sample


def test_interval_counts_never_reached_as_worst():
    lo, hi = interval(np.array([0.1, 0.2, np.nan, 0.3] * 25))
    assert lo == -np.inf and hi == 0.3


def test_uniform_qp_trades_bitrate_for_accuracy_on_real_footage():
    import how2compress_ros.detectors.ssdlite_person as ssd
    det = ssd.SSDLitePersonDetector()
    clip = Clip("carphone", frames("carphone_pristine.mp4", 20), 30.0)
    refs = [det.detect(f) for f in clip.frames]
    grid = (9, 11)
    lo = run_clip(clip, refs, det, lambda i, f: np.full(grid, 22), 22, "uniform", "qp22", 0.98)
    hi = run_clip(clip, refs, det, lambda i, f: np.full(grid, 44), 44, "uniform", "qp44", 0.98)
    assert lo.kbps > 3 * hi.kbps
    assert lo.f1 >= hi.f1 and lo.ssim > hi.ssim
    assert lo.meets_bound


def test_how2compress_aq_codes_the_same_maps_with_variance_aq_on_top():
    from how2compress_ros.evaluation import evaluate_clip

    class HalfEmphasis:                       # level 4 on the left half of the grid, 0 elsewhere
        def predict_levels(self, rgb):
            levels = np.zeros((9, 11), np.int64)
            levels[:, :5] = 4
            return levels

    class SameBoxes:                          # accuracy never limits: the search runs to the cheapest shift
        name = "fixed"

        def detect(self, rgb):
            return [Box(10, 10, 60, 80, 0.9)]

    clip = Clip("carphone", frames("carphone_pristine.mp4", 8), 30.0)
    runs = evaluate_clip(clip, SameBoxes(), HalfEmphasis(), level_qps=[38, 37, 35, 34, 32],
                         methods=("how2compress", "how2compress-aq"), log=lambda s: None)
    plain = {r.setting: r for r in runs["how2compress"]}
    aq = {r.setting: r for r in runs["how2compress-aq"]}
    assert all(r.method == "how2compress-aq" for r in aq.values())
    same = set(plain) & set(aq)
    assert same                               # both searches ran the same shifts
    assert "shift-19" in same                 # the search starts at every level at QP 51 (32 + 19)
    # where every level sits at QP 51, x264 cannot code coarser: compare the shifts below it
    same = {s for s in same if int(s[5:]) > -19}
    assert same
    # variance AQ moves every macroblock's QP off the map, so the same table costs a different rate
    assert all(abs(aq[s].kbps - plain[s].kbps) > 0.02 * plain[s].kbps for s in same)


def test_h2c_profile_table_orders_settings_by_bytes_and_loads_in_the_monitor(tmp_path):
    """The "det" lookup table from the real edge and server pipelines: more quality costs more
    bytes, edge-only sends nothing and scores F1 1, and the monitor's chooser accepts the table."""
    import how2compress_ros.detectors.ssdlite_person as ssd
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


def test_h2c_evaluate_cli_writes_every_method_and_the_fitted_rates(tmp_path, capsys):
    import json
    import os

    import how2compress_ros.detectors.ssdlite_person  # noqa: F401
    from footage import footage
    from how2compress_ros.evaluate_cli import main

    footage("carphone_pristine.mp4")
    model = os.path.join(os.path.dirname(os.path.dirname(__file__)), "models", "how2compress",
                         "ea-mobilevitv2-050-d2-vtest-bikes")
    out = tmp_path / "eval"
    assert main(["--model", model, "--clips", "carphone", "--max-frames", "6", "--neighbours", "1",
                 "--threads", "1", "--level-qps", "38,37,35,34,32", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())["carphone"]
    assert set(res["runs"]) == {"uniform", "x264-aq", "accmpeg", "how2compress"}
    for method, runs in res["runs"].items():
        assert all(r["clip"] == "carphone" and r["kbps"] > 0 for r in runs)
        rate = res["rate_at_bound_kbps"][method]      # every method reaches the bound on carphone
        assert rate is not None, method                # (measured: 60 / 44 / 185 / 59 kbit/s)
        assert min(r["kbps"] for r in runs) <= rate <= max(r["kbps"] for r in runs)   # within the runs made
    # searched methods ran the knob found and its neighbours
    assert len(res["runs"]["uniform"]) >= 3
    assert (out / "qp_map.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "Bitrate where F1 reaches 0.98" in printed and "mean" in printed
    assert "block-bootstrap" in printed and "mean >= 25% in" in printed
    assert all(len(r["frame_counts"]) == 6 for r in res["runs"]["uniform"])
    assert set(res["cut_off_at_cheap_end"]) == set(res["runs"])
    assert "'^' = the method already met it at the cheapest setting" in printed


def test_h2c_evaluate_cli_refuses_unknown_clips_and_methods(tmp_path, capsys):
    from how2compress_ros.evaluate_cli import CLIPS, EVAL_CLIPS, load_clip, main

    # refused before any model or footage is loaded (the model path does not exist)
    missing = str(tmp_path / "no-model")
    assert main(["--model", missing, "--clips", "carphone,lobby", "--out", str(tmp_path / "o")]) == 2
    assert "unknown clip(s) lobby" in capsys.readouterr().err
    assert main(["--model", missing, "--methods", "roi-magic", "--out", str(tmp_path / "o")]) == 2
    assert "unknown method(s) roi-magic" in capsys.readouterr().err
    assert main(["--model", missing, "--confirm", "-1", "--out", str(tmp_path / "o")]) == 2
    assert "--confirm and --neighbours must be >= 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown clip"):
        load_clip(str(tmp_path), "lobby")
    # the default clips are registered, and the long clip is not among the defaults
    assert set(EVAL_CLIPS) <= set(CLIPS) and "vtest-held-out" in set(CLIPS) - set(EVAL_CLIPS)


def test_evaluation_clips_are_held_out_from_the_committed_models_training_frames():
    import json
    import os
    import shlex

    from how2compress_ros.evaluate_cli import CLIPS, VALIDATION_CLIPS

    root = os.path.join(os.path.dirname(os.path.dirname(__file__)), "models", "how2compress")
    checked = validated = 0
    for model in os.listdir(root):
        with open(os.path.join(root, model, "config.json")) as f:
            argv = shlex.split(json.load(f)["trained_by"])
        videos = [os.path.basename(argv[i + 1]) for i, a in enumerate(argv) if a == "--video"]
        spans = [argv[i + 1] for i, a in enumerate(argv) if a == "--frames"]
        assert videos and len(spans) in (1, len(videos))
        for video, span in zip(videos, spans * len(videos) if len(spans) == 1 else spans):
            start, stop, *step = (int(x) for x in span.split(":"))
            trained = set(range(start, stop, step[0] if step else 1))
            for name, (file, first, count) in CLIPS.items():
                if file == video and name not in VALIDATION_CLIPS:
                    checked += 1
                    assert not trained & set(range(first, first + count)), f"{name} overlaps {model}'s training"
            if argv[0] == "h2c_train_sensitivity":
                # its validation clips are the tail each segment keeps out of training
                fraction = float(argv[argv.index("--val-fraction") + 1]) if "--val-fraction" in argv else 0.2
                span = sorted(trained)
                held_out = set(span[len(span) - round(fraction * len(span)):])
                for name, (file, first, count) in VALIDATION_CLIPS.items():
                    if file == video:
                        validated += 1
                        assert set(range(first, first + count)) <= held_out, f"{name} is not {model}'s validation"
    assert checked > 0 and validated > 0

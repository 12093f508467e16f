#!/usr/bin/env python3
"""Deliberate one-line breaks of the product, applied one at a time: for each, the tests named
beside it run, and the break must make them fail. Prints a table (caught / MISSED) and exits 1
if any break is missed. The working tree is restored after every break (and on Ctrl-C).

    tools/ros_env.sh python tools/mutation_check.py [--only SUBSTRING]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (what the break does, file, line as it is, line as broken, tests that must fail)
MUTATIONS = [
    # issue 27's list: breaks the suite used to miss
    ("link monitor latency margin 0", "offload_common/monitor/chooser.py",
     "            faster = lat(p_best) <= (1.0 - s.latency_margin) * lat(p_cur)",
     "            faster = lat(p_best) <= lat(p_cur)",
     ["test/test_link_monitor_lib.py", "test/test_latency_calibration.py"]),
    ("link monitor accuracy margin 0", "offload_common/monitor/chooser.py",
     "            more_accurate = best.accuracy >= cur.accuracy + s.accuracy_margin",
     "            more_accurate = best.accuracy >= cur.accuracy",
     ["test/test_link_monitor_lib.py", "test/test_latency_calibration.py"]),
    ("re-entry dwell not capped at max_dwell_s", "offload_common/monitor/chooser.py",
     "        return min(s.max_dwell_s, s.min_dwell_s * 2 ** n)", "        return s.min_dwell_s * 2 ** n",
     ["test/test_link_monitor_lib.py"]),
    ("ApproxBit codebook randomised", "approxbit_ros/codec/binary_codec.py",
     "        y = torch.einsum(\"dk,bkthw->bdthw\", self.codebook, z.to(self.codebook.dtype))",
     "        y = torch.einsum(\"dk,bkthw->bdthw\", torch.randn_like(self.codebook), z.to(self.codebook.dtype))",
     ["test/test_approxbit_codec.py::test_codebook_is_the_first_decoding_step"]),
    ("ApproxBit CRC check disabled", "approxbit_ros/codec/wire.py",
     "        if zlib.crc32(self.data) != self.crc32:", "        if False:",
     ["test/test_approxbit_codec.py", "test/test_approxbit_pipeline.py"]),
    ("H.264 CRC check disabled", "how2compress_ros/codec/decoder.py",
     "        if crc32 is not None and zlib.crc32(data) != crc32:", "        if False:",
     ["test/test_h264_codec.py"]),
    ("QP map ignored by the encoder", "how2compress_ros/codec/encoder.py",
     "            pic.prop.quant_offsets = self._offsets.ctypes.data_as(ctypes.POINTER(ctypes.c_float))",
     "            pass",
     ["test/test_h264_codec.py"]),
    ("stale frames not dropped at the edge", "offload_common/nodes/work_queue.py",
     "            q.get_nowait()\n            dropped = 1", "            dropped = 0",
     ["test/test_work_queue.py"]),
    ("h2c codec field not checked", "how2compress_ros/pipeline.py",
     "        if codec != \"h264\":", "        if False:",
     ["test/test_h2c_hostile_units.py"]),
    ("h2c_server publishes no decoded_image", "how2compress_ros/nodes/server_node.py",
     "        if self.p.publish_decoded_image:", "        if False:",
     ["test/test_servers_under_attack.py::test_h2c_server_publishes_the_decoded_picture_and_a_truthful_receipt_per_payload"]),
    ("HOG score threshold ignored", "how2compress_ros/detectors/factory.py",
     "                for (x, y, w, h), s in zip(rects, np.ravel(weights)) if s >= self.score_threshold]",
     "                for (x, y, w, h), s in zip(rects, np.ravel(weights))]",
     ["test/test_detectors.py::test_hog_detector_finds_people_in_real_footage"]),
    ("ApproxBit switches halfway through a clip", "approxbit_ros/pipeline.py",
     "        codes = rt.transmitted(c, feats)",
     "        codes = rt.transmitted(self.configs.configurations.get(self.config_id, c), feats)",
     ["test/test_approxbit_pipeline.py::test_a_configuration_switch_during_a_clip_applies_from_the_next_clip"]),
    ("keyframe requests not rate-limited", "how2compress_ros/nodes/server_node.py",
     "        if now - last < self.p.keyframe_request_interval_s * 1e9:", "        if False:",
     ["test/test_servers_under_attack.py::test_keyframe_requests_are_rate_limited_and_only_for_streams_served"]),
    ("result_reporter's answer beside the label dropped", "offload_common/nodes/result_reporter.py",
     "                                  f\"{self._answer_text()}\")", "                                  f\"\")",
     ["test/test_result_reporter.py"]),
    ("link monitor ignores rate reports", "offload_common/nodes/link_monitor.py",
     "        self.estimator.on_external_rate(float(msg.data), self.get_clock().now().nanoseconds)", "        pass",
     ["test/test_link_monitor_nodes.py::test_rate_reports_receipts_as_liveness_interface_goodput_and_diagnostics"]),
    ("camera_source ground-truth stamps not the images'", "offload_common/nodes/camera_source.py",
     "            self.truth.write(f\"{stamp.sec * 1_000_000_000 + stamp.nanosec} {frame.index} {frame.label}\\n\")",
     "            self.truth.write(f\"{stamp.sec * 1_000_000_000} {frame.index} {frame.label}\\n\")",
     ["test/test_nodes_camera.py::test_frame_id_and_ground_truth_log"]),
    ("scheduler never plays its SLA schedule", "offload_common/nodes/sla_scheduler.py",
     "        if self.schedule:\n            self.create_timer(0.05, self._play)",
     "        if False:\n            self.create_timer(0.05, self._play)",
     ["test/test_sla_scheduler.py"]),
    ("map_reuse ignored (a map every frame)", "how2compress_ros/pipeline.py",
     "            if self._levels is None or self._map_age + 1 >= self.settings.map_reuse:",
     "            if True:",
     ["test/test_h2c_pipeline.py::test_map_reuse_runs_the_emphasis_model_every_nth_frame"]),
    ("H.264 baseline sends a GOP of one frame (all intra)", "approxbit_ros/baselines.py",
     "    ctx.gop_size = len(frames)", "    ctx.gop_size = 1",
     ["test/test_approxbit_pipeline.py::test_profiler_table_holds_every_configuration_and_the_baselines",
      "test/test_approxbit_pipeline.py::test_h264_baseline_round_trips_a_clip_one_packet_per_frame"]),
    # issue 26's checks
    ("stamps ahead of the server clock accepted", "offload_common/payload_checks.py",
     "            if lead_s > lim.max_stamp_lead_s:", "            if False:",
     ["test/test_payload_checks.py"]),
    ("stamps older than max_stamp_age_s accepted", "offload_common/payload_checks.py",
     "            if lim.max_stamp_age_s and age_s > lim.max_stamp_age_s:", "            if False:",
     ["test/test_payload_checks.py"]),
    ("sequence bombs accepted", "offload_common/payload_checks.py",
     "        if seq - last.seq - 1 > allowed:", "        if False:",
     ["test/test_payload_checks.py"]),
    ("streams unbounded", "offload_common/payload_checks.py",
     "            if len(self._streams) >= lim.max_streams:", "            if False:",
     ["test/test_payload_checks.py"]),
    ("idle streams never expire", "offload_common/payload_checks.py",
     "        cutoff = self._clock() - self.limits.idle_timeout_s", "        cutoff = -1e300",
     ["test/test_payload_checks.py", "test/test_h2c_hostile_units.py"]),
    ("ApproxBit feature shape not checked", "approxbit_ros/pipeline.py",
     "        self._expect(shape == wire.code_shape and fs == wire.feature_shape, \"shape\",",
     "        self._expect(True, \"shape\",",
     ["test/test_approxbit_hostile_payloads.py"]),
    ("ApproxBit byte count not checked", "approxbit_ros/pipeline.py",
     "        self._expect(data_len == wire.data_bytes, \"size\",", "        self._expect(True, \"size\",",
     ["test/test_approxbit_hostile_payloads.py"]),
    ("NaN float payloads accepted", "approxbit_ros/pipeline.py",
     "        if c.kind != \"binary\":", "        if False:",
     ["test/test_approxbit_hostile_payloads.py"]),
    ("ApproxBit bit order not checked", "approxbit_ros/pipeline.py",
     "        self._expect(bit_order == BIT_ORDER_MSB_FIRST, \"fields\", f\"bit_order {bit_order} (only MSB-first is "
     "defined)\")", "        pass",
     ["test/test_approxbit_hostile_payloads.py"]),
    ("SPS picture size not compared with the message", "how2compress_ros/pipeline.py",
     "            if (sps.width, sps.height) != (width, height):", "            if False:",
     ["test/test_h2c_hostile_units.py"]),
    ("max_frame_pixels not enforced", "how2compress_ros/pipeline.py",
     "        if width * height > self.max_frame_pixels:", "        if False:",
     ["test/test_h2c_hostile_units.py"]),
    ("decoder's own pixel limit not set", "how2compress_ros/codec/decoder.py",
     "            options[\"max_pixels\"] = str(self.max_pixels)", "            pass",
     ["test/test_h2c_hostile_units.py"]),
    ("a unit dropped waiting for a keyframe reported decoded", "how2compress_ros/pipeline.py",
     "            return DecodeOutcome([], False, True, decode_ms)", "            return DecodeOutcome([], True, True, decode_ms)",
     ["test/test_h2c_hostile_units.py"]),
    ("SPS parser ignores frame cropping", "how2compress_ros/codec/sps.py",
     "    w = coded_w - unit_x * (crop[0] + crop[1])", "    w = coded_w",
     ["test/test_h2c_hostile_units.py"]),
    ("payload tags not verified", "offload_common/nodes/payload_signing.py",
     "    return keys.verify(msg.meta.auth_key_id, bytes(msg.meta.auth_tag), signed_bytes(msg))", "    return None",
     ["test/test_payload_auth.py", "test/test_servers_under_attack.py"]),
    ("float32 fields tagged at double width", "offload_common/nodes/payload_signing.py",
     "        out += struct.pack(\"<f\", value)", "        out += struct.pack(\"<d\", value)",
     ["test/test_payload_auth.py"]),
    ("a key file others can read accepted", "offload_common/payload_auth.py",
     "        if mode & (stat.S_IRWXG | stat.S_IRWXO):", "        if False:",
     ["test/test_payload_auth.py"]),
    ("no load shedding: every item waits", "offload_common/nodes/work_queue.py",
     "            old = self._pending.pop(stream_id, None)", "            old = None",
     ["test/test_work_queue.py"]),
    ("skipped payloads not reported in the result", "offload_common/nodes/payloads.py",
     "    latency.server_skipped = int(min(server_skipped, 2**32 - 1))", "    latency.server_skipped = 0",
     ["test/test_h2c_nodes.py::test_detections_match_library_and_corrupt_unit_is_survived"]),
    ("HOG run on images smaller than its window", "how2compress_ros/detectors/factory.py",
     "        if rgb.shape[0] < win_h or rgb.shape[1] < win_w:", "        if False:",
     ["test/test_detectors.py"]),
    ("parameter ranges not enforced", "offload_common/nodes/params.py",
     "    if spec.range is not None:\n        lo, hi = spec.range", "    if False:\n        lo, hi = spec.range",
     ["test/test_nodes_camera.py"]),
    ("a malformed --params-file prints a traceback", "offload_common/nodes/runner.py",
     "    except Exception as exc:  # a malformed --params-file, bad --ros-args: rcl says why, in one message",
     "    except ZeroDivisionError as exc:",
     ["test/test_node_startup.py::test_every_user_fixable_start_up_error_is_one_fatal_line"]),
    ("an unreadable video found only at the first frame", "offload_common/nodes/camera_source.py",
     "                                  height=self.p.height, max_frames=self.p.max_frames).open()",
     "                                  height=self.p.height, max_frames=self.p.max_frames)",
     ["test/test_node_startup.py::test_every_user_fixable_start_up_error_is_one_fatal_line"]),
    ("model configs not checked against the weights", "offload_common/model_folder.py",
     "    if wanted > held:", "    if False:",
     ["test/test_node_startup.py::test_every_user_fixable_start_up_error_is_one_fatal_line"]),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="run the breaks whose description contains this")
    args = ap.parse_args()
    rows, missed = [], 0
    for what, path, line, broken, tests in MUTATIONS:
        if args.only not in what:
            continue
        full = os.path.join(ROOT, path)
        original = open(full).read()
        if original.count(line) != 1:
            rows.append((what, path, "NOT APPLIED (line not found once)", 0.0))
            missed += 1
            continue
        t = time.monotonic()
        try:
            with open(full, "w") as f:
                f.write(original.replace(line, broken))
            proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                                  cwd=ROOT, capture_output=True, text=True, timeout=900)
        finally:
            with open(full, "w") as f:
                f.write(original)
        caught = proc.returncode != 0
        missed += not caught
        rows.append((what, path, "caught" if caught else "MISSED", time.monotonic() - t))
        print(f"{'caught' if caught else 'MISSED'}: {what}", flush=True)
    print("\n| break | file | result | s |\n|---|---|---|---|")
    for what, path, result, secs in rows:
        print(f"| {what} | `{path}` | {result} | {secs:.0f} |")
    print(f"\n{len(rows) - missed} of {len(rows)} breaks caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

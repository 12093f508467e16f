"""ApproxBit server against hostile payloads: a feature shape within the old generic size limit
but not the configuration's (e.g. 16x256x256, which used to cost seconds and GB) is refused
before any model runs; float payloads holding NaN/Inf are refused; the exact byte count is
required; a fuzz run of mutated fields is rejected with a reason every time without running the
models, and the server then serves the next valid payload."""
import os
import zlib

import numpy as np
import pytest
import torch

from approxbit_ros.configurations import ConfigurationSet
from approxbit_ros.data.synthetic_actions import SyntheticActions
from approxbit_ros.pipeline import ApproxBitEdge, ApproxBitServer
from offload_common.payload_checks import PayloadRejected

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKBONE = os.path.join(ROOT, "models", "approxbit", "cnn3d-actions")


@pytest.fixture(scope="module")
def configs():
    torch.set_num_threads(2)
    return ConfigurationSet.from_pretrained(BACKBONE)


@pytest.fixture(scope="module")
def clip():
    return SyntheticActions("test", 13)[3][0]


@pytest.fixture
def server(configs, monkeypatch):
    s = ApproxBitServer(configs)
    s.models_run = 0
    serve = s.serve

    def counting(p):
        s.models_run += 1
        return serve(p)

    monkeypatch.setattr(s, "serve", counting)
    return s


def fields_of(configs, clip, cid):
    return ApproxBitEdge(configs, cid).process(clip).wire_fields(configs.name)


def test_the_exact_shapes_come_from_the_configurations(configs):
    s = ApproxBitServer(configs)
    w = s.wire_shapes["cnn3d/o2/enc/k4"]
    assert w.code_shape[0] == 4 and w.data_bytes == (int(np.prod(w.code_shape)) + 7) // 8
    raw = s.wire_shapes["cnn3d/o2/float32"]
    assert raw.data_bytes == 4 * int(np.prod(raw.code_shape)) and raw.code_shape[1:] == raw.feature_shape


@pytest.mark.parametrize("cid", ["cnn3d/o1/noenc/k8", "cnn3d/o2/float32"])
def test_a_plausible_but_wrong_feature_shape_is_refused_before_any_model(configs, clip, server, cid):
    good = fields_of(configs, clip, cid)
    k = good["shape"][0]
    big = [16, 256, 256]
    n = k * int(np.prod(big))
    data = bytes((n + 7) // 8) if good["encoding"] == 0 else bytes(4 * n)
    with pytest.raises(PayloadRejected) as err:
        server.handle("var", 0, **{**good, "shape": [k] + big, "feature_shape": big, "data": data,
                                   "crc32": zlib.crc32(data)})
    assert err.value.reason in ("shape", "size") and server.models_run == 0
    assert server.handle("var", 0, **good).prediction.label and server.models_run == 1


def test_float_payloads_must_be_finite(configs, clip, server):
    good = fields_of(configs, clip, "cnn3d/o2/float32")
    values = np.frombuffer(good["data"], "<f4").copy()
    for bad in (np.nan, np.inf, -np.inf):
        v = values.copy()
        v[7] = bad
        data = v.tobytes()
        with pytest.raises(PayloadRejected) as err:
            server.handle("var", 0, **{**good, "data": data, "crc32": zlib.crc32(data)})
        assert err.value.reason == "nonfinite"
    assert server.models_run == 0 and server.counters.reasons == {"nonfinite": 3}
    res = server.handle("var", 0, **good)
    assert np.isfinite(res.prediction.score)


def test_the_exact_byte_count_is_required(configs, clip, server):
    good = fields_of(configs, clip, "cnn3d/o2/enc/k4")
    longer = good["data"] + b"\0"
    with pytest.raises(PayloadRejected) as err:
        server.handle("var", 0, **{**good, "data": longer, "crc32": zlib.crc32(longer)})
    assert err.value.reason == "size"


def test_fuzzed_fields_are_rejected_with_a_reason_and_no_model_runs(configs, clip, server):
    rng = np.random.default_rng(11)
    good = {cid: fields_of(configs, clip, cid) for cid in ("cnn3d/o1/enc/k4", "cnn3d/o2/noenc/k8",
                                                             "cnn3d/o2/float32")}
    mutations = [
        lambda f: {"shape": [int(x) for x in rng.integers(0, 2**31, int(rng.integers(0, 6)))]},
        lambda f: {"feature_shape": [int(x) for x in rng.integers(0, 4096, int(rng.integers(0, 5)))]},
        lambda f: {"shape": [f["shape"][0], *(2 * s for s in f["shape"][1:])]},
        lambda f: {"data": rng.bytes(int(rng.integers(0, 3 * len(f["data"]) + 2)))},
        lambda f: {"data": f["data"][: int(rng.integers(0, len(f["data"])))]},
        lambda f: {"encoding": int(rng.integers(0, 256))},
        lambda f: {"codebook_size": int(rng.integers(0, 65536))},
        lambda f: {"offload_index": int(rng.integers(0, 65536))},
        lambda f: {"config_id": "".join(chr(int(c)) for c in rng.integers(32, 127, int(rng.integers(0, 300))))},
        lambda f: {"format_version": int(rng.integers(2, 65536))},
        lambda f: {"crc32": int(rng.integers(0, 2**32))},
        lambda f: {"bit_order": int(rng.integers(1, 256))},
    ]
    reasons = set()
    seq = 0
    for i in range(600):
        f = good[list(good)[i % 3]]
        change = mutations[i % len(mutations)](f)
        if change.get("data") is not None and "crc32" not in change and rng.random() < 0.5:
            change["crc32"] = zlib.crc32(change["data"])
        bad = {**f, **change}
        if all(bad[k] == f.get(k) for k in change):
            continue                                           # a mutation that happened to change nothing
        with pytest.raises(PayloadRejected) as err:
            server.handle("var", seq, **bad)
        reasons.add(err.value.reason)
    assert server.models_run == 0
    assert {"shape", "size", "payload", "encoding", "fields", "config", "version"} <= reasons
    for cid, f in good.items():                                 # and the next valid payloads are served
        seq += 1
        assert server.handle("var", seq, **f).prediction.label
    assert server.counters.accepted == 3 and server.counters.lost == 0

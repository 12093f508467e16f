"""Entropy coding of ApproxBit's binary codes (approxbit_ros/codec/entropy.py): bit-exact round
trips for both model kinds on structured, random, all-zero and all-one codes; hostile coded data
(random, truncated, padded, partial words, another model's) refused with a reason; the edge never
sends more than packing; the server decodes coded payloads of the committed configurations into
the same prediction as packed ones."""
import os
import zlib

import numpy as np
import pytest

from approxbit_ros.codec.entropy import BitContextModel, contexts, fit_entropy_model, fit_table
from approxbit_ros.codec.wire import (ENCODING_BITS, ENCODING_RANGE_CODED, BinaryPayload, PayloadError,
                                      pack_bits)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKBONE = os.path.join(ROOT, "models", "approxbit", "cnn3d-actions")


def correlated_codes(n, shape, seed=0, flip=0.08):
    """Codes like a video feature's: a per-position bias, and each T slice a noisy copy of the last."""
    k, t, h, w = shape
    bias = np.random.default_rng(99).uniform(0.05, 0.95, (k, 1, h, w))   # the configuration's, in every split
    rng = np.random.default_rng(seed)
    first = rng.uniform(size=(n, k, 1, h, w)) < bias
    out = [first]
    for _ in range(t - 1):
        out.append(out[-1] ^ (rng.uniform(size=first.shape) < flip))
    return np.concatenate(out, 2).astype(np.uint8)


@pytest.fixture(scope="module")
def fitted():
    shape = (5, 8, 7, 5)                           # odd sizes, so no axis is a power of two
    train, val = correlated_codes(600, shape, 1), correlated_codes(100, shape, 2)
    return shape, fit_entropy_model(train, val)


def test_contexts_name_the_previous_bit_on_each_axis():
    b = np.zeros((2, 3, 3, 3), np.uint8)
    b[1, 1, 1, 1] = 1
    c = contexts(b)
    assert c[1, 1, 1, 2] == 8 and c[1, 1, 2, 1] == 4 and c[1, 2, 1, 1] == 2
    assert c.sum() == 8 + 4 + 2                    # K has no next element here: nothing else sees it
    b[0, 1, 1, 1] = 1
    assert contexts(b)[1, 1, 1, 1] == 1


def test_context_model_wins_on_validation_and_codes_smaller(fitted):
    shape, fit = fitted
    assert fit.model.kind == "context"
    static = next(c for c in fit.candidates if c["kind"] == "static")
    assert min(c["val_ideal_bytes"] for c in fit.candidates if c["kind"] == "context") < 0.8 * static["val_ideal_bytes"]
    test = correlated_codes(50, shape, 3)
    sizes = [len(fit.model.encode(x)) for x in test]
    assert np.mean(sizes) < 0.6 * fit.model.packed_bytes
    # the real coder is within a few bytes of the ideal code length
    assert abs(np.mean(sizes) - fit.model.code_length_bits(test).mean() / 8) < 8


@pytest.mark.parametrize("kind", ["static", "context"])
@pytest.mark.parametrize("share", [False, True])
def test_round_trip_is_bit_exact(kind, share):
    shape = (4, 8, 6, 5)
    train = correlated_codes(300, shape, 4, flip=0.02)
    model = BitContextModel(kind, shape, fit_table(train, kind, 2.0, share))
    rng = np.random.default_rng(5)
    cases = list(correlated_codes(20, shape, 6, flip=0.02)) + [rng.integers(0, 2, shape, dtype=np.uint8) for _ in range(20)]
    cases += [np.zeros(shape, np.uint8), np.ones(shape, np.uint8)]
    coded = 0
    for bits in cases:
        payload = BinaryPayload.from_bits(bits, model)
        assert len(payload.data) <= len(pack_bits(bits))
        assert np.array_equal(payload.decode(model), bits)
        if payload.encoding == ENCODING_RANGE_CODED:
            coded += 1
            assert np.array_equal(model.decode(payload.data), bits)
    assert coded >= 15                             # most structured ones at least are coded


def test_incompressible_codes_are_sent_packed():
    """A model that expects the opposite bits would code larger than packing: the edge falls back."""
    shape = (2, 4, 4, 4)
    model = BitContextModel("static", shape, np.full((1,) + shape, 65000, np.uint16))   # P(1) ~ 0.99
    bits = np.zeros(shape, np.uint8)
    assert len(model.encode(bits)) > (bits.size + 7) // 8
    p = BinaryPayload.from_bits(bits, model)
    assert p.encoding == ENCODING_BITS and p.data == pack_bits(bits)
    assert np.array_equal(p.decode(model), bits)


def test_hostile_coded_data_is_refused_with_a_reason(fitted):
    shape, fit = fitted
    model = fit.model
    bits = correlated_codes(1, shape, 7)[0]
    data = model.encode(bits)
    assert len(data) % 4 == 0 and len(data) < model.packed_bytes
    refused = {                                    # data -> what the reason names
        data[:-4]: "truncated",
        data[:-1]: "whole number of 32-bit words",
        b"": "whole number of 32-bit words",
        data * (model.packed_bytes // len(data) + 1): "sends those packed",
    }
    for bad, reason in refused.items():
        with pytest.raises(PayloadError, match=reason):
            model.decode(bad)
    # a word appended after a complete code: refused, or ignored (the bits are the sender's own)
    try:
        assert np.array_equal(model.decode(data + data[:4]), bits)
    except PayloadError:
        pass
    # random data of legal length: refused or decoded into *some* bits of the right shape, never a crash
    rng = np.random.default_rng(8)
    outcomes = {"refused": 0, "decoded": 0}
    for _ in range(300):
        bad = rng.integers(0, 256, 4 * rng.integers(1, model.packed_bytes // 4), dtype=np.uint8).tobytes()
        try:
            out = model.decode(bad)
        except PayloadError:
            outcomes["refused"] += 1
        else:
            assert out.shape == shape and out.dtype == np.uint8 and out.max() <= 1
            outcomes["decoded"] += 1
    assert outcomes["refused"] > 150, outcomes


def test_crc_is_seeded_with_the_model_fingerprint(fitted):
    shape, fit = fitted
    other = BitContextModel("static", shape, fit_table(correlated_codes(200, shape, 9), "static", 0))
    bits = correlated_codes(1, shape, 10)[0]
    payload = BinaryPayload.from_bits(bits, fit.model)
    assert payload.encoding == ENCODING_RANGE_CODED
    assert payload.crc32 != zlib.crc32(payload.data)
    with pytest.raises(PayloadError, match="another entropy model"):
        payload.decode(other)
    with pytest.raises(PayloadError, match="without an entropy model"):
        payload.decode(None)


def test_bad_tables_and_files_are_refused(tmp_path, fitted):
    shape, fit = fitted
    with pytest.raises(ValueError, match="does not fit"):
        BitContextModel("context", (5, 8, 7, 4), fit.model.table)
    with pytest.raises(ValueError, match="1..65535"):
        BitContextModel("static", shape, np.zeros((1,) + shape, np.uint16))
    path = tmp_path / "m.entropy.safetensors"
    fit.model.save(str(path))
    back = BitContextModel.load(str(path))
    assert back.fingerprint == fit.model.fingerprint and back.kind == fit.model.kind
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not an entropy model"):
        BitContextModel.load(str(tmp_path / "bad.safetensors"))


def committed_models():
    import glob

    return sorted(glob.glob(os.path.join(BACKBONE, "configs", "*.entropy.safetensors")))


def test_server_decodes_coded_payloads_into_the_packed_prediction():
    """The committed cnn3d configurations: every binary one has an entropy model; for a test clip
    the coded payload is smaller and the server's prediction equals the packed payload's."""
    import torch

    from approxbit_ros.configurations import ConfigurationSet
    from approxbit_ros.data.synthetic_actions import SyntheticActions
    from approxbit_ros.pipeline import ApproxBitEdge, ApproxBitServer

    torch.set_num_threads(2)
    configs = ConfigurationSet.from_pretrained(BACKBONE)
    binary = [cid for cid, c in configs.configurations.items() if c.kind == "binary"]
    assert binary and all(configs.configurations[c].entropy_model is not None for c in binary)
    coded_edge, packed_edge = ApproxBitEdge(configs, binary[0]), ApproxBitEdge(configs, binary[0], entropy_coding=False)
    server = ApproxBitServer(configs)
    frames = SyntheticActions("test", 13)[5][0]
    seq = 0
    for cid in binary:
        coded_edge.set_config(cid)
        packed_edge.set_config(cid)
        a, b = coded_edge.process(frames), packed_edge.process(frames)
        assert a.payload.encoding == ENCODING_RANGE_CODED and b.payload.encoding == ENCODING_BITS
        assert len(a.payload.data) < len(b.payload.data)
        ra = server.handle("s", seq, **a.wire_fields(configs.name))
        rb = server.handle("s", seq + 1, **b.wire_fields(configs.name))
        seq += 2
        assert ra.prediction.topk_ids == rb.prediction.topk_ids
        assert ra.prediction.topk_scores == pytest.approx(rb.prediction.topk_scores, abs=1e-6)
    # hostile coded payloads of a real configuration: refused with a reason, then service goes on
    from offload_common.payload_checks import PayloadRejected

    coded_edge.set_config(binary[0])
    good = coded_edge.process(frames).wire_fields(configs.name)
    for change, reason in ((dict(data=good["data"][:-4]), "payload"), (dict(data=good["data"][:-1]), "size"),
                           (dict(data=good["data"] + bytes(4000)), "size"),
                           (dict(crc32=good["crc32"] ^ 1), "payload")):
        with pytest.raises(PayloadRejected) as exc:
            server.handle("s", seq, **{**good, **change})
        assert exc.value.reason == reason, (change.keys(), exc.value)
    assert server.handle("s", seq, **good).prediction.topk_ids
    f32 = next(cid for cid, c in configs.configurations.items() if c.kind == "float32")
    with pytest.raises(PayloadRejected) as exc:
        server.check(format_version=1, config_id=f32, backbone=configs.name, offload_index=configs.get(f32).offload_point,
                     spatial_encoder=False, codebook_size=configs.get(f32).codebook_size, encoding=ENCODING_RANGE_CODED,
                     shape=[1], feature_shape=[1], data_len=8)
    assert exc.value.reason == "encoding"

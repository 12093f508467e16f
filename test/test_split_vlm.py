"""LLaVA-OneVision split inside its vision encoder (approxbit_ros/vlm/split_llava.py), on a tiny
random model the test writes as a local snapshot: the split edge + server compute exactly the
model's own video features and language-model logits; greedy answers through float16 tokens
(DNN-Surgery's transmission) equal the float32 ones; the token grid travels as a (D, F, h, w)
map and back unchanged; bad split layers are refused."""
import json

import numpy as np
import pytest
import torch

from approxbit_ros.vlm.tiny_model import write_tiny_llava

QUESTION = "which way does the object move ?"


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    return write_tiny_llava(str(tmp_path_factory.mktemp("tiny-llava-ov")))


@pytest.fixture(scope="module")
def split(snapshot):
    from approxbit_ros.vlm.split_llava import SplitLlavaOnevision

    return SplitLlavaOnevision.from_pretrained(snapshot, split_layer=2)


def frames(seed=0, count=4):
    return np.random.default_rng(seed).integers(0, 256, (count, 48, 64, 3), dtype=np.uint8)


def test_split_forward_equals_the_models_own_video_features_and_logits(split):
    pixels = split.preprocess(frames())
    assert pixels.shape == (1, 4, 3, 32, 32)
    tokens = split.edge_tokens(pixels)
    assert tokens.shape == (4, 16, 32)                    # 4 frames x 4x4 patches x width 32
    ours = split.server_video_features(tokens)
    theirs = split.model.get_video_features(pixels, return_dict=True).pooler_output
    assert ours.shape == theirs.shape == (1, 4 * 4 + 1, 32)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    # the unsplit model end to end on the same prompt: the same logits
    ids = split.prompt_ids(QUESTION, ours.shape[1])
    with torch.no_grad():
        unsplit = split.model(input_ids=ids, pixel_values_videos=pixels).logits
    torch.testing.assert_close(split.logits(ours, QUESTION), unsplit, rtol=1e-4, atol=1e-5)


def test_token_grid_travels_as_a_feature_map(split):
    tokens = split.edge_tokens(split.preprocess(frames(1)))
    fmap = split.tokens_to_map(tokens)
    assert fmap.shape == (1, 32, 4, 4, 4)                  # (1, D, F, h, w)
    assert torch.equal(split.map_to_tokens(fmap), tokens)


def test_greedy_answers_survive_float16_tokens(split):
    same = 0
    for seed in range(6):
        tokens = split.edge_tokens(split.preprocess(frames(seed)))
        a = split.answer(split.server_video_features(tokens), QUESTION, max_new_tokens=6)
        b = split.answer(split.server_video_features(tokens.half().float()), QUESTION, max_new_tokens=6)
        assert a.token_ids and len(a.token_ids) <= 6
        same += a.token_ids == b.token_ids
    assert same == 6


def test_split_layers_outside_the_encoder_are_refused(snapshot):
    from approxbit_ros.vlm.split_llava import SplitLlavaOnevision

    for bad in (0, 4, 9):
        with pytest.raises(ValueError, match="split_layer"):
            SplitLlavaOnevision.from_pretrained(snapshot, split_layer=bad)


def footage_samples(count, questions=(QUESTION, "what colour is the object ?")):
    import cv2

    from approxbit_ros.vlm.codec_training import VlmSample
    from footage import footage

    cap = cv2.VideoCapture(footage("vtest.avi"))
    frames = []
    for _ in range(count * 8):
        ok, bgr = cap.read()
        frames.append(cv2.resize(np.ascontiguousarray(bgr[:, :, ::-1]), (48, 36)))
    return [VlmSample(np.stack(frames[i * 8:(i + 1) * 8:2]), questions[i % len(questions)]) for i in range(count)]


def test_codec_trained_label_free_lowers_reconstruction_error_and_resumes(split, tmp_path):
    from approxbit_ros.vlm.codec_training import VlmCodec, answer_agreement, teacher_answers, train_vlm_codec

    samples = footage_samples(6)
    teacher_answers(split, samples, max_new_tokens=3)
    assert all(1 <= len(s.answer_ids) <= 3 for s in samples)
    state = str(tmp_path / "codec.pt")
    codec = VlmCodec.build(channels=32, codebook_size=16, spatial_encoder=False)
    first = train_vlm_codec(split, codec, samples, steps=30, lr=2e-3, state_path=state, progress=False)
    assert len(first) == 30 and all(np.isfinite([h["task"], h["recon"], h["binary"]]).all() for h in first)
    resumed = VlmCodec.build(channels=32, codebook_size=16, spatial_encoder=False, seed=1)
    history = train_vlm_codec(split, resumed, samples, steps=60, lr=2e-3, state_path=state, progress=False)
    assert len(history) == 60 and history[:30] == first             # resumed at step 30, not restarted
    recon = [h["recon"] for h in history]
    assert np.mean(recon[-10:]) < 0.7 * np.mean(recon[:10])
    assert 0.0 <= answer_agreement(split, resumed, samples, 3) <= 1.0
    assert answer_agreement(split, None, samples, 3) == 1.0                # float16 tokens: the same answers


def test_train_vlm_codecs_cli_writes_loadable_configurations(snapshot, tmp_path, capsys):
    from approxbit_ros.vlm.codec_training import VlmCodec
    from approxbit_ros.vlm.train_cli import main
    from footage import footage

    questions = tmp_path / "questions.txt"
    questions.write_text("# templated\nwhich way does the object move ?\nwhat colour is the object ?\n")
    out = tmp_path / "configs"
    args = ["--snapshot", snapshot, "--footage", footage("vtest.avi"), "--questions", str(questions), "--out", str(out),
            "--split-layer", "2", "--configs", "8:noenc,8:enc", "--frames", "4", "--frame-stride", "2",
            "--clip-step", "8", "--max-frames-per-video", "400", "--steps", "20", "--eval-every", "10",
            "--max-new-tokens", "3"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [c["config"] for c in summary["configs"]] == ["k8-noenc", "k8-enc"] and summary["teacher_histogram"]
    assert not list((out / "state").glob("*.pt"))           # finished configurations leave no training state
    codec, meta = VlmCodec.load(str(out / "k8-enc.json"))
    assert (meta["split_layer"], meta["codebook_size"], meta["spatial_encoder"]) == (2, 8, True)
    assert 0.0 <= meta["test_agreement"] <= 1.0 and meta["best_step"] in (10, 20)
    # the saved codec is the trained one: the same bits as a fresh build would not give
    fresh = VlmCodec.build(32, 8, True)
    x = torch.randn(1, 32, 4, 4, 4)
    assert not torch.equal(codec.encoder.encode_bits(x), fresh.encoder.encode_bits(x)) or \
        not torch.equal(codec.decoder.codebook, fresh.decoder.codebook)
    # the lookup table, on the same held-out clips and questions (read back from summary.json)
    from approxbit_ros.vlm.profile_cli import main as profile
    from offload_common.lookup_table import VQA_METRIC, LookupTable

    assert profile(["--snapshot", snapshot, "--codecs", str(out), "--pairs", "12", "--timing-pairs", "3"]) == 0
    lut = LookupTable.load(str(out / "lut_cpu.json"))
    assert lut.metric == VQA_METRIC and lut.stream_id == "var" and lut.meta["clip_frames"] == 4
    by_id = {e.config_id: e for e in lut.entries}
    assert list(by_id) == ["llava_onevision/o2/enc/k8", "llava_onevision/o2/noenc/k8", "llava_onevision/o2/float16",
                           "edge_only"]
    assert by_id["edge_only"].accuracy == 1.0 and by_id["edge_only"].bytes == 0
    assert by_id["llava_onevision/o2/float16"].accuracy == 1.0                   # float16 changes no answer here
    assert by_id["llava_onevision/o2/float16"].bytes == 4 * 16 * 32 * 2          # 4 frames x 16 tokens x 32 x fp16
    assert by_id["llava_onevision/o2/noenc/k8"].bytes == 4 * 16 * 8 / 8
    # through the wire, the same agreement as the codec's own round trip on those pairs gives
    import argparse

    from approxbit_ros.vlm.codec_training import answer_agreement, teacher_answers
    from approxbit_ros.vlm.split_llava import SplitLlavaOnevision
    from approxbit_ros.vlm.profile_cli import spread
    from approxbit_ros.vlm.train_cli import footage_samples

    split2 = SplitLlavaOnevision.from_pretrained(snapshot, split_layer=2)
    pairs = footage_samples(split2, summary["footage"], summary["questions"],
                            argparse.Namespace(**{k: summary[k] for k in ("frames", "frame_stride", "clip_step",
                                                                          "max_frames_per_video", "seed")}))["test"]
    pairs = spread(pairs, 12)
    teacher_answers(split2, pairs, 3)
    for name in ("k8-noenc", "k8-enc"):
        e = by_id[f"llava_onevision/o2/{name.replace('k8-', '')}/k8"]
        assert e.accuracy == answer_agreement(split2, VlmCodec.load(str(out / f"{name}.json"))[0], pairs, 3), name
    for e in lut.entries:
        assert e.extra["pairs"] == 12 and e.extra["agreement_lo"] <= e.accuracy <= e.extra["agreement_hi"]
        assert (e.server_ms > 0) != (e.config_id == "edge_only") and e.edge_ms > 0
    with pytest.raises(SystemExit):
        main(args[:-2] + ["--configs", "8:sideways"])
    assert "expected K:enc or K:noenc" in capsys.readouterr().err
    assert main(["--snapshot", str(tmp_path / "missing"), "--footage", footage("vtest.avi")]) == 2


@pytest.fixture(scope="module")
def vlm_set(snapshot):
    """The snapshot's configuration set with two (untrained) codecs at layer 2."""
    from approxbit_ros.configurations import load_configurations
    from approxbit_ros.vlm.codec_training import VlmCodec

    VlmCodec.build(32, 16, True).save(f"{snapshot}/approxbit", split_layer=2)
    VlmCodec.build(32, 8, False, seed=1).save(f"{snapshot}/approxbit", split_layer=2)
    configs = load_configurations(snapshot)
    configs.clip_frames, configs.clip_size = 4, 32
    return configs


def test_vlm_configurations_cross_the_wire_to_the_models_own_features_and_answers(vlm_set):
    """Edge payload -> server checks and decoding -> video features equal the unsplit path for
    float16 (to float16 rounding) and the codec's own round trip for the binary ones; greedy
    answers through float16 equal the whole model's; there is no classifier and no label."""
    from approxbit_ros.pipeline import ApproxBitEdge, ApproxBitServer
    from approxbit_ros.vlm.configurations import VlmAnswerer, clip_video_features

    assert vlm_set.ids == ["llava_onevision/o2/enc/k16", "llava_onevision/o2/noenc/k8", "llava_onevision/o2/float16",
                           "edge_only"] and vlm_set.labels == []
    server = ApproxBitServer(vlm_set)
    answerer = VlmAnswerer(vlm_set.backbone.split, max_new_tokens=5)
    sizes, same = {}, 0
    for seed in range(4):
        clip = frames(seed)
        whole = ApproxBitEdge(vlm_set, "edge_only").process(clip)
        assert whole.prediction is None and whole.payload is None
        want = answerer.answer(whole.final_map, QUESTION)
        assert 1 <= want.tokens <= 5 and 0.0 < want.score <= 1.0 and want.answer == want.candidates[0]
        for cid in vlm_set.ids[:-1]:
            out = ApproxBitEdge(vlm_set, cid).process(clip)
            sizes[cid] = len(out.payload.data)
            res = server.handle(cid, seed, **out.wire_fields(vlm_set.name))
            assert res.prediction is None
            torch.testing.assert_close(res.final_map, clip_video_features(vlm_set, cid, clip), rtol=1e-5, atol=1e-5)
            if cid.endswith("float16"):
                same += answerer.answer(res.final_map, QUESTION).answer == want.answer
    # 4 frames x 16 tokens x 32 channels: float16 2 bytes each; k16 with the encoder on a 2x2x2 grid, k8 1 bit each
    assert sizes == {"llava_onevision/o2/enc/k16": 16, "llava_onevision/o2/noenc/k8": 64,
                     "llava_onevision/o2/float16": 4096}
    assert same == 4


def test_vlm_server_refuses_hostile_payloads_before_the_model(vlm_set):
    import zlib

    from approxbit_ros.pipeline import ApproxBitEdge, ApproxBitServer, PayloadRejected

    server = ApproxBitServer(vlm_set)
    good = ApproxBitEdge(vlm_set, "llava_onevision/o2/float16").process(frames(0)).wire_fields(vlm_set.name)
    values = np.frombuffer(good["data"], "<f2").copy()
    values[7] = np.inf
    inf = dict(good, data=values.tobytes(), crc32=zlib.crc32(values.tobytes()))
    wider = dict(good, shape=[32, 8, 4, 4], feature_shape=[8, 4, 4])     # 8 frames where the server takes 4
    as32 = dict(good, encoding=2)                                         # float32 where float16 is sent
    for i, (bad, why) in enumerate([(inf, "finite"), (wider, "shape"), (as32, "encoding")]):
        with pytest.raises(PayloadRejected) as err:
            server.handle("hostile", i, **bad)
        assert err.value.reason == why or why in str(err.value), (why, err.value)
    assert server.counters.accepted == 0 and server.counters.rejected == 3


def test_vlm_codecs_must_match_the_snapshot_and_one_layer(snapshot, tmp_path):
    from approxbit_ros.vlm.codec_training import VlmCodec
    from approxbit_ros.vlm.configurations import VlmAnswerer, load_vlm_configurations
    from approxbit_ros.vqa.model import QuestionError

    mixed = tmp_path / "mixed"
    VlmCodec.build(32, 8, True).save(str(mixed), split_layer=2)
    VlmCodec.build(32, 16, True).save(str(mixed), split_layer=3)
    with pytest.raises(ValueError, match="split layers \\[2, 3\\]"):
        load_vlm_configurations(snapshot, str(mixed))
    other = tmp_path / "other"
    VlmCodec.build(32, 8, True).save(str(other), split_layer=2, snapshot_config_sha256="0123456789abcdef")
    with pytest.raises(ValueError, match="trained for another snapshot"):
        load_vlm_configurations(snapshot, str(other))
    with pytest.raises(ValueError, match="trained at layer 2"):
        load_vlm_configurations(snapshot, str(other), split_layer=3)
    bare = load_vlm_configurations(snapshot, str(tmp_path / "none"), split_layer=3)
    assert bare.ids == ["llava_onevision/o3/float16", "edge_only"]
    answerer = VlmAnswerer(bare.backbone.split)
    assert answerer.check_question("which way does the robot move ?") == ("robot",)
    for bad in ("  ", "x" * 3000):
        with pytest.raises(QuestionError):
            answerer.check_question(bad)


def test_vlm_profiler_scores_agreement_through_the_wire_as_the_codec_round_trip_does(vlm_set):
    """On clips whose answers differ (random frames), a codec that rebuilds nothing (decoder
    zeroed) must lose agreement, and every configuration's agreement must equal the no-wire
    round trip's (``answer_agreement``); float16 and edge-only agree fully."""
    import copy

    from approxbit_ros.vlm.codec_training import VlmCodec, VlmSample, answer_agreement
    from approxbit_ros.vlm.profiling import profile_vlm_configurations

    configs = copy.copy(vlm_set)
    configs.configurations = dict(vlm_set.configurations)
    broken = copy.deepcopy(configs.configurations["llava_onevision/o2/noenc/k8"])
    for p in broken.decoder.parameters():
        torch.nn.init.zeros_(p)
    broken.config_id = "llava_onevision/o2/noenc/k8-broken"
    configs.configurations[broken.config_id] = broken
    samples = [VlmSample(frames(seed)[:, :32, :32], QUESTION) for seed in range(10)]
    lut = profile_vlm_configurations(configs, samples, max_new_tokens=3, timing_pairs=2, progress=False)
    by_id = {e.config_id: e.accuracy for e in lut.entries}
    split = configs.backbone.split
    for s in samples:
        s.answer_ids = split.answer(split.server_video_features(split.edge_tokens(split.preprocess(s.frames))),
                                    s.question, 3).token_ids
    assert by_id["edge_only"] == by_id["llava_onevision/o2/float16"] == 1.0
    for cid, c in configs.configurations.items():
        if c.kind == "binary":
            assert by_id[cid] == answer_agreement(split, VlmCodec(c.encoder, c.decoder), samples, 3), cid
    assert by_id[broken.config_id] < 1.0, by_id

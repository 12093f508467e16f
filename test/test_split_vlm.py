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
    with pytest.raises(SystemExit):
        main(args[:-2] + ["--configs", "8:sideways"])
    assert "expected K:enc or K:noenc" in capsys.readouterr().err
    assert main(["--snapshot", str(tmp_path / "missing"), "--footage", footage("vtest.avi")]) == 2

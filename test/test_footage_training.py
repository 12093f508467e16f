"""The user's own recordings as ApproxBit training data (approxbit_ros/data/footage.py,
training/clip_data.py) and label-free codec training: recordings found recursively (videos and
bags, labels from folders or a CSV); time segments never shared between splits; clips decoded once
and cached; the frozen backbone's own logits as the target (KL), cross-entropy added only for
labelled clips; the epoch kept is the best on validation."""
import json
import os

import numpy as np
import pytest
import torch

from approxbit_ros.data.footage import SPLITS, UNLABELLED, FootageClips, FootageConfig, Recording, find_recordings


def write_video(path, frames, fps=10):
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.options = {"qp": "10"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def moving_square(n, shift, size=48, seed=0):
    """A bright square drifting ``shift`` px a frame over a textured background."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
    out = []
    for i in range(n):
        f = bg.copy()
        x = (8 + shift * i) % (size - 12)
        f[16:28, x:x + 12] = (250, 220, 40)
        out.append(f)
    return np.stack(out)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """Two class folders of 10 fps videos (12 s and 8 s) and a CSV naming the same labels."""
    root = tmp_path_factory.mktemp("footage")
    (root / "left").mkdir()
    (root / "right" / "deeper").mkdir(parents=True)
    write_video(root / "left" / "a.mp4", moving_square(120, -2, seed=1))
    write_video(root / "right" / "deeper" / "b.MKV", moving_square(80, 2, seed=2))
    (root / "notes.txt").write_text("not a video")
    (root / "labels.csv").write_text("path,label\nleft/a.mp4,left\nright/deeper/b.MKV,right\n")
    return root


def test_recordings_are_found_recursively_with_labels_from_folders_or_a_csv(recordings):
    found = find_recordings([str(recordings)])
    assert [os.path.basename(r.path) for r in found] == ["a.mp4", "b.MKV"] and all(r.label is None for r in found)
    assert [r.label for r in find_recordings([str(recordings)], "folders")] == ["left", "deeper"]
    assert [r.label for r in find_recordings([str(recordings)], str(recordings / "labels.csv"))] == ["left", "right"]
    with pytest.raises(FileNotFoundError):
        find_recordings([str(recordings / "missing")])
    with pytest.raises(ValueError, match="not a video"):
        find_recordings([str(recordings / "notes.txt")])
    (recordings / "partial.csv").write_text("left/a.mp4,left\n")
    with pytest.raises(ValueError, match="no label for 1 recordings"):
        find_recordings([str(recordings)], str(recordings / "partial.csv"))


def test_a_bag_folder_is_one_recording(tmp_path):
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    Header = ts.types["std_msgs/msg/Header"]
    with Writer(tmp_path / "run1", version=8, storage_plugin=StoragePlugin.MCAP) as w:
        w.add_connection("/x", Header.__msgtype__, typestore=ts)
    found = find_recordings([str(tmp_path)])
    assert [(os.path.basename(r.path), r.kind) for r in found] == [("run1", "bag")]


def test_time_segments_are_never_shared_between_splits_and_clips_stay_inside_one(recordings, tmp_path):
    cfg = FootageConfig(frames=8, size=32, frame_stride=2, segment_s=2.0, seed=3, eval_step=2)
    fc = FootageClips.load(find_recordings([str(recordings)], "folders"), cfg, cache_dir=str(tmp_path), progress=False)
    segs = [set(fc.segments[s]) for s in SPLITS]
    assert all(segs) and not (segs[0] & segs[1] or segs[0] & segs[2] or segs[1] & segs[2])
    assert sorted(segs[0] | segs[1] | segs[2]) == [(0, i) for i in range(6)] + [(1, i) for i in range(4)]
    seg_len = int(2.0 * 10)
    for split in SPLITS:
        assert fc.windows[split]
        for w in fc.windows[split]:
            first, last = w.start // seg_len, (w.start + cfg.span - 1) // seg_len
            assert first == last and (w.recording, first) in fc.segments[split]
            if split != "train":
                assert w.start % 2 == 0
    x, y = fc.batch("train", [0, 1])
    assert x.shape == (2, 8, 32, 32, 3) and x.dtype == np.uint8 and set(y) <= {0, 1}
    # every second frame: frame 2 of the clip is recording frame start + 4
    w = fc.windows["train"][0]
    np.testing.assert_array_equal(x[0, 2], fc.frames[w.recording][w.start + 4])
    # seeded: the same seed gives the same split, another seed another one
    again = FootageClips.load(fc.recordings, cfg, cache_dir=str(tmp_path), progress=False)
    assert again.segments == fc.segments
    other = FootageClips.load(fc.recordings, FootageConfig(frames=8, size=32, frame_stride=2, segment_s=2.0, seed=4),
                              cache_dir=str(tmp_path), progress=False)
    assert other.segments != fc.segments


def test_split_by_file_keeps_each_recording_whole(tmp_path):
    recs = []
    for i in range(6):
        write_video(tmp_path / f"r{i}.mp4", moving_square(24, 1 + i % 2, size=32, seed=i))
        recs.append(Recording(str(tmp_path / f"r{i}.mp4"), "video"))
    fc = FootageClips.load(recs, FootageConfig(frames=8, size=32, split_by="file"), progress=False)
    owner = {}
    for split in SPLITS:
        for r, _ in fc.segments[split]:
            assert owner.setdefault(r, split) == split
    assert sorted(owner) == list(range(6)) and set(owner.values()) == set(SPLITS)


def test_decoded_clips_are_cached(recordings, tmp_path, monkeypatch):
    recs = find_recordings([str(recordings)])
    cfg = FootageConfig(frames=4, size=16)
    first = FootageClips.load(recs, cfg, cache_dir=str(tmp_path), progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 2

    import offload_common.frame_sources as fs

    def no_decoding(self):
        raise AssertionError("decoded again instead of reading the cache")
        yield

    monkeypatch.setattr(fs.VideoFileSource, "__iter__", no_decoding)
    second = FootageClips.load(recs, cfg, cache_dir=str(tmp_path), progress=False)
    for a, b in zip(first.frames, second.frames):
        np.testing.assert_array_equal(a, b)


def test_label_free_loss_is_the_kl_to_the_backbone_plus_ce_for_labelled_clips():
    from approxbit_ros.codec.binary_codec import ApproxBitLoss

    torch.manual_seed(0)
    feats = torch.randn(4, 3, 2, 2, 2)
    xp = torch.randn(4, 2, 2, 2, 2)
    teacher = torch.randn(4, 5)
    unlabelled = torch.full((4,), UNLABELLED)
    loss = ApproxBitLoss(0.0, 0.0, temperature=2.0)
    same, parts = loss(teacher.clone(), unlabelled, feats, feats, xp, teacher_logits=teacher)
    assert abs(parts["task"]) < 1e-6
    other, parts = loss(torch.randn(4, 5), unlabelled, feats, feats, xp, teacher_logits=teacher)
    assert parts["task"] > 0.05
    labels = torch.tensor([1, UNLABELLED, 3, UNLABELLED])
    with_ce, parts_ce = loss(teacher.clone(), labels, feats, feats, xp, teacher_logits=teacher)
    ce = torch.nn.functional.cross_entropy(teacher[[0, 2]], labels[[0, 2]])
    assert parts_ce["task"] == pytest.approx(float(ce), rel=1e-5)
    with pytest.raises(ValueError, match="need a distillation temperature"):
        ApproxBitLoss(1.0, 1.0)(teacher, unlabelled, feats, feats, xp)


def test_label_free_training_on_recordings_keeps_the_best_validation_epoch(recordings, tmp_path):
    """A small 3D CNN as the frozen backbone, its codec trained on the two videos with no labels:
    every epoch is scored by agreement with the backbone on validation clips, the saved codec is
    the best epoch's (not the last), and a resumed run does not train again."""
    from approxbit_ros.backbones.cnn3d import Cnn3dBackbone, Cnn3dConfig
    from approxbit_ros.training.clip_data import FootageClipData
    from approxbit_ros.training.codec_training import (ApproxBitConfiguration, CodecTrainingConfig,
                                                       evaluate_configuration, train_configuration)

    torch.manual_seed(0)
    backbone = Cnn3dBackbone(Cnn3dConfig(num_classes=4)).eval()
    fc = FootageClips.load(find_recordings([str(recordings)]), FootageConfig(frames=16, size=64, segment_s=3.0),
                           cache_dir=str(tmp_path), progress=False)
    assert not fc.labelled
    cfg = CodecTrainingConfig(offload_point=1, codebook_size=4, spatial_encoder=True, epochs=3, clips_per_epoch=32,
                              batch_size=8, distill_temperature=2.0, keep_best=True, lr=3e-3)
    data = FootageClipData(fc, backbone, cfg.clips_per_epoch, batch_size=8)
    model = ApproxBitConfiguration.from_training_config(backbone, cfg)
    states = []
    ckpt = str(tmp_path / "ckpt" / "c.pt")
    hist = train_configuration(model, cfg, checkpoint=ckpt, progress=False, data=data,
                               on_epoch=lambda h: states.append({k: v.clone() for k, v in
                                                                 model.encoder.state_dict().items()}))
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert all(0 <= h["val_agree_top1"] <= 1 and h["val_kl_to_backbone"] >= 0 for h in hist)
    assert all("val_top1" not in h for h in hist)                   # no labels, no accuracy
    assert states[0]["compress.weight"].ne(states[2]["compress.weight"]).any()      # it trained
    best = int(np.argmax([h["val_agree_top1"] for h in hist]))
    for k, v in model.encoder.state_dict().items():
        torch.testing.assert_close(v, states[best][k])
    score = evaluate_configuration(model, "val", 0, data=data)
    assert score["agree_top1"] == pytest.approx(hist[best]["val_agree_top1"])
    assert len(train_configuration(model, cfg, checkpoint=ckpt, progress=False, data=data)) == 3

    # a validation score that peaks in the middle: the middle epoch is what remains
    scores = iter([0.4, 0.9, 0.2])
    real = data.evaluate
    data.evaluate = lambda *a, **k: {**real(*a, **k), "agree_top1": next(scores)}
    states.clear()
    model = ApproxBitConfiguration.from_training_config(backbone, cfg)
    train_configuration(model, cfg, progress=False, data=data,
                        on_epoch=lambda h: states.append({k: v.clone() for k, v in model.encoder.state_dict().items()}))
    for k, v in model.encoder.state_dict().items():
        torch.testing.assert_close(v, states[1][k])


def test_folder_labels_are_numbered_by_the_backbones_classes(recordings, tmp_path):
    fc = FootageClips.load(find_recordings([str(recordings)], str(recordings / "labels.csv")),
                           FootageConfig(frames=4, size=16), progress=False)
    assert fc.labels == [0, 1] and fc.label_names == ["left", "right"]
    fc.use_class_names(["Moving Right", "up", "moving-left", "Left", "RIGHT"])
    assert fc.labels == [3, 4]
    with pytest.raises(ValueError, match=r"labels \['left'\] are not classes of the backbone"):
        fc2 = FootageClips.load(find_recordings([str(recordings)], str(recordings / "labels.csv")),
                                FootageConfig(frames=4, size=16), progress=False)
        fc2.use_class_names(["right", "up"])


def test_synthetic_clips_exported_as_files_come_back_through_the_footage_path(tmp_path):
    """tools/export_synthetic_actions.py writes the clips the committed configurations were trained
    on as H.264 files in class folders; read back by folder label they are the same clips (within
    a few grey levels) with the backbone's class numbers."""
    import subprocess
    import sys

    from approxbit_ros.data.synthetic_actions import CLASSES, SyntheticActions

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, os.path.join(root, "tools", "export_synthetic_actions.py"), "--out",
                    str(tmp_path), "--clips", "13"], check=True, capture_output=True)
    recs = find_recordings([str(tmp_path)], "folders")
    fc = FootageClips.load(recs, FootageConfig(frames=16, size=64, split_by="file"), progress=False)
    fc.use_class_names(CLASSES)
    ds = SyntheticActions("train", 13)
    for r, frames, label in zip(recs, fc.frames, fc.labels):
        clip, want = ds[int(os.path.basename(r.path)[-9:-4])]
        assert label == want
        assert np.abs(frames.astype(int) - clip).mean() < 2.0


def test_training_clips_are_augmented_and_generic_video_can_be_mixed_in(recordings, tmp_path):
    from approxbit_ros.backbones.cnn3d import Cnn3dBackbone, Cnn3dConfig
    from approxbit_ros.training.clip_data import FootageClipData

    backbone = Cnn3dBackbone(Cnn3dConfig(num_classes=4)).eval()
    fc = FootageClips.load(find_recordings([str(recordings)]), FootageConfig(frames=16, size=64, segment_s=3.0),
                           cache_dir=str(tmp_path), progress=False)
    plain = FootageClipData(fc, backbone, 32, augment=False, batch_size=8)
    aug = FootageClipData(fc, backbone, 32, augment=True, batch_size=8)
    idx = list(range(8))
    x0, _ = plain.train_batch(idx)
    x1, _ = aug.train_batch(idx)
    assert x0.shape == x1.shape and x1.dtype == np.uint8
    np.testing.assert_array_equal(x0, fc.batch("train", idx)[0])
    assert np.abs(x1.astype(int) - x0).mean() > 5                      # zoomed, flipped, re-lit, reversed
    np.testing.assert_array_equal(aug.train_batch(idx)[0], x1)          # seeded by the batch
    mixed = FootageClipData(fc, backbone, 32, augment=False, batch_size=8, synthetic_share=1.0)
    xs, ys = mixed.train_batch(idx)
    assert (ys == UNLABELLED).all() and not np.array_equal(xs, x0)


def test_the_profiler_scores_footage_by_agreement_with_the_backbone(recordings, tmp_path):
    from approxbit_ros.backbones.cnn3d import Cnn3dBackbone, Cnn3dConfig
    from approxbit_ros.profiling import FootageTestClips

    torch.manual_seed(1)
    backbone = Cnn3dBackbone(Cnn3dConfig(num_classes=4)).eval()
    fc = FootageClips.load(find_recordings([str(recordings)]), FootageConfig(frames=16, size=64, segment_s=3.0),
                           cache_dir=str(tmp_path), progress=False)
    clips = FootageTestClips(fc, backbone)
    assert clips.agreement and len(clips) == len(fc.windows["test"])
    for i in range(len(clips)):
        clip, label = clips[i]
        with torch.no_grad():
            assert label == int(backbone(backbone.preprocess(torch.from_numpy(clip[None]))).argmax(1))
    labelled = FootageClips.load(find_recordings([str(recordings)], "folders"),
                                 FootageConfig(frames=16, size=64, segment_s=3.0), cache_dir=str(tmp_path), progress=False)
    clips = FootageTestClips(labelled, backbone)
    assert not clips.agreement and {clips[i][1] for i in range(len(clips))} <= {0, 1}
    from approxbit_ros.training.clip_data import FootageClipData

    # with labels the epoch is chosen by accuracy, without by agreement with the backbone
    assert FootageClipData(labelled, backbone, 8).metric == "top1"
    assert FootageClipData(fc, backbone, 8).metric == "agree_top1"


def test_labelled_clips_are_never_mirrored_or_reversed():
    """Moving left mirrored is moving right: with labels only zoom and lighting change a clip."""
    from approxbit_ros.training.clip_data import augment_clips

    rng = np.random.default_rng(0)
    x = np.zeros((64, 2, 16, 16, 3), np.uint8)
    x[:, :, :, :4] = 200                                        # a bright left edge in every clip
    for flip, mirrored in ((False, 0), (True, 1)):
        out = augment_clips(x.copy(), rng, flip=flip)
        right_brighter = (out[:, 0, :, -2:].mean((1, 2, 3)) > out[:, 0, :, :2].mean((1, 2, 3)))
        assert (right_brighter.sum() > 10) == bool(mirrored)

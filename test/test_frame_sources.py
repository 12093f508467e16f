"""Frame sources: synthetic scene, video file (PyAV), image folder, ROS 2 bag (rosbags)."""
import numpy as np
import pytest

from offload_common.frame_sources import (BUILTIN_KINDS, BagSource, FrameSourceError, FrameStream, ImageFolderSource,
                                          SyntheticSceneSource, VideoFileSource, open_source, register_source,
                                          resize_rgb, source_kinds)
from offload_common.image_conversion import array_to_image_fields


def frames_of(source, n):
    stream = FrameStream(source, loop=False, max_frames=n)
    out = []
    while (f := stream.next_frame()) is not None:
        out.append(f)
    return out


def test_synthetic_is_deterministic_moving_and_seeded():
    a = frames_of(SyntheticSceneSource(64, 48, seed=3), 5)
    b = frames_of(SyntheticSceneSource(64, 48, seed=3), 5)
    c = frames_of(SyntheticSceneSource(64, 48, seed=4), 5)
    assert [f.rgb.shape for f in a] == [(48, 64, 3)] * 5
    for fa, fb in zip(a, b):
        np.testing.assert_array_equal(fa.rgb, fb.rgb)
    assert not np.array_equal(a[0].rgb, c[0].rgb)
    assert np.abs(a[0].rgb.astype(int) - a[4].rgb).mean() > 1.0   # the scene moves


def test_stream_loops_resizes_and_limits():
    stream = FrameStream(SyntheticSceneSource(64, 48, num_frames=3), loop=True, width=32, height=0,
                         max_frames=7)
    frames = []
    while (f := stream.next_frame()) is not None:
        frames.append(f)
    assert len(frames) == 7 and stream.passes == 2
    assert frames[0].rgb.shape == (24, 32, 3)
    assert [f.index for f in frames] == [0, 1, 2, 0, 1, 2, 0]
    np.testing.assert_array_equal(frames[0].rgb, frames[3].rgb)


def test_stream_without_loop_ends():
    stream = FrameStream(SyntheticSceneSource(32, 32, num_frames=2), loop=False)
    assert stream.next_frame() is not None and stream.next_frame() is not None
    assert stream.next_frame() is None


def test_video_file_source_decodes_what_was_encoded(tmp_path):
    import av
    path = str(tmp_path / "clip.mp4")
    src = frames_of(SyntheticSceneSource(64, 48, seed=1), 6)
    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=10, options={"qp": "0", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv444p"
        for f in src:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f.rgb, format="rgb24")))
        out.mux(stream.encode(None))
    got = frames_of(VideoFileSource(path), 100)
    assert len(got) == 6
    # lossless H.264 in 4:4:4; only the RGB<->YUV conversion rounds
    assert max(np.abs(g.rgb.astype(int) - s.rgb).max() for g, s in zip(got, src)) <= 4


def test_image_folder_source_reads_sorted_images(tmp_path):
    import cv2
    imgs = [np.full((10, 12, 3), v, np.uint8) for v in (10, 200, 90)]
    imgs[0][0, 0] = (255, 0, 0)   # RGB red in one corner
    for i, img in enumerate(imgs):
        cv2.imwrite(str(tmp_path / f"f{i:02d}.png"), img[:, :, ::-1])
    (tmp_path / "notes.txt").write_text("not an image")
    got = frames_of(ImageFolderSource(str(tmp_path)), 10)
    assert len(got) == 3
    for g, img in zip(got, imgs):
        np.testing.assert_array_equal(g.rgb, img)


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_bag_source_reads_images_in_any_encoding(tmp_path, storage):
    """Both rosbag2 storage formats (README: sqlite3 and MCAP bags)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    Image = ts.types["sensor_msgs/msg/Image"]
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    path = tmp_path / "bag"
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        conn = writer.add_connection("/cam/image", Image.__msgtype__, typestore=ts)
        other = writer.add_connection("/other", "std_msgs/msg/Header", typestore=ts)
        for i, enc in enumerate(["rgb8", "bgr8"]):
            arr = rgb if enc == "rgb8" else rgb[:, :, ::-1].copy()
            f = array_to_image_fields(arr, enc, row_padding=2)
            msg = Image(header=Header(stamp=Time(sec=i, nanosec=0), frame_id="cam"),
                        height=f["height"], width=f["width"], encoding=enc,
                        is_bigendian=f["is_bigendian"], step=f["step"],
                        data=np.frombuffer(f["data"], np.uint8))
            writer.write(conn, (i + 1) * 1000, ts.serialize_cdr(msg, Image.__msgtype__))
        writer.write(other, 5000, ts.serialize_cdr(Header(stamp=Time(sec=0, nanosec=0), frame_id="x"),
                                                   "std_msgs/msg/Header"))
    assert list(path.glob("*.mcap" if storage == "mcap" else "*.db3"))       # the format asked for
    got = frames_of(BagSource(str(path)), 10)
    assert [g.stamp_ns for g in got] == [1000, 2000]
    for g in got:
        np.testing.assert_array_equal(g.rgb, rgb)
    with pytest.raises(FrameSourceError, match="no image topic '/nope'"):
        frames_of(BagSource(str(path), "/nope"), 1)


@pytest.mark.parametrize("kind,uri,match", [
    ("video", "/nonexistent.mp4", "video file not found"),
    ("images", "/nonexistent", "image folder not found"),
    ("bag", "/nonexistent", "bag not found"),
    ("webcam", "", "unknown source kind 'webcam'"),
])
def test_bad_sources_fail_clearly(kind, uri, match):
    with pytest.raises(FrameSourceError, match=match):
        open_source(kind, uri)


def test_corrupt_video_fails_clearly(tmp_path):
    path = tmp_path / "bad.mp4"
    path.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(FrameSourceError, match="cannot open video"):
        frames_of(VideoFileSource(str(path)), 1)


def test_resize_keeps_aspect_when_one_side_is_zero():
    rgb = np.zeros((100, 200, 3), np.uint8)
    assert resize_rgb(rgb, 50, 0).shape == (25, 50, 3)
    assert resize_rgb(rgb, 0, 50).shape == (50, 100, 3)
    assert resize_rgb(rgb, 0, 0) is rgb


def test_bag_source_reads_compressed_images(tmp_path):
    """sensor_msgs/CompressedImage (what a robot usually records) in a bag: PNG, lossless here."""
    import cv2
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    Compressed = ts.types["sensor_msgs/msg/CompressedImage"]
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    rgb = np.random.default_rng(0).integers(0, 256, (8, 10, 3), dtype=np.uint8)
    path = tmp_path / "bag"
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection("/cam/image/compressed", Compressed.__msgtype__, typestore=ts)
        for i in range(3):
            ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
            msg = Compressed(header=Header(stamp=Time(sec=i, nanosec=0), frame_id="cam"), format="png",
                             data=np.frombuffer(png.tobytes(), np.uint8))
            writer.write(conn, (i + 1) * 1000, ts.serialize_cdr(msg, Compressed.__msgtype__))
        bad = Compressed(header=Header(stamp=Time(sec=9, nanosec=0), frame_id="cam"), format="jpeg",
                         data=np.frombuffer(b"not a jpeg", np.uint8))
        writer.write(conn, 9000, ts.serialize_cdr(bad, Compressed.__msgtype__))
    src = BagSource(str(path))
    it = iter(src)
    got = [next(it) for _ in range(3)]
    assert [g.stamp_ns for g in got] == [1000, 2000, 3000]
    for g in got:
        np.testing.assert_array_equal(g.rgb, rgb)
    with pytest.raises(FrameSourceError, match="cannot decode a 'jpeg' CompressedImage"):
        next(it)


def test_video_frames_carry_their_presentation_time():
    from footage import footage

    got = frames_of(VideoFileSource(footage("bikes.mp4")), 5)
    steps = np.diff([g.stamp_ns for g in got])
    assert np.allclose(steps, 40_000_000, atol=1_000_000)          # 25 fps


def test_a_package_registers_a_source_kind_and_open_source_passes_it_the_options(monkeypatch):
    import offload_common.frame_sources as fs

    monkeypatch.setattr(fs, "_registered", {})
    seen = {}

    def factory(uri, *, width, height, seed):
        seen.update(uri=uri, width=width, height=height, seed=seed)
        return SyntheticSceneSource(width, height, seed)

    with pytest.raises(FrameSourceError, match="unknown source kind 'mine'"):
        open_source("mine")
    register_source("mine", factory)
    assert "mine" in source_kinds() and source_kinds()[:len(BUILTIN_KINDS)] == list(BUILTIN_KINDS)
    frame = next(iter(open_source("mine", "x", width=40, height=30, seed=3)))
    assert frame.rgb.shape == (30, 40, 3) and seen == {"uri": "x", "width": 40, "height": 30, "seed": 3}
    with pytest.raises(ValueError, match="built in"):
        register_source("video", factory)


def test_the_action_clips_come_through_the_entry_point_not_an_import():
    assert "actions" in source_kinds()
    frame = next(iter(open_source("actions", width=64, height=48, seed=1)))
    assert frame.rgb.shape == (48, 64, 3) and frame.label

"""Authenticated payloads, library and message level: key files are refused when others can read
them or when malformed; a tag verifies only with the same key over the same bytes; every field of
a serialized payload message is covered (changing any one breaks the tag); keys rotate by id."""
import os

import pytest

from offload_common.payload_auth import PayloadKeys, load_keys

KEY_A = "11" * 32
KEY_B = "22" * 16


def key_file(tmp_path, text, mode=0o600, name="keys"):
    p = tmp_path / name
    p.write_text(text)
    os.chmod(p, mode)
    return str(p)


def test_key_files_are_checked(tmp_path):
    keys = PayloadKeys.from_file(key_file(tmp_path, f"# edge keys\nk2 {KEY_A}\nk1 {KEY_B}  # old\n"))
    assert keys.signing_id == "k2" and set(keys.keys) == {"k1", "k2"}
    assert load_keys("") is None
    for text, mode, match in [
        (f"k1 {KEY_A}\n", 0o640, "accessible by group or others"),
        (f"k1 {KEY_A}\n", 0o604, "accessible by group or others"),
        (f"k1 {KEY_A} extra\n", 0o600, "expected '<key_id> <hex secret>'"),
        ("k1 zz\n", 0o600, "not hex"),
        ("k1 00112233\n", 0o600, "at least 16"),
        (f"k1 {KEY_A}\nk1 {KEY_B}\n", 0o600, "appears twice"),
        ("# nothing\n", 0o600, "holds no key"),
    ]:
        with pytest.raises(ValueError, match=match):
            PayloadKeys.from_file(key_file(tmp_path, text, mode, name=f"k{mode:o}{len(text)}"))
    with pytest.raises(OSError):
        PayloadKeys.from_file(str(tmp_path / "missing"))


def test_tags_verify_only_with_the_same_key_and_bytes(tmp_path):
    edge = PayloadKeys.from_file(key_file(tmp_path, f"k2 {KEY_A}\n", name="edge"))
    server = PayloadKeys.from_file(key_file(tmp_path, f"k1 {KEY_B}\nk2 {KEY_A}\n", name="server"))
    other = PayloadKeys.from_file(key_file(tmp_path, f"k2 {'33' * 32}\n", name="other"))
    msg = b"payload bytes"
    tag = edge.sign(msg)
    assert len(tag) == 32 and server.verify("k2", tag, msg) is None      # rotation: the server holds both
    assert server.verify("k2", tag, msg + b"x").reason == "auth"
    assert server.verify("k2", other.sign(msg), msg).reason == "auth"    # same id, another secret
    assert "unknown key id" in server.verify("k9", tag, msg).detail
    assert "no authentication tag" in server.verify("k2", b"", msg).detail
    assert server.verify("k2", tag[:16], msg).reason == "auth"


def test_the_tag_covers_every_field_of_the_message(tmp_path):
    from edge_offload.msg import BinaryFeatures, EncodedFrame
    from offload_common.nodes.payload_signing import sign_payload, verify_payload

    keys = PayloadKeys.from_file(key_file(tmp_path, f"k1 {KEY_A}\n"))
    for cls, changes in [
        (BinaryFeatures, [("meta.seq", 8), ("meta.header.stamp.sec", 99), ("meta.stream_id", "x"),
                          ("meta.config_id", "cnn3d/o1/enc/k4"), ("shape", [4, 1, 1, 1]), ("crc32", 5),
                          ("data", b"\x01\x02\x04"), ("meta.timings.queue_ms", 1.5), ("meta.format_version", 2)]),
        (EncodedFrame, [("width", 640), ("keyframe", True), ("meta.seq", 1), ("data", b"\x00\x00\x01\x68")]),
    ]:
        msg = cls()
        msg.meta.seq, msg.meta.stream_id, msg.data = 7, "var", b"\x01\x02\x03"
        sign_payload(msg, keys)
        assert msg.meta.auth_key_id == "k1" and len(msg.meta.auth_tag) == 32
        assert verify_payload(msg, keys) is None and verify_payload(msg, None) is None
        for path, value in changes:
            *parents, leaf = path.split(".")
            holder = msg
            for p in parents:
                holder = getattr(holder, p)
            old = getattr(holder, leaf)
            setattr(holder, leaf, value)
            assert verify_payload(msg, keys).reason == "auth", path
            setattr(holder, leaf, old)
            assert verify_payload(msg, keys) is None, path


def test_a_tag_survives_the_wire(tmp_path):
    """The receiver gets the message through CDR (float32 fields rounded, padding bytes
    arbitrary): the tag made by the sender still verifies there."""
    from rclpy.serialization import deserialize_message, serialize_message

    from edge_offload.msg import BinaryFeatures
    from offload_common.nodes.payload_signing import sign_payload, verify_payload

    keys = PayloadKeys.from_file(key_file(tmp_path, f"k1 {KEY_A}\n"))
    msg = BinaryFeatures()
    msg.meta.stream_id, msg.meta.seq, msg.meta.config_id = "var", 3, "cnn3d/o2/enc/k4"
    msg.meta.timings.queue_ms, msg.meta.timings.model_ms = 0.1, 12.345678901   # not float32-exact
    msg.shape, msg.data = [4, 2, 4, 4], bytes(range(16))
    sign_payload(msg, keys)
    received = deserialize_message(serialize_message(msg), BinaryFeatures)
    assert received.meta.timings.queue_ms != 0.1                 # it did arrive rounded
    assert verify_payload(received, keys) is None

"""Every custom message travels between two real rclpy nodes over DDS with all its fields
intact (each field filled with a non-default value, nested messages and sequences included)."""
import glob
import importlib
import os
import time

import pytest

import rclpy  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MSG_NAMES = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(f"{ROOT}/msg/*.msg"))
INT_TYPES = {"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "byte", "octet", "char"}


def msg_class(type_name: str):
    pkg, name = type_name.split("/")[0], type_name.split("/")[-1]
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def value_for(typ: str, k: int):
    if typ.startswith("sequence<"):
        inner = typ[len("sequence<"):-1].split(",")[0]
        if inner in ("uint8", "octet", "byte"):
            return bytes((k + i) % 256 for i in range(5))
        return [value_for(inner, k + i) for i in range(3)]
    if typ == "boolean":
        return True
    if typ == "string":
        return f"value-{k}"
    if typ in INT_TYPES:
        return k % 100 + 3
    if typ in ("float", "double"):
        return 1.5 + k
    return filled(msg_class(typ)(), k)


def filled(msg, k: int = 0):
    for i, (name, typ) in enumerate(msg.get_fields_and_field_types().items()):
        setattr(msg, name, value_for(typ, k + i))
    return msg


def assert_all_fields_differ_from_default(msg):
    cls = type(msg)
    default = cls()
    for name in msg.get_fields_and_field_types():
        assert getattr(msg, name) != getattr(default, name), f"{cls.__name__}.{name} not exercised"


@pytest.fixture(scope="module")
def two_nodes():
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    a = rclpy.create_node("msg_test_sender", context=ctx)
    b = rclpy.create_node("msg_test_receiver", context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(a)
    ex.add_node(b)
    yield a, b, ex
    ex.shutdown()
    a.destroy_node()
    b.destroy_node()
    rclpy.try_shutdown(context=ctx)


def transfer(two_nodes, msg, topic):
    a, b, ex = two_nodes
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    got = []
    pub = a.create_publisher(type(msg), topic, qos)
    sub = b.create_subscription(type(msg), topic, got.append, qos)
    try:
        deadline = time.monotonic() + 15
        while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.05)
        next_pub = 0.0
        while not got and time.monotonic() < deadline:
            if time.monotonic() >= next_pub:   # VOLATILE: repeat until the reader is ready
                pub.publish(msg)
                next_pub = time.monotonic() + 0.2
            ex.spin_once(timeout_sec=0.05)
    finally:
        a.destroy_publisher(pub)
        b.destroy_subscription(sub)
    assert got, f"{type(msg).__name__} never arrived"
    return got[0]


def test_message_set_is_complete():
    expected = {"BinaryFeatures", "EncodedFrame", "ActionResult", "VqaAnswer", "Detection",
                "DetectionArray", "OffloadConfig", "LinkReceipt", "PayloadHeader", "EdgeTimings",
                "LatencyBreakdown", "KeyframeRequest", "LinkProbe"}
    assert expected <= set(MSG_NAMES)


@pytest.mark.parametrize("name", MSG_NAMES)
def test_message_round_trips_over_dds(two_nodes, name):
    msg = filled(msg_class(f"edge_offload/{name}")(), 7)
    assert_all_fields_differ_from_default(msg)
    got = transfer(two_nodes, msg, f"/test_{name.lower()}")
    assert got == msg


def test_large_binary_payload_round_trips(two_nodes):
    from edge_offload.msg import BinaryFeatures, PayloadHeader

    msg = BinaryFeatures(encoding=BinaryFeatures.ENCODING_BITS, codebook_size=16, shape=[16, 4, 28, 28])
    msg.meta.format_version = PayloadHeader.FORMAT_VERSION
    msg.data = os.urandom(1_500_000)
    got = transfer(two_nodes, msg, "/test_large_binary")
    assert bytes(got.data) == bytes(msg.data) and list(got.shape) == [16, 4, 28, 28]


def test_payload_header_documents_its_version():
    from edge_offload.msg import PayloadHeader

    assert PayloadHeader.FORMAT_VERSION == 1

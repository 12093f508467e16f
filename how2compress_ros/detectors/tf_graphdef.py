"""Read a TensorFlow frozen GraphDef (.pb) without TensorFlow.

A small protobuf wire-format reader for the messages a frozen inference graph uses (GraphDef,
NodeDef, AttrValue, TensorProto, TensorShapeProto). It gives node names, ops, inputs and
attributes, with constant tensors as numpy arrays, so pretrained weights shipped as a frozen
graph can be loaded into a PyTorch model.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

# tensorflow/core/framework/types.proto
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8,
           9: np.int64, 10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}


class GraphDefError(ValueError):
    """The file is not a frozen GraphDef this reader understands."""


def _varint(buf: bytes, pos: int):
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise GraphDefError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes):
    """Yield (field number, wire type, value) of one protobuf message."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            val, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            val, pos = buf[pos:pos + 4], pos + 4
        else:
            raise GraphDefError(f"unsupported wire type {wire}")
        yield num, wire, val


def _packed_varints(val, wire) -> List[int]:
    if wire == 0:
        return [val]
    out, pos = [], 0
    while pos < len(val):
        v, pos = _varint(val, pos)
        out.append(v)
    return out


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _shape(buf: bytes) -> List[int]:
    dims = []
    for num, _w, val in _fields(buf):
        if num == 2:
            size = 0
            for n2, _w2, v2 in _fields(val):
                if n2 == 1:
                    size = _signed64(v2)
            dims.append(size)
    return dims


def _tensor(buf: bytes) -> np.ndarray:
    dtype, shape, content = 1, [], None
    floats, ints, int64s, bools = [], [], [], []
    for num, wire, val in _fields(buf):
        if num == 1:
            dtype = val
        elif num == 2:
            shape = _shape(val)
        elif num == 4:
            content = val
        elif num == 5:
            floats += list(struct.unpack(f"<{len(val) // 4}f", val)) if wire == 2 else \
                [struct.unpack("<f", val)[0]]
        elif num == 7:
            ints += [_signed64(v) if v >= 1 << 63 else (v - (1 << 64) if v >= 1 << 31 and v > 0xFFFFFFFF else v)
                     for v in _packed_varints(val, wire)]
        elif num == 10:
            int64s += [_signed64(v) for v in _packed_varints(val, wire)]
        elif num == 11:
            bools += [bool(v) for v in _packed_varints(val, wire)]
    if dtype not in _DTYPES:
        return np.zeros(0)   # strings and other types: not needed for weights
    np_dtype = _DTYPES[dtype]
    count = int(np.prod(shape)) if shape else 1
    if content is not None:
        arr = np.frombuffer(content, dtype=np.dtype(np_dtype).newbyteorder("<")).astype(np_dtype)
    else:
        vals = floats or ints or int64s or bools
        arr = np.array(vals, dtype=np_dtype)
        if arr.size == 1 and count > 1:        # TF stores splats as one value
            arr = np.full(count, arr[0], np_dtype)
        elif arr.size == 0:
            arr = np.zeros(count, np_dtype)
    return arr.reshape(shape) if shape else arr.reshape(())


def _attr(buf: bytes):
    for num, wire, val in _fields(buf):
        if num == 1:       # list
            items = []
            for n2, w2, v2 in _fields(val):
                if n2 == 2:
                    items.append(v2.decode("utf-8", "replace"))
                elif n2 == 3:
                    items += [_signed64(v) for v in _packed_varints(v2, w2)]
                elif n2 == 4:
                    items += list(struct.unpack(f"<{len(v2) // 4}f", v2)) if w2 == 2 else [struct.unpack("<f", v2)[0]]
                elif n2 == 7:
                    items.append(_shape(v2))
            return items
        if num == 2:
            return val.decode("utf-8", "replace")
        if num == 3:
            return _signed64(val)
        if num == 4:
            return struct.unpack("<f", val)[0]
        if num == 5:
            return bool(val)
        if num == 6:
            return int(val)
        if num == 7:
            return _shape(val)
        if num == 8:
            return _tensor(val)
    return None


@dataclass
class GraphNode:
    name: str
    op: str
    inputs: List[str] = field(default_factory=list)
    attrs: Dict[str, object] = field(default_factory=dict)


def read_graphdef(path: str) -> Dict[str, GraphNode]:
    """Nodes of a frozen GraphDef by name."""
    with open(path, "rb") as f:
        buf = f.read()
    nodes: Dict[str, GraphNode] = {}
    for num, _wire, val in _fields(buf):
        if num != 1:
            continue
        node = GraphNode("", "")
        for n2, _w2, v2 in _fields(val):
            if n2 == 1:
                node.name = v2.decode()
            elif n2 == 2:
                node.op = v2.decode()
            elif n2 == 3:
                node.inputs.append(v2.decode())
            elif n2 == 5:
                key, value = "", None
                for n3, _w3, v3 in _fields(v2):
                    if n3 == 1:
                        key = v3.decode()
                    elif n3 == 2:
                        value = _attr(v3)
                node.attrs[key] = value
        nodes[node.name] = node
    if not nodes:
        raise GraphDefError(f"{path} holds no graph nodes")
    return nodes

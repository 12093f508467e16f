"""HMAC tags on payload messages (``offload_common.payload_auth``) over a canonical encoding of
every field of the message except ``meta.auth_tag``, walked from the message's own field list
(``get_fields_and_field_types``), so a field added to a message later is covered too.

Why not the CDR bytes DDS carries: Fast CDR leaves the alignment padding between fields
uninitialised, so two serializations of the same message differ (seen here: padding bytes
``7f 00 00``, ``28 d3 43`` that change between processes), and the receiver's serialization
would not match the sender's. Floats are encoded at their declared width (a ``float32`` field
set from a Python double arrives rounded), so both ends encode the same value.
"""
from __future__ import annotations

import struct
from typing import Optional

from offload_common.payload_auth import PayloadKeys
from offload_common.payload_checks import Refusal

SKIPPED_FIELD = "auth_tag"
_INTS = {"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "octet", "char", "byte"}


def _element_type(t: str) -> Optional[str]:
    """'sequence<uint8>' / 'sequence<uint8, 4>' / 'uint8[4]' -> 'uint8'; None for a non-array."""
    if t.startswith("sequence<"):
        return t[len("sequence<"):-1].split(",")[0].strip()
    if t.endswith("]") and "[" in t:
        return t[:t.index("[")]
    return None


def _encode(out: bytearray, value, t: str) -> None:
    element = _element_type(t)
    if element is not None:
        if element in ("uint8", "octet", "byte"):
            data = bytes(value)
            out += struct.pack("<Q", len(data)) + data
            return
        out += struct.pack("<Q", len(value))
        for v in value:
            _encode(out, v, element)
    elif t in ("string", "wstring") or t.startswith("string<") or t.startswith("wstring<"):
        data = value.encode("utf-8")
        out += struct.pack("<Q", len(data)) + data
    elif t == "boolean":
        out += b"\x01" if value else b"\x00"
    elif t == "float":
        out += struct.pack("<f", value)
    elif t in ("double", "long double"):
        out += struct.pack("<d", value)
    elif t in _INTS:
        out += (ord(value) if isinstance(value, str) else int(value)).to_bytes(9, "little", signed=True)
    else:                                            # a nested message
        for name, ft in value.get_fields_and_field_types().items():
            if name != SKIPPED_FIELD:
                _encode(out, getattr(value, name), ft)


def signed_bytes(msg) -> bytes:
    """What the tag of ``msg`` covers: every field but ``meta.auth_tag``, canonically encoded."""
    out = bytearray(type(msg).__name__.encode() + b"\x00")
    _encode(out, msg, "message")
    return bytes(out)


def sign_payload(msg, keys: Optional[PayloadKeys]) -> None:
    """Tag ``msg`` (BinaryFeatures or EncodedFrame, every other field filled) with the signing
    key; nothing without keys."""
    if keys is None:
        return
    msg.meta.auth_key_id = keys.signing_id
    msg.meta.auth_tag = keys.sign(signed_bytes(msg))


def verify_payload(msg, keys: Optional[PayloadKeys]) -> Optional[Refusal]:
    """None when ``msg`` carries a valid tag (or the server has no keys), else why not."""
    if keys is None:
        return None
    return keys.verify(msg.meta.auth_key_id, bytes(msg.meta.auth_tag), signed_bytes(msg))

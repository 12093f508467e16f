"""Authenticated payloads: an HMAC-SHA256 tag over every payload message, with a pre-shared key.

DDS on its own lets any participant of the domain publish our message types; the PyPI Fast DDS
build has no DDS Security, so SROS2 cannot be the only answer. With a key file on both ends the
edge tags each payload (``PayloadHeader.auth_key_id`` + ``auth_tag``, computed over every field
of the message but the tag, ``offload_common.nodes.payload_signing``) and the server drops any payload without a valid tag
before it looks at anything else. Replays are refused by what the server already checks, and
the tag covers: the sequence number (a repeat is refused while the stream is live) and the
capture stamp (a payload older than ``max_stamp_age_s`` is refused later on).

Key file: one key per line, ``<key_id> <secret as hex>`` (at least 16 bytes; ``openssl rand
-hex 32``), ``#`` comments allowed. The edge signs with the first line; a server accepts every
line, so keys rotate by adding the new key to the servers first, then moving it to the first
line on the edges, then removing the old one. The file must not be readable by group or others.
Plain Python, no ROS (the nodes encode the message: ``offload_common.nodes.payload_signing``).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import stat
from dataclasses import dataclass
from typing import Dict, Optional

from offload_common.payload_checks import Refusal

MIN_KEY_BYTES = 16
TAG_BYTES = 32


@dataclass(frozen=True)
class PayloadKeys:
    """The keys of one key file: ``signing_id`` signs, every key verifies."""
    keys: Dict[str, bytes]
    signing_id: str

    @classmethod
    def from_file(cls, path: str) -> "PayloadKeys":
        """Read a key file. Raises ValueError (one line) for a file others can read, a malformed
        line, a short key or no key; OSError when it cannot be read."""
        mode = os.stat(path).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ValueError(f"key file {path} is accessible by group or others (mode {stat.S_IMODE(mode):o}): "
                             f"chmod 600 it")
        keys: Dict[str, bytes] = {}
        first = None
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                parts = line.split()
                if len(parts) != 2:
                    raise ValueError(f"{path}:{n}: expected '<key_id> <hex secret>'")
                key_id, secret = parts
                try:
                    key = bytes.fromhex(secret)
                except ValueError:
                    raise ValueError(f"{path}:{n}: the secret of key '{key_id}' is not hex") from None
                if len(key) < MIN_KEY_BYTES:
                    raise ValueError(f"{path}:{n}: key '{key_id}' has {len(key)} bytes, at least {MIN_KEY_BYTES} needed")
                if key_id in keys:
                    raise ValueError(f"{path}:{n}: key id '{key_id}' appears twice")
                keys[key_id] = key
                first = first or key_id
        if first is None:
            raise ValueError(f"key file {path} holds no key")
        return cls(keys, first)

    def sign(self, message: bytes) -> bytes:
        """The tag of ``message`` (the serialized payload with an empty tag) under the signing key."""
        return hmac.new(self.keys[self.signing_id], message, hashlib.sha256).digest()

    def verify(self, key_id: str, tag: bytes, message: bytes) -> Optional[Refusal]:
        """None when ``tag`` is ``message``'s tag under key ``key_id``, else why not."""
        if not tag:
            return Refusal("auth", "payload carries no authentication tag")
        key = self.keys.get(key_id)
        if key is None:
            return Refusal("auth", f"unknown key id {key_id[:40]!r}")
        if len(tag) != TAG_BYTES or not hmac.compare_digest(tag, hmac.new(key, message, hashlib.sha256).digest()):
            return Refusal("auth", f"wrong authentication tag (key '{key_id}')")
        return None


def load_keys(path: str) -> Optional[PayloadKeys]:
    """The keys of the file a node's ``auth_key_file`` parameter names; None for an empty path."""
    return PayloadKeys.from_file(path) if path else None

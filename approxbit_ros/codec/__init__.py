"""ApproxBit's learned binary codec (§3.3-3.5), the entropy coder of its codes and its wire format."""
from approxbit_ros.codec.binary_codec import (ApproxBitLoss, BinaryCodecConfig, BinaryDecoder, BinaryEncoder,
                                              binarize)
from approxbit_ros.codec.entropy import BitContextModel, fit_entropy_model
from approxbit_ros.codec.wire import BinaryPayload, PayloadError, pack_bits, unpack_bits

__all__ = ["ApproxBitLoss", "BinaryCodecConfig", "BinaryDecoder", "BinaryEncoder", "BinaryPayload", "BitContextModel",
           "PayloadError", "binarize", "fit_entropy_model", "pack_bits", "unpack_bits"]

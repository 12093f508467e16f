"""H.264 with a per-macroblock QP map on stock libx264, and a resilient decoder."""
from how2compress_ros.codec.decoder import DecodedFrame, H264Decoder, H264DecodeError
from how2compress_ros.codec.encoder import (DEFAULT_LEVEL_QPS, AccessUnit, H264EncoderConfig,
                                            MacroblockQPEncoder, levels_to_qp_map, mb_grid)

__all__ = ["AccessUnit", "DEFAULT_LEVEL_QPS", "DecodedFrame", "H264Decoder", "H264DecodeError",
           "H264EncoderConfig", "MacroblockQPEncoder", "levels_to_qp_map", "mb_grid"]

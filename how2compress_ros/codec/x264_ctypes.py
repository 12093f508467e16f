"""Minimal ctypes binding to libx264 (the copy bundled in PyAV's wheel by default).

Only what per-macroblock QP encoding needs. Struct layouts were measured with ``offsetof`` on
x264.h of X264_BUILD 164 (Debian 12 libx264-dev); builds 164 and 165 share them (x86-64 and
aarch64 LP64 alike: sizes param 1024, picture 240, image properties 80, nal 40 bytes). A library
of another build is refused with a clear error rather than risking a wrong layout.
"""
from __future__ import annotations

import ctypes
import glob
import os
from ctypes import POINTER, Structure, c_char_p, c_float, c_int, c_int64, c_uint8, c_void_p

VERIFIED_BUILDS = (164, 165)

X264_CSP_I420 = 0x0002
X264_TYPE_AUTO = 0x0000
X264_TYPE_IDR = 0x0001
X264_LOG_ERROR = 0
PARAM_SIZE = 1024
# Offsets inside x264_param_t (bytes).
PARAM_I_THREADS = 4
PARAM_I_WIDTH = 28
PARAM_I_HEIGHT = 32
PARAM_I_CSP = 36
PARAM_I_LOG_LEVEL = 528


class X264Error(RuntimeError):
    """libx264 missing, of an unverified build, or refusing a setting."""


class X264Image(Structure):                      # x264_image_t, 56 bytes
    _fields_ = [("i_csp", c_int), ("i_plane", c_int), ("i_stride", c_int * 4),
                ("plane", POINTER(c_uint8) * 4)]


class X264ImageProperties(Structure):            # x264_image_properties_t, 80 bytes
    _fields_ = [("quant_offsets", POINTER(c_float)), ("quant_offsets_free", c_void_p),
                ("_rest", c_uint8 * 64)]


class X264Picture(Structure):                    # x264_picture_t, 240 bytes
    _fields_ = [("i_type", c_int), ("i_qpplus1", c_int), ("i_pic_struct", c_int),
                ("b_keyframe", c_int), ("i_pts", c_int64), ("i_dts", c_int64),
                ("param", c_void_p), ("img", X264Image), ("prop", X264ImageProperties),
                ("_rest", c_uint8 * (240 - 176))]


class X264Nal(Structure):                        # x264_nal_t, 40 bytes
    _fields_ = [("i_ref_idc", c_int), ("i_type", c_int), ("b_long_startcode", c_int),
                ("i_first_mb", c_int), ("i_last_mb", c_int), ("i_payload", c_int),
                ("p_payload", POINTER(c_uint8)), ("i_padding", c_int), ("_pad", c_int)]


for _s, _n in ((X264Image, 56), (X264ImageProperties, 80), (X264Picture, 240), (X264Nal, 40)):
    assert ctypes.sizeof(_s) == _n, f"{_s.__name__} layout is {ctypes.sizeof(_s)} bytes, expected {_n}"


def candidate_paths():
    """libx264 candidates: $EDGE_OFFLOAD_LIBX264, PyAV's bundled copy, then the system one."""
    env = os.environ.get("EDGE_OFFLOAD_LIBX264")
    if env:
        yield env
        return
    try:
        import av

        libs = os.path.join(os.path.dirname(os.path.dirname(av.__file__)), "av.libs")
        yield from sorted(glob.glob(os.path.join(libs, "libx264*.so*")))
    except ImportError:
        pass
    import ctypes.util

    found = ctypes.util.find_library("x264")
    if found:
        yield found


class X264Library:
    """A loaded libx264 with the functions we use and its build number."""

    def __init__(self, path: str = ""):
        paths = [path] if path else list(candidate_paths())
        if not paths:
            raise X264Error("libx264 not found: install PyAV (pip install av) or set EDGE_OFFLOAD_LIBX264")
        errors = []
        for p in paths:
            try:
                self.lib = ctypes.CDLL(p)
                self.path = p
                break
            except OSError as exc:
                errors.append(f"{p}: {exc}")
        else:
            raise X264Error("cannot load libx264: " + "; ".join(errors))
        self.build = next((b for b in VERIFIED_BUILDS if hasattr(self.lib, f"x264_encoder_open_{b}")), None)
        if self.build is None:
            raise X264Error(f"{self.path} is not an x264 build whose struct layout was verified "
                            f"({VERIFIED_BUILDS}); refusing to guess")
        lib = self.lib
        lib.x264_param_default_preset.argtypes = [c_void_p, c_char_p, c_char_p]
        lib.x264_param_default_preset.restype = c_int
        lib.x264_param_parse.argtypes = [c_void_p, c_char_p, c_char_p]
        lib.x264_param_parse.restype = c_int
        lib.x264_param_apply_profile.argtypes = [c_void_p, c_char_p]
        lib.x264_param_apply_profile.restype = c_int
        self.encoder_open = getattr(lib, f"x264_encoder_open_{self.build}")
        self.encoder_open.argtypes = [c_void_p]
        self.encoder_open.restype = c_void_p
        lib.x264_encoder_encode.argtypes = [c_void_p, POINTER(POINTER(X264Nal)), POINTER(c_int),
                                            POINTER(X264Picture), POINTER(X264Picture)]
        lib.x264_encoder_encode.restype = c_int
        lib.x264_encoder_delayed_frames.argtypes = [c_void_p]
        lib.x264_encoder_delayed_frames.restype = c_int
        lib.x264_encoder_close.argtypes = [c_void_p]
        lib.x264_encoder_close.restype = None
        lib.x264_picture_init.argtypes = [POINTER(X264Picture)]
        lib.x264_picture_init.restype = None


_LIBRARY = {}


def load_x264(path: str = "") -> X264Library:
    """Load (once per path) and return the libx264 binding."""
    if path not in _LIBRARY:
        _LIBRARY[path] = X264Library(path)
    return _LIBRARY[path]

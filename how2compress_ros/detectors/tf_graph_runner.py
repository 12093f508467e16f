"""Run the feed-forward part of a frozen TensorFlow graph with PyTorch, without TensorFlow.

Covers the ops of convolutional detectors and their anchor generators (conv, depthwise conv,
batch norm, activations, element-wise arithmetic, shape manipulation). Tensors keep TF's NHWC
layout; convolutions run on channels-last views, so no copies are made around them. Batch
norms that follow a convolution are folded into its weights when the plan is built.
Control flow (while loops, TensorArrays) is not supported: run the graph up to the tensors
before post-processing and do post-processing in Python.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from how2compress_ros.detectors.tf_graphdef import GraphDefError, GraphNode

_NP_OF_TF = {1: torch.float32, 2: torch.float64, 3: torch.int32, 9: torch.int64, 10: torch.bool, 4: torch.uint8}


def _name(ref: str) -> Tuple[str, int]:
    ref = ref.lstrip("^")
    if ":" in ref:
        n, i = ref.rsplit(":", 1)
        return n, int(i)
    return ref, 0


def _same_pad(size: int, k: int, stride: int, dilation: int = 1) -> Tuple[int, int]:
    k_eff = (k - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k_eff - size, 0)
    return total // 2, total - total // 2


def _conv(x, w, strides, padding, groups=1):
    """x NHWC, w as a torch OIHW weight."""
    sh, sw = strides[1], strides[2]
    xc = x.permute(0, 3, 1, 2)
    if padding == "SAME":
        kh, kw = w.shape[2], w.shape[3]
        pt, pb = _same_pad(xc.shape[2], kh, sh)
        pl, pr = _same_pad(xc.shape[3], kw, sw)
        if pt or pb or pl or pr:
            if pt == pb and pl == pr:
                y = F.conv2d(xc, w, stride=(sh, sw), padding=(pt, pl), groups=groups)
                return y.permute(0, 2, 3, 1)
            xc = F.pad(xc, (pl, pr, pt, pb))
    y = F.conv2d(xc, w, stride=(sh, sw), groups=groups)
    return y.permute(0, 2, 3, 1)


def _strided_slice(x, begin, end, strides, attrs):
    begin, end, strides = [int(v) for v in begin], [int(v) for v in end], [int(v) for v in strides]
    bm, em = attrs.get("begin_mask", 0), attrs.get("end_mask", 0)
    sam = attrs.get("shrink_axis_mask", 0)
    if attrs.get("ellipsis_mask", 0) or attrs.get("new_axis_mask", 0):
        raise GraphDefError("StridedSlice with ellipsis/new-axis masks is not supported")
    idx = []
    for i, (b, e, s) in enumerate(zip(begin, end, strides)):
        if sam & (1 << i):
            idx.append(b)
            continue
        idx.append(slice(None if bm & (1 << i) else b, None if em & (1 << i) else e, s))
    if isinstance(x, torch.Tensor):
        return x[tuple(idx)]
    return np.asarray(x)[tuple(idx)]


def _t(v):
    return v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))


def _ints(v) -> List[int]:
    return [int(a) for a in (v.tolist() if hasattr(v, "tolist") else v)]


class TFGraphRunner:
    """Evaluate named tensors of a frozen graph given feeds for some nodes."""

    def __init__(self, nodes: Dict[str, GraphNode]):
        self.nodes = nodes
        self._consts: Dict[str, object] = {}
        self._folded: Dict[str, Tuple[torch.Tensor, torch.Tensor]] = {}
        self._ops: Dict[str, Callable] = self._op_table()

    # -- public -------------------------------------------------------------------------------
    def plan(self, outputs: Sequence[str], feeds: Sequence[str]) -> List[str]:
        """Topological order of the nodes needed for ``outputs`` when ``feeds`` are given."""
        order, state = [], {}
        feeds = set(feeds)
        for out in outputs:
            stack = [(_name(out)[0], False)]
            while stack:
                n, done = stack.pop()
                if done:
                    if state.get(n) != 2:
                        state[n] = 2
                        order.append(n)
                    continue
                if state.get(n):
                    continue
                state[n] = 1
                stack.append((n, True))
                if n in feeds:
                    continue
                if n not in self.nodes:
                    raise GraphDefError(f"graph has no node {n!r}")
                for inp in self.nodes[n].inputs:
                    if not inp.startswith("^"):
                        stack.append((_name(inp)[0], False))
        self._fold_batch_norms(order, feeds)
        return order

    @torch.no_grad()
    def run(self, order: List[str], outputs: Sequence[str], feeds: Dict[str, object]) -> List[object]:
        """Values of ``outputs`` for ``feeds``, following a ``plan`` (no autograd)."""
        return self.evaluate(order, outputs, feeds)

    def evaluate(self, order: List[str], outputs: Sequence[str], feeds: Dict[str, object]) -> List[object]:
        """As ``run``, recording autograd when a feed requires grad (gradients to the input)."""
        values: Dict[str, object] = dict(feeds)
        for n in order:
            if n in values:
                continue
            node = self.nodes[n]
            if node.op == "Const":
                values[n] = self._const(n)
                continue
            args = []
            for inp in node.inputs:
                if inp.startswith("^"):
                    continue
                name, idx = _name(inp)
                v = values[name]
                args.append(v[idx] if isinstance(v, tuple) else v)
            fn = self._ops.get(node.op)
            if fn is None:
                raise GraphDefError(f"op {node.op} ({n}) is not supported")
            values[n] = fn(node, *args)
        out = []
        for o in outputs:
            name, idx = _name(o)
            v = values[name]
            out.append(v[idx] if isinstance(v, tuple) else v)
        return out

    # -- helpers ------------------------------------------------------------------------------
    def _const(self, n: str):
        if n not in self._consts:
            v = self.nodes[n].attrs.get("value")
            self._consts[n] = torch.from_numpy(v.copy()) if isinstance(v, np.ndarray) else v  # keeps 0-d
        return self._consts[n]

    def _weight_of(self, ref: str) -> torch.Tensor:
        n = _name(ref)[0]
        while self.nodes[n].op == "Identity":
            n = _name(self.nodes[n].inputs[0])[0]
        if self.nodes[n].op != "Const":
            raise GraphDefError(f"expected a constant weight at {ref}")
        return self._const(n)

    def _fold_batch_norms(self, order: List[str], feeds) -> None:
        consumers: Dict[str, int] = {}
        for n in order:
            for inp in self.nodes[n].inputs if n not in feeds else []:
                consumers[_name(inp)[0]] = consumers.get(_name(inp)[0], 0) + 1
        for n in order:
            node = self.nodes.get(n)
            if node is None or node.op not in ("FusedBatchNorm", "FusedBatchNormV3") or n in feeds:
                continue
            conv = _name(node.inputs[0])[0]
            cnode = self.nodes[conv]
            if cnode.op not in ("Conv2D", "DepthwiseConv2dNative") or consumers.get(conv, 0) != 1:
                continue
            gamma, beta, mean, var = (self._weight_of(r).double() for r in node.inputs[1:5])
            scale = gamma / torch.sqrt(var + float(node.attrs.get("epsilon", 1e-3)))
            w = self._weight_of(cnode.inputs[1]).double()           # HWIO or HW(I)(M)
            if cnode.op == "Conv2D":
                w = w * scale                                      # out channels last
            else:
                kh, kw, cin, mult = w.shape
                w = (w.reshape(kh, kw, cin * mult) * scale).reshape(kh, kw, cin, mult)
            self._folded[conv] = (w.float(), (beta - mean * scale).float())
            self._folded[n] = None   # marker: this BN is an identity on the folded conv output

    # -- ops ----------------------------------------------------------------------------------
    def _op_table(self) -> Dict[str, Callable]:
        def conv2d(node, x, w):
            folded = self._folded.get(node.name)
            if folded is not None:
                w, b = folded
            else:
                b = None
            if getattr(self, "_oihw_cache", None) is None:
                self._oihw_cache = {}
            key = (node.name, "conv")
            if key not in self._oihw_cache:
                self._oihw_cache[key] = w.permute(3, 2, 0, 1).contiguous()
            y = _conv(x, self._oihw_cache[key], node.attrs["strides"], node.attrs["padding"])
            return y + b if b is not None else y

        def depthwise(node, x, w):
            folded = self._folded.get(node.name)
            b = None
            if folded is not None:
                w, b = folded
            if getattr(self, "_oihw_cache", None) is None:
                self._oihw_cache = {}
            key = (node.name, "dw")
            if key not in self._oihw_cache:
                kh, kw, cin, mult = w.shape
                self._oihw_cache[key] = w.reshape(kh, kw, cin * mult, 1).permute(2, 3, 0, 1).contiguous()
            wt = self._oihw_cache[key]
            y = _conv(x, wt, node.attrs["strides"], node.attrs["padding"], groups=x.shape[3])
            return y + b if b is not None else y

        def batch_norm(node, x, gamma, beta, mean, var):
            if node.name in self._folded:
                return (x,)
            eps = float(node.attrs.get("epsilon", 1e-3))
            return ((x - mean) / torch.sqrt(var + eps) * gamma + beta,)

        def concat(node, *args):
            *vals, axis = args
            return torch.cat([_t(v) for v in vals], dim=int(axis))

        def cast(node, x):
            return _t(x).to(_NP_OF_TF.get(node.attrs.get("DstT", 1), torch.float32))

        def fill(node, dims, value):
            return torch.full(tuple(_ints(dims)), _t(value).item(), dtype=_t(value).dtype)

        def pack(node, *vals):
            return torch.stack([_t(v) for v in vals], dim=int(node.attrs.get("axis", 0)))

        def rng(node, start, limit, delta):
            return torch.arange(_t(start).item(), _t(limit).item(), _t(delta).item(), dtype=_t(start).dtype)

        def slice_(node, x, begin, size):
            begin, size = _ints(begin), _ints(size)
            idx = tuple(slice(b, None if s == -1 else b + s) for b, s in zip(begin, size))
            return _t(x)[idx]

        def tile(node, x, mult):
            return _t(x).repeat(*_ints(mult))

        def shape(node, x):
            return torch.tensor(list(_t(x).shape), dtype=torch.int32)

        return {
            "Identity": lambda node, x: x,
            "Conv2D": conv2d,
            "DepthwiseConv2dNative": depthwise,
            "FusedBatchNorm": batch_norm,
            "FusedBatchNormV3": batch_norm,
            "BiasAdd": lambda node, x, b: x + b,
            "Relu6": lambda node, x: torch.clamp(x, 0, 6),
            "Relu": lambda node, x: torch.relu(x),
            "Sigmoid": lambda node, x: torch.sigmoid(x),
            "Add": lambda node, a, b: _t(a) + _t(b),
            "AddV2": lambda node, a, b: _t(a) + _t(b),
            "Sub": lambda node, a, b: _t(a) - _t(b),
            "Mul": lambda node, a, b: _t(a) * _t(b),
            "RealDiv": lambda node, a, b: _t(a) / _t(b),
            "Minimum": lambda node, a, b: torch.minimum(_t(a), _t(b)),
            "Maximum": lambda node, a, b: torch.maximum(_t(a), _t(b)),
            "Sqrt": lambda node, x: torch.sqrt(_t(x)),
            "Exp": lambda node, x: torch.exp(_t(x)),
            "Equal": lambda node, a, b: _t(a) == _t(b),
            "All": lambda node, x, axis: torch.all(_t(x)),
            "Assert": lambda node, *a: None,
            "Shape": shape,
            "Reshape": lambda node, x, s: _t(x).reshape(_ints(s)),
            "ExpandDims": lambda node, x, d: _t(x).unsqueeze(int(d)),
            "Squeeze": lambda node, x: _t(x).squeeze(),
            "StridedSlice": lambda node, x, b, e, s: _strided_slice(_t(x), b, e, s, node.attrs),
            "Slice": slice_,
            "Pack": pack,
            "ConcatV2": concat,
            "Cast": cast,
            "Fill": fill,
            "Range": rng,
            "Tile": tile,
        }

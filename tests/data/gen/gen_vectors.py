#!/usr/bin/env python3
"""Generate extra int8 TFLite test vectors with TensorFlow Lite Micro's outputs.

Not part of CI.  See README.md beside this file for how to set up the
environment.  Every case is fully seeded: weights are drawn from numpy's
PCG64 generator (not Keras initializers), representative data and test inputs
too, so re-running with the pinned versions reproduces the files bit for bit
(the .tflite bytes may differ only if the converter version differs).

Usage:
    python gen_vectors.py [--out DIR] [--only CASE[,CASE...]] [--list]

Writes DIR/<case>/{model.tflite, input.npy, expected_tflm.npy,
expected_litert.npy, intermediates_sample0.npz, meta.json}.
intermediates_sample0.npz holds TFLM's value of every non-constant tensor
for sample 0, keyed t<tensor index> (tensor indices as in meta.json).
"""

import argparse
import ctypes
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402
from tflite_micro import runtime as tflm_runtime  # noqa: E402
from tflite_micro.tensorflow.lite.micro.python import (  # noqa: E402
    schema_py_generated as schema_fb,
)

try:
    import ai_edge_litert
    from ai_edge_litert import interpreter as litert_interp
except Exception:  # pragma: no cover - optional
    ai_edge_litert = None
    litert_interp = None

N_SAMPLES = 8
N_REPRESENTATIVE = 64
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "vectors_extra"))


# --------------------------------------------------------------------------
# seeded weights
# --------------------------------------------------------------------------

def _glorot(rng, shape, fan_in, fan_out, gain=1.0):
    a = gain * np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape).astype(np.float32)


def init_weights(model, seed, bias_range=0.3, gains=None):
    """Overwrite every weight of the model with seeded random values.

    Biases and BatchNorm statistics get non-trivial values.  `gains` maps a
    layer name to a multiplier applied to that layer's kernel and bias.
    """
    rng = np.random.default_rng(seed)
    gains = gains or {}
    for layer in model.layers:
        w = layer.get_weights()
        if not w:
            continue
        g = gains.get(layer.name, 1.0)
        cls = type(layer).__name__
        new = []
        if cls in ("Conv2D", "Dense"):
            k = w[0]
            if cls == "Conv2D":
                kh, kw, cin, cout = k.shape
                fan_in, fan_out = kh * kw * cin, kh * kw * cout
            else:
                fan_in, fan_out = k.shape
            new.append(_glorot(rng, k.shape, fan_in, fan_out, 1.5) * g)
            if len(w) > 1:
                new.append(rng.uniform(-bias_range, bias_range, w[1].shape).astype(np.float32) * g)
        elif cls == "DepthwiseConv2D":
            k = w[0]
            kh, kw, cin, dm = k.shape
            new.append(_glorot(rng, k.shape, kh * kw, kh * kw * dm, 1.5) * g)
            if len(w) > 1:
                new.append(rng.uniform(-bias_range, bias_range, w[1].shape).astype(np.float32) * g)
        elif cls == "BatchNormalization":
            c = w[0].shape
            gamma = rng.uniform(0.5, 1.5, c) * rng.choice([-1.0, 1.0], c, p=[0.15, 0.85])
            beta = rng.uniform(-0.4, 0.4, c)
            mean = rng.uniform(-0.3, 0.3, c)
            var = rng.uniform(0.2, 1.5, c)
            new = [x.astype(np.float32) for x in (gamma, beta, mean, var)]
            assert len(w) == 4, "BatchNormalization expected gamma, beta, mean, var"
        else:
            raise ValueError("no init rule for layer class " + cls)
        layer.set_weights(new)


# --------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------

def _inp(shape):
    return keras.Input(shape=shape, batch_size=1)


def case_conv_k5_same_s2_odd():
    x = _inp((13, 11, 3))
    y = layers.Conv2D(6, 5, strides=2, padding="same", activation="relu")(x)
    return keras.Model(x, y), {}


def case_conv_k11_same():
    x = _inp((15, 15, 2))
    y = layers.Conv2D(4, 11, padding="same")(x)
    return keras.Model(x, y), {}


def case_conv_dilation2():
    x = _inp((12, 12, 3))
    y = layers.Conv2D(5, 3, dilation_rate=2, padding="same", activation="relu")(x)
    return keras.Model(x, y), {}


def case_conv_stride3_k2_valid():
    x = _inp((14, 13, 4))
    y = layers.Conv2D(6, 2, strides=3, padding="valid")(x)
    return keras.Model(x, y), {}


def case_conv_kernel_bigger_than_input():
    x = _inp((3, 3, 2))
    y = layers.Conv2D(4, 5, padding="same")(x)
    return keras.Model(x, y), {}


def case_conv_1x1_input():
    x = _inp((1, 1, 5))
    y = layers.Conv2D(6, 3, padding="same")(x)
    return keras.Model(x, y), {}


def case_conv_bn_relu():
    x = _inp((10, 9, 3))
    y = layers.Conv2D(8, 3, padding="same", use_bias=False)(x)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU()(y)
    return keras.Model(x, y), {}


def case_conv_signed_input():
    x = _inp((9, 8, 3))
    y = layers.Conv2D(5, 3, padding="valid")(x)
    return keras.Model(x, y), {"input_range": (-1.0, 1.0)}


def case_dwconv_dm2_s2_same():
    x = _inp((11, 9, 3))
    y = layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same")(x)
    y = layers.ReLU(max_value=6.0)(y)
    return keras.Model(x, y), {"input_range": (0.0, 4.0)}


def case_dwconv_5x5_valid():
    x = _inp((10, 10, 4))
    y = layers.DepthwiseConv2D(5, padding="valid")(x)
    return keras.Model(x, y), {}


def case_maxpool3_s2_same():
    x = _inp((11, 11, 3))
    y = layers.Conv2D(4, 3, padding="same")(x)
    y = layers.MaxPooling2D(3, strides=2, padding="same")(y)
    return keras.Model(x, y), {}


def case_avgpool3_s1_same():
    x = _inp((7, 9, 3))
    y = layers.AveragePooling2D(3, strides=1, padding="same")(x)
    return keras.Model(x, y), {}


def case_avgpool2_s2_same_odd():
    x = _inp((7, 7, 2))
    y = layers.AveragePooling2D(2, strides=2, padding="same")(x)
    return keras.Model(x, y), {}


def case_global_avgpool_conv():
    x = _inp((9, 10, 3))
    y = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    y = layers.GlobalAveragePooling2D()(y)
    y = layers.Dense(6)(y)
    return keras.Model(x, y), {"notes_if_ref_mismatch": [
        "with the pinned versions, one output element (sample 4, class 3) differs by 1 between TFLM and "
        "LiteRT 2.3 reference kernels: FULLY_CONNECTED accumulator 22269, "
        "real value 45.498: TFLM's MultiplyByQuantizedMultiplier (gemmlowp "
        "double rounding: SaturatingRoundingDoublingHighMul then "
        "RoundingDivideByPOT) gives 46, LiteRT's reference (single rounding) "
        "gives 45. Match TFLM."]}


def case_dense_pertensor():
    x = _inp((20,))
    y = layers.Dense(12, activation="relu")(x)
    y = layers.Dense(7)(y)
    return keras.Model(x, y), {"per_tensor_dense": True, "input_range": (-1.0, 1.0)}


def case_concat_channels():
    x = _inp((9, 9, 3))
    b1 = layers.Conv2D(4, 1, padding="same", activation="relu")(x)
    b2 = layers.Conv2D(5, 3, padding="same", activation="relu")(x)
    b3 = layers.MaxPooling2D(3, strides=1, padding="same")(x)
    y = layers.Concatenate(axis=-1)([b1, b2, b3])
    y = layers.GlobalAveragePooling2D()(y)
    y = layers.Dense(4, activation="softmax")(y)
    return keras.Model(x, y), {}


def case_standalone_relu():
    # input -> ReLU -> conv, and a Concatenate -> ReLU
    x = _inp((8, 7, 3))
    r = layers.ReLU()(x)
    a = layers.Conv2D(4, 3, padding="same")(r)
    b = layers.Conv2D(3, 1, padding="same")(x)
    y = layers.Concatenate(axis=-1)([a, b])
    y = layers.ReLU()(y)
    return keras.Model(x, y), {"input_range": (-1.0, 1.0)}


def case_standalone_relu6():
    x = _inp((8, 7, 3))
    r = layers.ReLU(max_value=6.0)(x)
    y = layers.Conv2D(4, 3, padding="same")(r)
    return keras.Model(x, y), {"input_range": (-3.0, 9.0), "notes": [
        "TFLM's int8 RELU6 kernel clamps in the INPUT quantization "
        "(to [input_zp, quantize(6.0, input scale/zp)]) and writes those bytes "
        "unchanged, ignoring the output tensor's own scale/zero point; "
        "LiteRT requantizes to the output scale, so the two differ here, and "
        "TFLM's output is far from the float model. Standalone RELU (not "
        "RELU6) requantizes in TFLM and matches LiteRT. Check "
        "intermediates_sample0.npz tensor t3 = clip(input, -64, 64)."]}


def case_add_relu_scales():
    x = _inp((8, 9, 3))
    a = layers.Conv2D(4, 3, padding="same", name="big")(x)
    b = layers.Conv2D(4, 1, padding="same", name="small")(x)
    y = layers.Add()([a, b])
    y = layers.ReLU()(y)
    return keras.Model(x, y), {"gains": {"big": 8.0, "small": 0.05}}


def case_add_relu_scales_standalone():
    # Same, but the Add's output is also consumed un-activated, so the ReLU
    # cannot be fused into ADD and stays a standalone RELU.
    x = _inp((8, 9, 3))
    a = layers.Conv2D(4, 3, padding="same", name="big")(x)
    b = layers.Conv2D(4, 1, padding="same", name="small")(x)
    s = layers.Add()([a, b])
    r = layers.ReLU()(s)
    y = layers.Concatenate(axis=-1)([s, r])
    return keras.Model(x, y), {"gains": {"big": 8.0, "small": 0.05}}


def _bn_relu6(y):
    y = layers.BatchNormalization()(y)
    return layers.ReLU(max_value=6.0)(y)


def case_mobilenet_like():
    x = _inp((24, 24, 3))
    y = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
    y = _bn_relu6(y)                                   # 12x12x8
    # block 1: stride 2
    y = layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False)(y)
    y = _bn_relu6(y)                                   # 6x6x8
    y = layers.Conv2D(12, 1, use_bias=False)(y)
    y = _bn_relu6(y)                                   # 6x6x12
    # block 2: stride 1 with residual
    z = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(y)
    z = _bn_relu6(z)
    z = layers.Conv2D(12, 1, use_bias=False)(z)
    z = layers.BatchNormalization()(z)                 # linear bottleneck
    y = layers.Add()([y, z])
    y = layers.GlobalAveragePooling2D()(y)
    y = layers.Dense(5, activation="softmax")(y)
    return keras.Model(x, y), {}


def case_small_cnn_signed_softmax():
    x = _inp((12, 10, 1))
    y = layers.Conv2D(6, 3, padding="same", activation="relu")(x)
    y = layers.MaxPooling2D(2)(y)
    y = layers.Conv2D(8, 3, padding="valid", activation="relu")(y)
    y = layers.Flatten()(y)
    y = layers.Dense(16, activation="relu")(y)
    y = layers.Dense(6, activation="softmax")(y)
    return keras.Model(x, y), {"input_range": (-1.0, 1.0)}


CASES = [
    # (name, builder, seed, expected operator list)
    ("conv_k5_same_s2_odd", case_conv_k5_same_s2_odd, 1001, ["CONV_2D"]),
    ("conv_k11_same", case_conv_k11_same, 1002, ["CONV_2D"]),
    ("conv_dilation2", case_conv_dilation2, 1003, ["CONV_2D"]),
    ("conv_stride3_k2_valid", case_conv_stride3_k2_valid, 1004, ["CONV_2D"]),
    ("conv_kernel_bigger_than_input", case_conv_kernel_bigger_than_input, 1005, ["CONV_2D"]),
    ("conv_1x1_input", case_conv_1x1_input, 1006, ["CONV_2D"]),
    ("conv_bn_relu", case_conv_bn_relu, 1007, ["CONV_2D"]),
    ("conv_signed_input", case_conv_signed_input, 1008, ["CONV_2D"]),
    ("dwconv_dm2_s2_same", case_dwconv_dm2_s2_same, 1009, ["DEPTHWISE_CONV_2D"]),
    ("dwconv_5x5_valid", case_dwconv_5x5_valid, 1010, ["DEPTHWISE_CONV_2D"]),
    ("maxpool3_s2_same", case_maxpool3_s2_same, 1011, ["CONV_2D", "MAX_POOL_2D"]),
    ("avgpool3_s1_same", case_avgpool3_s1_same, 1012, ["AVERAGE_POOL_2D"]),
    ("avgpool2_s2_same_odd", case_avgpool2_s2_same_odd, 1013, ["AVERAGE_POOL_2D"]),
    ("global_avgpool_conv", case_global_avgpool_conv, 1014, ["CONV_2D", "MEAN", "FULLY_CONNECTED"]),
    ("dense_pertensor", case_dense_pertensor, 1015, ["FULLY_CONNECTED", "FULLY_CONNECTED"]),
    ("concat_channels", case_concat_channels, 1016, None),
    ("standalone_relu", case_standalone_relu, 1017, None),
    ("standalone_relu6", case_standalone_relu6, 1018, ["RELU6", "CONV_2D"]),
    ("add_relu_scales", case_add_relu_scales, 1019, None),
    ("add_relu_scales_standalone", case_add_relu_scales_standalone, 1020, None),
    ("mobilenet_like", case_mobilenet_like, 1021, None),
    ("small_cnn_signed_softmax", case_small_cnn_signed_softmax, 1022,
     ["CONV_2D", "MAX_POOL_2D", "CONV_2D", "RESHAPE", "FULLY_CONNECTED",
      "FULLY_CONNECTED", "SOFTMAX"]),
]


# --------------------------------------------------------------------------
# conversion
# --------------------------------------------------------------------------

def convert(model, rep_data, per_tensor_dense=False):
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]

    def rep():
        for s in rep_data:
            yield [s[None].astype(np.float32)]

    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    if per_tensor_dense:
        conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    return conv.convert()


_OP_NAMES = {v: k for k, v in vars(schema_fb.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(schema_fb.TensorType).items() if not k.startswith("_")}
_ENUM_FIELDS = {
    "padding": schema_fb.Padding,
    "fusedActivationFunction": schema_fb.ActivationFunctionType,
}


def _plain(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "__dict__"):
        return {k: _plain(x) for k, x in vars(v).items()}
    return v


def describe_model(model_bytes):
    m = tflm_runtime.convert_bytearray_to_object(bytearray(model_bytes))
    assert len(m.subgraphs) == 1
    sg = m.subgraphs[0]
    ops = []
    for op in sg.operators:
        code = tflm_runtime.get_builtin_code_from_operator_code(m.operatorCodes[op.opcodeIndex])
        opts = {}
        if op.builtinOptions is not None:
            for k, v in vars(op.builtinOptions).items():
                if k in _ENUM_FIELDS:
                    names = {vv: kk for kk, vv in vars(_ENUM_FIELDS[k]).items() if not kk.startswith("_")}
                    v = names.get(v, v)
                opts[k] = _plain(v)
        ops.append({
            "op": _OP_NAMES[code],
            "version": int(m.operatorCodes[op.opcodeIndex].version),
            "inputs": [int(i) for i in op.inputs],
            "outputs": [int(i) for i in op.outputs],
            "options": opts,
        })
    tensors = []
    for i, t in enumerate(sg.tensors):
        d = {
            "index": i,
            "name": t.name.decode() if isinstance(t.name, bytes) else t.name,
            "type": _TYPE_NAMES[t.type],
            "shape": [int(s) for s in t.shape] if t.shape is not None else [],
            "is_constant": bool(m.buffers[t.buffer].data is not None and len(m.buffers[t.buffer].data) > 0),
        }
        q = t.quantization
        if q is not None and q.scale is not None:
            d["scale"] = [float(s) for s in q.scale]
            d["zero_point"] = [int(z) for z in q.zeroPoint]
            d["quantized_dimension"] = int(q.quantizedDimension)
        tensors.append(d)
    return ops, tensors, [int(i) for i in sg.inputs], [int(i) for i in sg.outputs]


# --------------------------------------------------------------------------
# TFLM
# --------------------------------------------------------------------------

class _CaptureFds:
    """Capture everything written to fds 1 and 2 (C++ printf/stderr too)."""

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self._tmp = tempfile.TemporaryFile(mode="w+b")
        self._saved = (os.dup(1), os.dup(2))
        os.dup2(self._tmp.fileno(), 1)
        os.dup2(self._tmp.fileno(), 2)
        return self

    def __exit__(self, *exc):
        try:
            ctypes.CDLL(None).fflush(None)
        except Exception:
            pass
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        os.close(self._saved[0])
        os.close(self._saved[1])
        self._tmp.seek(0)
        self.text = self._tmp.read().decode("utf-8", "replace")
        self._tmp.close()
        return False


def tflm_intermediates(model_bytes, x0, tensors, arena_size=1 << 20):
    """Every non-constant tensor of TFLM for one sample (kPreserveAllTensors)."""
    it = tflm_runtime.Interpreter.from_bytes(
        model_bytes, arena_size=arena_size,
        intrepreter_config=tflm_runtime.InterpreterConfig.kPreserveAllTensors)
    it.set_input(x0[None], 0)
    it.invoke()
    out = {}
    for t in tensors:
        if t["is_constant"]:
            continue
        d = it.GetTensor(t["index"], 0)
        out["t%d" % t["index"]] = np.array(d["tensor_data"]).reshape(t["shape"])
    return out


def run_tflm(model_bytes, x_int8, arena_size=1 << 20):
    it = tflm_runtime.Interpreter.from_bytes(model_bytes, arena_size=arena_size)
    outs = []
    for s in x_int8:
        it.set_input(s[None], 0)
        it.invoke()
        outs.append(np.array(it.get_output(0))[0].copy())
    with _CaptureFds() as cap:
        it.print_allocations()
    lines = [ln for ln in cap.text.splitlines() if "RecordingMicroAllocator" in ln]
    alloc = {}
    for ln in lines:
        for key in ("total", "head", "tail"):
            tag = "Arena allocation %s " % key
            if tag in ln:
                alloc[key] = int(ln.split(tag)[1].split()[0])
    return np.stack(outs).astype(np.int8), alloc, lines


_PROBE = r"""
import sys, numpy as np
from tflite_micro import runtime
b = open(sys.argv[1], "rb").read()
x = np.load(sys.argv[2])
try:
    it = runtime.Interpreter.from_bytes(b, arena_size=int(sys.argv[3]))
    it.set_input(x, 0)
    it.invoke()
except Exception:
    sys.exit(3)
"""


def tflm_min_arena(model_bytes, x0, hi):
    """Smallest arena (bytes) with which TFLM allocates and invokes.

    Each probe runs in its own process: creating a second TFLM interpreter
    with a too-small arena in a process that already ran one can segfault
    (seen with tflite-micro 0.dev20261023182759).
    """
    import subprocess
    with tempfile.TemporaryDirectory() as td:
        mp, xp = os.path.join(td, "m.tflite"), os.path.join(td, "x.npy")
        with open(mp, "wb") as f:
            f.write(model_bytes)
        np.save(xp, x0[None])

        def ok(n):
            r = subprocess.run([sys.executable, "-c", _PROBE, mp, xp, str(n)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return r.returncode == 0

        if not ok(hi):
            return None
        lo = 0
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ok(mid):
                hi = mid
            else:
                lo = mid
        return hi


# --------------------------------------------------------------------------
# LiteRT (optional cross-check)
# --------------------------------------------------------------------------

def run_litert(model_bytes, x_int8, resolver, preserve=False):
    Interp = litert_interp.Interpreter
    kw = {"model_content": model_bytes, "num_threads": 1}
    if resolver is not None:
        kw["experimental_op_resolver_type"] = getattr(litert_interp.OpResolverType, resolver)
    if preserve:
        kw["experimental_preserve_all_tensors"] = True
    it = Interp(**kw)
    it.allocate_tensors()
    idx_in = it.get_input_details()[0]["index"]
    idx_out = it.get_output_details()[0]["index"]
    outs = []
    inter = None
    for n, s in enumerate(x_int8):
        it.set_tensor(idx_in, s[None])
        it.invoke()
        outs.append(it.get_tensor(idx_out)[0].copy())
        if preserve and n == 0:
            inter = {}
            for d in it.get_tensor_details():
                i = d["index"]
                try:
                    v = it.get_tensor(i)
                except Exception:
                    continue
                inter["t%d" % i] = np.array(v).copy()
    return np.stack(outs), inter


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def quantize(x, scale, zp):
    return np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)


def versions():
    import importlib.metadata as md
    v = {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}
    for pkg, key in (("tflite-micro", "tflite_micro"), ("ai-edge-litert", "ai_edge_litert")):
        try:
            v[key] = md.version(pkg)
        except Exception:
            v[key] = None
    v["python"] = sys.version.split()[0]
    return v


def build_case(name, builder, seed, expected_ops, out_dir, vers):
    keras.utils.set_random_seed(seed)
    keras.backend.clear_session()
    model, opt = builder()
    init_weights(model, seed, gains=opt.get("gains"))
    lo, hi = opt.get("input_range", (0.0, 1.0))
    in_shape = tuple(model.inputs[0].shape[1:])
    rng = np.random.default_rng(seed + 500000)
    rep = rng.uniform(lo, hi, size=(N_REPRESENTATIVE,) + in_shape).astype(np.float32)
    # make sure the extremes of the range are seen during calibration
    rep[0].fill(lo)
    rep[1].fill(hi)
    xf = rng.uniform(lo, hi, size=(N_SAMPLES,) + in_shape).astype(np.float32)

    model_bytes = convert(model, rep, per_tensor_dense=opt.get("per_tensor_dense", False))
    ops, tensors, sg_in, sg_out = describe_model(model_bytes)
    op_names = [o["op"] for o in ops]
    tin, tout = tensors[sg_in[0]], tensors[sg_out[0]]
    assert tin["type"] == "INT8" and tout["type"] == "INT8", (tin["type"], tout["type"])
    in_scale, in_zp = tin["scale"][0], tin["zero_point"][0]
    out_scale, out_zp = tout["scale"][0], tout["zero_point"][0]
    xq = quantize(xf, in_scale, in_zp)

    y_tflm, alloc, alloc_lines = run_tflm(model_bytes, xq)
    inter = tflm_intermediates(model_bytes, xq[0], tensors)
    out_key = "t%d" % sg_out[0]
    assert np.array_equal(inter[out_key].reshape(y_tflm[0].shape), y_tflm[0])
    min_arena = tflm_min_arena(model_bytes, xq[0], max(alloc.get("total", 0) * 2, 4096))

    # per-tensor check for FC weights where asked
    fc_weight_scales = []
    for o in ops:
        if o["op"] == "FULLY_CONNECTED":
            fc_weight_scales.append(len(tensors[o["inputs"][1]].get("scale", [])))

    checks = {"total_output_elems": int(y_tflm.size)}
    y_ref = None
    if litert_interp is not None:
        y_ref, _ = run_litert(model_bytes, xq, "BUILTIN_REF")
        checks["tflm_eq_litert_ref"] = bool(np.array_equal(y_ref, y_tflm))
        checks["tflm_vs_litert_ref_mismatch_elems"] = int(np.sum(y_ref != y_tflm))
        y_opt, _ = run_litert(model_bytes, xq, "BUILTIN_WITHOUT_DEFAULT_DELEGATES")
        d = np.abs(y_opt.astype(np.int32) - y_tflm.astype(np.int32))
        checks["tflm_vs_litert_builtin_opt_mismatch_elems"] = int(np.sum(d != 0))
        checks["tflm_vs_litert_builtin_opt_max_abs_diff"] = int(d.max())
    yf = model.predict(xf, batch_size=1, verbose=0)
    yf = np.asarray(yf).reshape(y_tflm.shape)
    deq = (y_tflm.astype(np.float32) - out_zp) * out_scale
    err = float(np.max(np.abs(deq - yf)))
    checks["int8_vs_float_max_abs_err"] = err
    checks["int8_vs_float_max_abs_err_in_lsb"] = err / out_scale
    checks["output_distinct_values"] = int(len(np.unique(y_tflm)))
    checks["output_saturated_fraction"] = float(np.mean((y_tflm == -128) | (y_tflm == 127)))

    notes = list(opt.get("notes", []))
    if y_ref is not None and not checks["tflm_eq_litert_ref"]:
        dd = np.abs(y_ref.astype(np.int32) - y_tflm.astype(np.int32))
        notes.append("TFLM differs from LiteRT reference kernels in %d of %d output "
                     "elements (max abs diff %d); expected_tflm.npy is the reference "
                     "of record" % (int(np.sum(dd != 0)), dd.size, int(dd.max())))
        notes.extend(opt.get("notes_if_ref_mismatch", []))
    if expected_ops is not None and op_names != expected_ops:
        notes.append("operator list differs from the one intended: %s" % expected_ops)

    meta = {
        "case": name,
        "seed": seed,
        "n_samples": N_SAMPLES,
        "sample_axis_note": "axis 0 of input.npy/expected_*.npy = sample; run each with batch 1",
        "input_float_range": [lo, hi],
        "input_shape": tin["shape"],
        "input_dtype": "int8",
        "input_scale": in_scale,
        "input_zero_point": in_zp,
        "output_shape": tout["shape"],
        "output_dtype": "int8",
        "output_scale": out_scale,
        "output_zero_point": out_zp,
        "input_quantization": "q = clip(round(x/scale) + zero_point, -128, 127)  (numpy round = half to even)",
        "operator_names": op_names,
        "fully_connected_weight_scale_counts": fc_weight_scales,
        "model_bytes": len(model_bytes),
        "keras_params": int(model.count_params()),
        "tflm_arena_bytes_recorded": alloc.get("total"),
        "tflm_arena_head_bytes": alloc.get("head"),
        "tflm_arena_tail_bytes": alloc.get("tail"),
        "tflm_min_arena_size_bisect": min_arena,
        "tflm_arena_note": ("recorded = RecordingMicroAllocator 'Arena allocation total' after "
                            "invoke; bisect = smallest arena_size with which the Python TFLM "
                            "interpreter allocated and invoked (depends on the buffer's "
                            "alignment by a few bytes, and for tiny models can exceed the "
                            "recorded total)"),
        "tflm_print_allocations": alloc_lines,
        "operators": ops,
        "subgraph_inputs": sg_in,
        "subgraph_outputs": sg_out,
        "flatbuffer_tensors": tensors,
        "keras_layers": [{"name": l.name, "class": type(l).__name__} for l in model.layers],
        "reference_of_record": "tflm",
        "checks": checks,
        "notes": notes,
        "versions": vers,
    }

    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.tflite"), "wb") as f:
        f.write(model_bytes)
    np.save(os.path.join(d, "input.npy"), xq)
    np.save(os.path.join(d, "expected_tflm.npy"), y_tflm)
    if y_ref is not None:
        np.save(os.path.join(d, "expected_litert.npy"), y_ref)
    np.savez_compressed(os.path.join(d, "intermediates_sample0.npz"), **inter)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--only", default=None, help="comma-separated case names")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.list:
        for c in CASES:
            print(c[0])
        return
    wanted = set(a.only.split(",")) if a.only else None
    vers = versions()
    summary = []
    for name, builder, seed, exp in CASES:
        if wanted and name not in wanted:
            continue
        meta = build_case(name, builder, seed, exp, a.out, vers)
        c = meta["checks"]
        line = "%-32s %6d B  arena %6s  ops %s  tflm==ref %s  distinct %d sat %.2f" % (
            name, meta["model_bytes"], meta["tflm_arena_bytes_recorded"],
            ",".join(meta["operator_names"]), c.get("tflm_eq_litert_ref"),
            c["output_distinct_values"], c["output_saturated_fraction"])
        if meta["notes"]:
            line += "  NOTE: " + "; ".join(meta["notes"])
        print(line, flush=True)
        summary.append(meta)
    print("versions:", json.dumps(vers))


if __name__ == "__main__":
    main()

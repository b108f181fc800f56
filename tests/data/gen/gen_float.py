#!/usr/bin/env python3
"""Generate the float32 TFLite models under ../float/ (not run in CI).

Three small Keras models are pretrained for a minute or two of CPU on a
procedural, seeded colour-pattern task (8 classes drawn below with numpy), then
converted twice with tf.lite.TFLiteConverter: float32 (no optimization, what
`microcnn finetune --base` and `microcnn quantize` take) and full-int8
post-training quantization (int8 input and output, the calibration images as the
representative dataset, what `microcnn import` takes).

Models (input 32x32x3, pixels/255 in [0, 1], batch 1):
  mobilenetv2  keras.applications.MobileNetV2(alpha=0.35, weights=None,
               include_top=False) cut after block 6 (so the float file stays
               well under 1 MB), GlobalAveragePooling2D, Dense(8, softmax).
               Gives PAD, CONV_2D, DEPTHWISE_CONV_2D (fused RELU6, folded
               batch norm), ADD, MEAN, FULLY_CONNECTED, SOFTMAX.
  vgg          Sequential: ZeroPadding2D + Conv2D valid, Conv2D + BatchNorm +
               ReLU, MaxPooling2D, AveragePooling2D, Flatten, Dense relu,
               Dense softmax: PAD, MAX_POOL_2D, AVERAGE_POOL_2D, RESHAPE.
  concat       An inception-style block: three branches (1x1, 3x3, max pool +
               1x1) joined by Concatenate: CONCATENATION.

Writes ../float/:
  calib-images-idx4-ubyte, calib-labels-idx1-ubyte   100 calibration images
  test-images-idx4-ubyte, test-labels-idx1-ubyte     200 test images
  <model>.tflite            float32 model
  <model>_int8.tflite       TFLite's own full-int8 conversion
  <model>_probs.npy         float32 (200, 8): the float model's outputs on the
                            test images (TFLite interpreter, one at a time)
  <model>_logits.npy        float32 (200, 8): the tensor before SOFTMAX
  <model>_int8_outputs.npy  int8 (200, 8): the int8 model's outputs on the test
                            images (TFLite interpreter; `microcnn import` cannot
                            read vgg_int8, whose PAD the int8 engine lacks)
  meta.json                 versions, training accuracy, operator lists

Usage: /tmp/tf-venv/bin/python tests/data/gen/gen_float.py [--out DIR] [--only NAME,...]
       /tmp/tf-venv/bin/python tests/data/gen/gen_float.py --int8-outputs-only
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "float"))
SIZE = 32
CLASSES = 8
NAMES = ["disc", "square", "ring", "cross", "hstripes", "vstripes", "checker", "diagonal"]


# --------------------------------------------------------------------------
# the procedural pretraining task
# --------------------------------------------------------------------------

def draw(rng, label):
    """One 32x32x3 uint8 image of class `label`: a coloured pattern on a noisy
    background, at a random place and size."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    bg = rng.uniform(0, 120, size=3)
    fg = rng.uniform(110, 255, size=3)
    if rng.random() < 0.5:
        bg, fg = fg * 0.5 + 100, bg * 0.5
    cy, cx = rng.uniform(10, 22, size=2)
    r = rng.uniform(6, 11)
    period = rng.uniform(4, 8)
    phase = rng.uniform(0, period)
    dy, dx = yy - cy, xx - cx
    if label == 0:
        mask = dy * dy + dx * dx <= r * r
    elif label == 1:
        mask = (np.abs(dy) <= r * 0.8) & (np.abs(dx) <= r * 0.8)
    elif label == 2:
        d = np.sqrt(dy * dy + dx * dx)
        mask = (d <= r) & (d >= r * 0.55)
    elif label == 3:
        w = r * 0.3
        mask = ((np.abs(dy) <= w) & (np.abs(dx) <= r)) | ((np.abs(dx) <= w) & (np.abs(dy) <= r))
    elif label == 4:
        mask = ((yy + phase) % period) < period / 2
    elif label == 5:
        mask = ((xx + phase) % period) < period / 2
    elif label == 6:
        mask = (((yy + phase) // period + (xx + phase) // period) % 2) == 0
    else:
        mask = ((yy + xx + phase) % (period * 1.4)) < period * 0.7
    img = np.where(mask[..., None], fg, bg)
    img = img + rng.normal(0, 12, size=img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def dataset(seed, n):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % CLASSES
    rng.shuffle(labels)
    images = np.stack([draw(rng, int(k)) for k in labels])
    return images, labels.astype(np.uint8)


def write_idx(prefix, images, labels):
    n, h, w, c = images.shape
    with open(prefix.format("images-idx4"), "wb") as f:
        f.write(bytes([0, 0, 8, 4]))
        for d in (n, h, w, c):
            f.write(int(d).to_bytes(4, "big"))
        f.write(images.tobytes())
    with open(prefix.format("labels-idx1"), "wb") as f:
        f.write(bytes([0, 0, 8, 1]))
        f.write(int(n).to_bytes(4, "big"))
        f.write(labels.tobytes())


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------

def mobilenetv2():
    base = keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 3), alpha=0.35, weights=None, include_top=False
    )
    x = base.get_layer("block_6_project_BN").output
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(CLASSES, activation="softmax")(x)
    model = keras.Model(base.input, out, name="mobilenetv2")
    # keras.applications uses momentum 0.999: the moving statistics would barely
    # move in a few hundred steps, and inference would use the initial ones.
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.9
    return model


def vgg():
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            layers.ZeroPadding2D(1),
            layers.Conv2D(12, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(24, 3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.AveragePooling2D(2),
            layers.ZeroPadding2D(1),
            layers.Conv2D(32, 3, strides=2, activation="relu6"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(32, activation="relu"),
            layers.Dense(CLASSES, activation="softmax"),
        ],
        name="vgg",
    )


def concat():
    inp = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inp)
    a = layers.Conv2D(8, 1, activation="relu")(x)
    b = layers.Conv2D(12, 3, padding="same", activation="relu")(x)
    c = layers.MaxPooling2D(3, strides=1, padding="same")(x)
    c = layers.Conv2D(8, 1, activation="relu")(c)
    x = layers.Concatenate()([a, b, c])
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(CLASSES, activation="softmax")(x)
    return keras.Model(inp, out, name="concat")


MODELS = {"mobilenetv2": (mobilenetv2, 8), "vgg": (vgg, 6), "concat": (concat, 6)}


def converter_for(model):
    # Static batch 1 (Flatten is then one RESHAPE), as gen_vectors.py does.
    inp = keras.Input((SIZE, SIZE, 3), batch_size=1)
    return tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, model(inp)))


def run_tflite(content, images, want_logits):
    interp = tf.lite.Interpreter(model_content=content, experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    ops = interp._get_ops_details()
    softmax = [o for o in ops if o["op_name"] == "SOFTMAX"]
    logits_index = softmax[-1]["inputs"][0] if softmax else None
    probs, logits = [], []
    for img in images:
        x = img[None]
        if inp["dtype"] == np.int8:
            scale, zp = inp["quantization"]
            x = np.clip(np.round(x / scale + zp), -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        probs.append(interp.get_tensor(out["index"])[0].copy())
        if want_logits and logits_index is not None:
            logits.append(interp.get_tensor(logits_index)[0].copy())
    names = [o["op_name"] for o in ops]
    return np.array(probs), (np.array(logits) if logits else None), names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--only", default="")
    ap.add_argument("--int8-outputs-only", action="store_true",
                    help="only rewrite <model>_int8_outputs.npy from the existing files")
    args = ap.parse_args()
    if args.int8_outputs_only:
        test_x, _ = dataset(3, 200)
        for name in MODELS:
            with open(os.path.join(args.out, f"{name}_int8.tflite"), "rb") as f:
                q_out, _, _ = run_tflite(f.read(), test_x.astype(np.float32) / 255.0, False)
            np.save(os.path.join(args.out, f"{name}_int8_outputs.npy"), q_out.astype(np.int8))
        return
    os.makedirs(args.out, exist_ok=True)
    keras.utils.set_random_seed(7)

    train_x, train_y = dataset(1, 3000)
    calib_x, calib_y = dataset(2, 100)
    test_x, test_y = dataset(3, 200)
    write_idx(os.path.join(args.out, "calib-{}-ubyte"), calib_x, calib_y)
    write_idx(os.path.join(args.out, "test-{}-ubyte"), test_x, test_y)
    scale = lambda a: a.astype(np.float32) / 255.0  # noqa: E731

    meta = {
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
        "input": "pixels/255, 32x32x3, batch 1",
        "classes": NAMES,
        "models": {},
    }
    only = [m for m in args.only.split(",") if m]
    for name, (build, epochs) in MODELS.items():
        if only and name not in only:
            continue
        model = build()
        model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(scale(train_x), train_y, batch_size=64, epochs=epochs, verbose=2)
        _, test_acc = model.evaluate(scale(test_x), test_y, verbose=0)

        float_bytes = converter_for(model).convert()
        with open(os.path.join(args.out, f"{name}.tflite"), "wb") as f:
            f.write(float_bytes)

        conv = converter_for(model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([scale(img[None])] for img in calib_x)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        int8_bytes = conv.convert()
        with open(os.path.join(args.out, f"{name}_int8.tflite"), "wb") as f:
            f.write(int8_bytes)

        probs, logits, ops = run_tflite(float_bytes, scale(test_x), True)
        np.save(os.path.join(args.out, f"{name}_probs.npy"), probs.astype(np.float32))
        np.save(os.path.join(args.out, f"{name}_logits.npy"), logits.astype(np.float32))
        q_out, _, q_ops = run_tflite(int8_bytes, scale(test_x), False)
        np.save(os.path.join(args.out, f"{name}_int8_outputs.npy"), q_out.astype(np.int8))
        float_top1 = probs.argmax(1)
        int8_top1 = q_out.argmax(1)
        meta["models"][name] = {
            "keras_test_accuracy": round(float(test_acc), 4),
            "tflite_float_test_accuracy": round(float((float_top1 == test_y).mean()), 4),
            "tflite_int8_test_accuracy": round(float((int8_top1 == test_y).mean()), 4),
            "tflite_int8_vs_float_top1_agreement": round(float((int8_top1 == float_top1).mean()), 4),
            "float_bytes": len(float_bytes),
            "int8_bytes": len(int8_bytes),
            "float_operators": ops,
            "int8_operators": q_ops,
        }
        print(name, json.dumps({k: v for k, v in meta["models"][name].items() if "operators" not in k}))
    # Error cases (untrained): a model without a classifier, one with an
    # operator microcnn does not map (LEAKY_RELU).
    inp = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    feats = keras.Model(inp, layers.GlobalAveragePooling2D()(x))
    y = layers.Conv2D(8, 3, strides=2, padding="same")(inp)
    y = layers.LeakyReLU(0.1)(y)
    y = layers.GlobalAveragePooling2D()(y)
    leaky = keras.Model(inp, layers.Dense(CLASSES, activation="softmax")(y))
    for name, model in (("noclassifier", feats), ("unsupported_op", leaky)):
        content = converter_for(model).convert()
        with open(os.path.join(args.out, f"{name}.tflite"), "wb") as f:
            f.write(content)
        _, _, ops = run_tflite(content, scale(test_x[:1]), False)
        meta["models"][name] = {"float_bytes": len(content), "float_operators": ops}
    path = os.path.join(args.out, "meta.json")
    if only and os.path.exists(path):
        old = json.load(open(path))
        old["models"].update(meta["models"])
        meta["models"] = old["models"]
    with open(path, "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

"""Train the same small CNN with `microcnn train` and with Keras on a
user-style image folder, and compare test accuracy and speed.

Both tools get:
  * the same class folders (`DATA/train`, `DATA/test`, made by make_data.py),
  * images resized bilinearly to 32x32 RGB (tf.image.resize semantics, no
    aspect-ratio crop) and scaled to [0, 1],
  * the same net:  conv16-pool-conv32-pool-conv32-pool-flatten-dense(classes)
    (3x3 "same" convolutions with ReLU, 2x2 max pooling, softmax output),
  * Glorot-uniform kernels / zero biases, Adam lr 1e-3 (b1 .9, b2 .999,
    eps 1e-7), sparse categorical cross-entropy, batch 32, 20 epochs, a full
    reshuffle of the training set every epoch, no validation split.

For every seed it runs
  microcnn train  -> microcnn eval (f32 checkpoint)
                  -> microcnn quantize (calibrated on the training folder)
                  -> microcnn eval (int8 .mcnn)
  Keras fit (numpy arrays loaded with keras.utils.image_dataset_from_directory)
                  -> evaluate on the test folder
and finally prints a markdown table, writes results.json and figures.

    python compare.py --data /tmp/user_data --seeds 0 1 2 \
        --bin ../../../target/release/microcnn --work /tmp/user_compare_runs

Runs the tools one after the other (never concurrently) so the timings are
not disturbed by each other.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# (kind, parameter) in order; the same list builds the TOML and the Keras model
ARCH = [
    ("conv2d", 16),
    ("maxpool2d", 2),
    ("conv2d", 32),
    ("maxpool2d", 2),
    ("conv2d", 32),
    ("maxpool2d", 2),
    ("flatten", None),
]
SIZE = 32


def arch_toml(n_classes):
    lines = [f"input = [{SIZE}, {SIZE}, 3]", ""]
    for kind, p in ARCH:
        lines.append("[[layer]]")
        lines.append(f'type = "{kind}"')
        if kind == "conv2d":
            lines += [f"filters = {p}", "kernel = 3", 'padding = "same"', 'activation = "relu"']
        elif kind == "maxpool2d":
            lines.append(f"pool = {p}")
        lines.append("")
    lines += ["[[layer]]", 'type = "dense"', f"units = {n_classes}", 'activation = "softmax"', ""]
    return "\n".join(lines)


def keras_model(n_classes):
    import keras
    from keras import layers

    seq = [keras.Input((SIZE, SIZE, 3)), layers.Rescaling(1.0 / 255)]
    for kind, p in ARCH:
        if kind == "conv2d":
            seq.append(layers.Conv2D(p, 3, padding="same", activation="relu"))
        elif kind == "maxpool2d":
            seq.append(layers.MaxPooling2D(p))
        elif kind == "flatten":
            seq.append(layers.Flatten())
    seq.append(layers.Dense(n_classes, activation="softmax"))
    return keras.Sequential(seq)


def class_names(folder):
    return sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))


# ---------------------------------------------------------------- microcnn

def run(cmd, **kw):
    print("  $", " ".join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit(f"command failed ({r.returncode}): {' '.join(cmd)}")
    return r.stdout


def read_metrics(path):
    with open(path) as f:
        head = f.readline().strip().split(",")
        rows = [dict(zip(head, line.strip().split(","))) for line in f if line.strip()]
    return {
        "loss": [float(r["train_loss"]) for r in rows],
        "acc": [float(r["train_accuracy"]) for r in rows],
        "sec": [float(r["seconds"]) for r in rows],
    }


def microcnn_seed(args, seed, arch_path):
    train, test = os.path.join(args.data, "train"), os.path.join(args.data, "test")
    out = os.path.join(args.work, f"microcnn_seed{seed}")
    t0 = time.perf_counter()
    run([args.bin, "train", "--data", train, "--arch", arch_path, "--out", out,
         "--epochs", str(args.epochs), "--batch", str(args.batch), "--lr", str(args.lr),
         "--optimizer", "adam", "--seed", str(seed), "--val-split", "0", "--quiet"])
    wall = time.perf_counter() - t0
    with open(os.path.join(out, "labels.txt")) as f:
        labels = [l.strip() for l in f if l.strip()]
    ev32 = json.loads(run([args.bin, "eval", out, "--data", test, "--json",
                           "--confusion", os.path.join(out, "confusion_test.png")]))
    mcnn = os.path.join(args.work, f"microcnn_seed{seed}.mcnn")
    run([args.bin, "quantize", out, "--calib", train, "-o", mcnn])
    ev8 = json.loads(run([args.bin, "eval", mcnn, "--data", test, "--json"]))
    m = read_metrics(os.path.join(out, "metrics.csv"))
    return {
        "labels": labels,
        "acc_f32": ev32["accuracy"],
        "acc_int8": ev8["accuracy"],
        "samples": ev32["samples"],
        "per_class_f32": ev32.get("per_class_accuracy"),
        "confusion_f32": ev32.get("confusion"),
        "train_loss": m["loss"],
        "train_acc": m["acc"],
        "epoch_sec": m["sec"],
        "wall_train_sec": wall,
        "mcnn_bytes": os.path.getsize(mcnn),
    }


# ---------------------------------------------------------------- Keras

_CACHE = {}


def load_folder(folder):
    """Whole folder as uint8-valued float32 (N, 32, 32, 3) and int labels."""
    if folder in _CACHE:
        return _CACHE[folder]
    import keras

    ds = keras.utils.image_dataset_from_directory(
        folder, labels="inferred", label_mode="int", color_mode="rgb",
        image_size=(SIZE, SIZE), interpolation="bilinear", shuffle=False,
        batch_size=None, verbose=False)
    xs, ys = [], []
    for x, y in ds.batch(256):
        xs.append(x.numpy())
        ys.append(y.numpy())
    res = (np.concatenate(xs), np.concatenate(ys).astype(np.int64), list(ds.class_names))
    _CACHE[folder] = res
    return res


def keras_seed(args, seed, n_classes):
    import keras

    xtr, ytr, names = load_folder(os.path.join(args.data, "train"))
    xte, yte, _ = load_folder(os.path.join(args.data, "test"))
    keras.utils.set_random_seed(seed)
    model = keras_model(n_classes)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=args.lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    class Timer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.sec = []

        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.sec.append(time.perf_counter() - self.t)

    timer = Timer()
    t0 = time.perf_counter()
    h = model.fit(xtr, ytr, batch_size=args.batch, epochs=args.epochs, shuffle=True,
                  verbose=0, callbacks=[timer])
    wall = time.perf_counter() - t0
    # direct calls, not model.predict: no retracing warnings across seeds
    pred = np.concatenate([model(xte[i:i + 256], training=False).numpy().argmax(1)
                           for i in range(0, len(xte), 256)])
    conf = np.zeros((n_classes, n_classes), dtype=int)
    for t, p in zip(yte, pred):
        conf[t, p] += 1
    return {
        "labels": names,
        "acc_f32": float((pred == yte).mean()),
        "samples": int(len(yte)),
        "per_class_f32": (conf.diagonal() / conf.sum(1)).tolist(),
        "confusion_f32": conf.tolist(),
        "train_loss": [float(v) for v in h.history["loss"]],
        "train_acc": [float(v) for v in h.history["accuracy"]],
        "epoch_sec": timer.sec,
        "wall_train_sec": wall,
        "params": int(model.count_params()),
    }


# ---------------------------------------------------------------- report

def ms(vals, digits=3):
    """mean ± sample standard deviation (and min–max)."""
    m = statistics.mean(vals)
    s = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{m:.{digits}f} ± {s:.{digits}f} ({min(vals):.{digits}f}–{max(vals):.{digits}f})"


def report(res):
    seeds = sorted(res["microcnn"].keys() | res["keras"].keys(), key=int)
    out = []
    out.append("| seed | microcnn f32 acc | microcnn int8 acc | Keras f32 acc | microcnn s/epoch | Keras s/epoch |")
    out.append("| ---: | ---: | ---: | ---: | ---: | ---: |")
    cols = {k: [] for k in ("m32", "m8", "k32", "ms", "ks")}
    for s in seeds:
        m, k = res["microcnn"].get(s), res["keras"].get(s)
        row = [s]
        if m:
            cols["m32"].append(m["acc_f32"]); cols["m8"].append(m["acc_int8"])
            cols["ms"].append(statistics.mean(m["epoch_sec"]))
        if k:
            cols["k32"].append(k["acc_f32"]); cols["ks"].append(statistics.mean(k["epoch_sec"]))
        row += [f"{m['acc_f32']:.3f}" if m else "–", f"{m['acc_int8']:.3f}" if m else "–",
                f"{k['acc_f32']:.3f}" if k else "–",
                f"{statistics.mean(m['epoch_sec']):.2f}" if m else "–",
                f"{statistics.mean(k['epoch_sec']):.2f}" if k else "–"]
        out.append("| " + " | ".join(str(v) for v in row) + " |")
    f = lambda key, d=3: ms(cols[key], d) if cols[key] else "–"
    out.append(f"| **mean ± sd (min–max)** | {f('m32')} | {f('m8')} | {f('k32')} | {f('ms', 2)} | {f('ks', 2)} |")
    return "\n".join(out)


def figures(res, fig_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(fig_dir, exist_ok=True)
    colours = {"microcnn": "tab:blue", "keras": "tab:orange"}
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    for tool in ("microcnn", "keras"):
        for i, (s, r) in enumerate(sorted(res[tool].items(), key=lambda kv: int(kv[0]))):
            ep = np.arange(1, len(r["train_loss"]) + 1)
            lab = f"{tool}" if i == 0 else None
            ls = ["-", "--", ":"][i % 3]
            ax[0].plot(ep, r["train_loss"], ls, color=colours[tool], label=lab)
            ax[1].plot(ep, r["train_acc"], ls, color=colours[tool], label=lab)
    ax[0].set(xlabel="epoch", ylabel="train loss", title="training loss (line style = seed)")
    ax[1].set(xlabel="epoch", ylabel="train accuracy", title="training accuracy")
    for a in ax:
        a.grid(alpha=0.3)
        a.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(fig_dir, "curves.png"), dpi=110)
    plt.close(fig)

    seeds = sorted(res["microcnn"].keys() | res["keras"].keys(), key=int)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    w = 0.27
    x = np.arange(len(seeds))
    get = lambda tool, key: [res[tool][s][key] if s in res[tool] else np.nan for s in seeds]
    ax.bar(x - w, get("microcnn", "acc_f32"), w, label="microcnn f32", color="tab:blue")
    ax.bar(x, get("microcnn", "acc_int8"), w, label="microcnn int8", color="tab:cyan")
    ax.bar(x + w, get("keras", "acc_f32"), w, label="Keras f32", color="tab:orange")
    ax.set_xticks(x, [f"seed {s}" for s in seeds])
    ax.set(ylabel="test accuracy", ylim=(0, 1), title="test accuracy (1002 images, 6 classes)")
    ax.axhline(1 / 6, color="grey", lw=0.8, ls=":")
    ax.legend(loc="upper center", ncol=3, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(fig_dir, "accuracy.png"), dpi=110)
    plt.close(fig)


def sample_sheet(args, fig_dir):
    """What the nets see: 8 test images per class after the 32x32 resize."""
    from PIL import Image

    x, y, names = load_folder(os.path.join(args.data, "test"))
    per, sc = 8, 2
    sheet = Image.new("RGB", (per * (SIZE + 2) * sc, len(names) * (SIZE + 2) * sc), "white")
    for c in range(len(names)):
        idx = np.flatnonzero(y == c)[:per]
        for j, i in enumerate(idx):
            im = Image.fromarray(np.clip(x[i], 0, 255).astype(np.uint8))
            im = im.resize((SIZE * sc, SIZE * sc), Image.NEAREST)
            sheet.paste(im, (j * (SIZE + 2) * sc, c * (SIZE + 2) * sc))
    sheet.save(os.path.join(fig_dir, "samples_32px.png"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="/tmp/user_data")
    ap.add_argument("--bin", default=os.path.normpath(os.path.join(HERE, "../../../target/release/microcnn")))
    ap.add_argument("--work", default="/tmp/user_compare_runs")
    ap.add_argument("--fig-dir", default=HERE, help="where the PNG figures go")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--tools", nargs="+", default=["microcnn", "keras"], choices=["microcnn", "keras"])
    ap.add_argument("--report-only", action="store_true", help="re-print table / figures from WORK/results.json")
    args = ap.parse_args()

    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.fig_dir, exist_ok=True)
    res_path = os.path.join(args.work, "results.json")
    res = {"microcnn": {}, "keras": {}}
    if os.path.exists(res_path):
        with open(res_path) as f:
            res = json.load(f)

    if not args.report_only:
        names = class_names(os.path.join(args.data, "train"))
        arch_path = os.path.join(args.work, "arch.toml")
        with open(arch_path, "w") as f:
            f.write(arch_toml(len(names)))
        res["config"] = {"data": args.data, "epochs": args.epochs, "batch": args.batch,
                         "lr": args.lr, "classes": names, "bin": args.bin,
                         "nproc": os.cpu_count()}
        for seed in args.seeds:
            if "microcnn" in args.tools:
                print(f"[microcnn] seed {seed}", flush=True)
                r = microcnn_seed(args, seed, arch_path)
                assert r["labels"] == names, (r["labels"], names)
                res["microcnn"][str(seed)] = r
                print(f"  test acc f32 {r['acc_f32']:.4f}  int8 {r['acc_int8']:.4f}  "
                      f"{statistics.mean(r['epoch_sec']):.2f} s/epoch", flush=True)
            if "keras" in args.tools:
                print(f"[keras] seed {seed}", flush=True)
                r = keras_seed(args, seed, len(names))
                assert r["labels"] == names, (r["labels"], names)
                res["keras"][str(seed)] = r
                print(f"  test acc f32 {r['acc_f32']:.4f}  "
                      f"{statistics.mean(r['epoch_sec']):.2f} s/epoch", flush=True)
            with open(res_path, "w") as f:
                json.dump(res, f, indent=1)
        sample_sheet(args, args.fig_dir)

    print()
    print(report(res))
    figures(res, args.fig_dir)
    print(f"\nresults: {res_path}; figures in {args.fig_dir}")


if __name__ == "__main__":
    main()

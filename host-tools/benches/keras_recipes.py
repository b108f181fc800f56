# The Keras side of the camera-size seconds-per-epoch comparisons (README training speed
# table), the same nets, optimizer, batch and data as `cargo bench --bench train`:
#   python host-tools/benches/keras_recipes.py cnn32 [EPOCHS]        32×32×3, conv 16/32/32 + pools, dense 32, 4 classes
#   python host-tools/benches/keras_recipes.py mobilenet96 [EPOCHS]  96×96×3, the `mobilenet` preset (host-tools/archs/mobilenet.toml)
# 4,000 images, 4 classes, batch 32, Adam 1e-3, numpy arrays in memory, 2 threads.
# The data is a fixed formula both sides compute (pixel i = hash(i) / 2^24, label s % 4),
# so no files are shared. Prints each epoch's wall and CPU seconds (all threads: on a
# machine shared with other work the CPU time is the steadier figure) and the medians
# of epochs 2.. (the first one includes tracing).
import sys, time, statistics, numpy as np, tensorflow as tf, keras
tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(2)
tf.keras.utils.set_random_seed(0)
recipe = sys.argv[1]
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
L = keras.layers
N, CLASSES = 4000, 4

def data(shape):
    size = N * int(np.prod(shape))
    i = np.arange(size, dtype=np.uint64)
    x = (((i * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)) >> np.uint64(8)).astype(np.float32) / np.float32(1 << 24)
    return x.reshape((N,) + shape), (np.arange(N) % CLASSES).astype(np.int64)

def bn_relu6():
    return [L.BatchNormalization(momentum=0.9, epsilon=1e-3), L.ReLU(6.0)]

if recipe == "cnn32":
    shape = (32, 32, 3)
    layers = [L.Conv2D(16, 3, padding="same", activation="relu"), L.MaxPooling2D(2),
              L.Conv2D(32, 3, padding="same", activation="relu"), L.MaxPooling2D(2),
              L.Conv2D(32, 3, padding="same", activation="relu"), L.MaxPooling2D(2),
              L.Flatten(), L.Dense(32, activation="relu"), L.Dense(CLASSES, activation="softmax")]
elif recipe == "mobilenet96":
    shape = (96, 96, 3)
    layers = [L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)] + bn_relu6()
    for filters, stride in [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1)]:
        layers += [L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)] + bn_relu6()
        layers += [L.Conv2D(filters, 1, use_bias=False)] + bn_relu6()
    layers += [L.GlobalAveragePooling2D(), L.Dense(CLASSES, activation="softmax")]
else:
    sys.exit(f"{recipe}: unknown recipe (cnn32, mobilenet96)")

x, y = data(shape)
m = keras.Sequential([keras.Input(shape)] + layers)
m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
times, cpu = [], []
class T(keras.callbacks.Callback):
    def on_epoch_begin(s, e, l=None): s.t, s.c = time.time(), time.process_time()
    def on_epoch_end(s, e, l=None):
        times.append(time.time() - s.t)
        cpu.append(time.process_time() - s.c)
        print("epoch", e + 1, "%.3fs" % times[-1], "cpu %.3fs" % cpu[-1], {k: round(v, 4) for k, v in l.items()}, flush=True)
m.fit(x, y, batch_size=32, epochs=epochs, verbose=0, shuffle=True, callbacks=[T()])
print(f"keras {recipe}: params {m.count_params()}, median s/epoch (epochs 2..{epochs}) %.3f, cpu s/epoch %.3f"
      % (statistics.median(times[1:]), statistics.median(cpu[1:])))

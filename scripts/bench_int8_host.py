#!/usr/bin/env python3
"""int8 inference on the host: microcnn against TensorFlow Lite Micro's Python
interpreter, same model, same samples, same machine, one run.

    python3 scripts/bench_int8_host.py [MODEL.tflite] [--samples N]

Needs the `tflite-micro` and `numpy` packages (`pip install tflite-micro numpy`; the
script says so when they are missing) and builds `microcnn` in release mode
(`MICROCNN_BIN=path` uses that binary instead). TFLM runs
one sample per `invoke` in a Python loop on one core; microcnn runs `microcnn infer`
on the whole array, pinned to one core (`taskset -c 0`, RAYON_NUM_THREADS=1) and on
every core. Both outputs must be equal byte for byte (exit 1 otherwise). Times are
wall-clock: the best of three runs each, including reading and writing the arrays.
The CPU time (user + system, of this process for TFLM and of the `microcnn` child)
of the same best runs is printed too: on a machine that other jobs share, wall times
swing with the load while CPU times barely move.
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

try:
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime
except ImportError as e:  # pragma: no cover
    sys.exit(f"error: {e.name} is missing: pip install tflite-micro numpy")


def cpu_seconds():
    """User + system time of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def best_of(runs, fn):
    """(best wall time, best CPU time) over `runs` runs."""
    walls, cpus = [], []
    for _ in range(runs):
        cpu, start = cpu_seconds(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(cpu_seconds() - cpu)
    return min(walls), min(cpus)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(ROOT / "tests/data/vectors/small_cnn_28x28/model.tflite"))
    parser.add_argument("--samples", type=int, default=5000)
    args = parser.parse_args()

    if os.environ.get("MICROCNN_BIN"):
        tool = Path(os.environ["MICROCNN_BIN"])
    else:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "microcnn-tools"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tool = ROOT / "target/release/microcnn"
    work = Path(tempfile.mkdtemp())
    try:
        blob = work / "model.mcnn"
        subprocess.run([tool, "import", args.model, "-o", blob], check=True, stdout=subprocess.DEVNULL)
        interpreter = runtime.Interpreter.from_bytes(Path(args.model).read_bytes())
        detail = interpreter.get_input_details(0)
        shape = [int(d) for d in detail["shape"]][1:]
        rng = np.random.default_rng(0)
        x = rng.integers(-128, 128, size=[args.samples] + shape, dtype=np.int8)
        np.save(work / "x.npy", x)

        tflm_out = []
        load_before = f"{os.getloadavg()[0]:.2f}"

        def tflm():
            tflm_out.clear()
            for i in range(args.samples):
                interpreter.set_input(x[i:i + 1], 0)
                interpreter.invoke()
                tflm_out.append(interpreter.get_output(0).copy())

        pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
        # TFLM runs in this process: pin it to the same core as the single-core run.
        if pin:
            os.sched_setaffinity(0, {0})
        t_tflm = best_of(3, tflm)
        if pin:
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))

        def ours(threads, pinned):
            env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
            cmd = (pin if pinned else []) + [tool, "infer", blob, "--input", work / "x.npy", "--output", work / "y.npy"]
            return lambda: subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)

        t_one = best_of(3, ours(1, True))
        cores = os.cpu_count() or 1
        t_all = best_of(3, ours(cores, False))
        y = np.load(work / "y.npy")
        reference = np.concatenate(tflm_out).reshape(y.shape)
        exact = bool((y == reference).all())
        n = args.samples
        print(f"model {Path(args.model).name}, {n} samples, bit-exact with TFLM: {exact}")
        print(f"load average before/after: {load_before} / {os.getloadavg()[0]:.2f}")
        print(f"| engine | images/s (wall) | vs TFLM | images per CPU-second | vs TFLM |")
        print(f"| --- | ---: | ---: | ---: | ---: |")
        rows = [("TFLite Micro (Python interpreter, 1 core)", t_tflm), ("microcnn infer, 1 core", t_one),
                (f"microcnn infer, {cores} cores", t_all)]
        for name, (wall, cpu) in rows:
            print(f"| {name} | {n / wall:,.0f} | {t_tflm[0] / wall:.1f}× | {n / cpu:,.0f} | {t_tflm[1] / cpu:.1f}× |")
        if not exact:
            sys.exit("error: microcnn's outputs differ from TFLM's")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()

"""Peak memory of a dataset job against its size (docs/datasets.md, "Memory and the benchmark").

`.fresco/venv/bin/python bench/dataset_memory.py [--items 10000,100000] [--work DIR]` makes, for
each count, that many copies of one 24x16 PNG (a testsrc2 frame, by ffmpeg) in 10 folders and an
ONNX classifier whose scores are constants (so that the model costs nothing and what is measured
is fresco's own memory), then runs `fresco run DIR/ --include '*.png' -o out.jsonl --model
const.onnx --task classify --labels labels.txt --quiet -y` under `/usr/bin/time -v` and prints
each run's peak resident memory, its wall time and the growth against the first count.
FRESCO_BIN names the binary (default target/release/fresco). Needs PyPI's onnx and numpy (the
venv scripts/setup.sh makes has both) and GNU time.
"""

import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def constant_classifier(path):
    const = numpy_helper.from_array(np.array([[1.0, 2.0, 3.0]], np.float32), "c")
    axes = numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes")
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "z")
    shape = numpy_helper.from_array(np.array([1, 1], np.int64), "shape")
    nodes = [
        helper.make_node("ReduceMean", ["image", "axes"], ["m"], keepdims=1),
        helper.make_node("Reshape", ["m", "shape"], ["m2"]),
        helper.make_node("Mul", ["m2", "z"], ["m3"]),
        helper.make_node("Add", ["m3", "c"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "constant",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])],
        [const, axes, zero, shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, path)


def main():
    args = sys.argv[1:]
    counts = [10000, 100000]
    work = None
    if "--items" in args:
        counts = [int(n) for n in args[args.index("--items") + 1].split(",")]
    if "--work" in args:
        work = args[args.index("--work") + 1]
    work = work or tempfile.mkdtemp(prefix="fresco-dsmem-")
    fresco = os.environ.get("FRESCO_BIN") or os.path.join(REPO, "target", "release", "fresco")
    model = os.path.join(work, "const.onnx")
    constant_classifier(model)
    labels = os.path.join(work, "labels.txt")
    with open(labels, "w") as f:
        f.write("a\nb\nc\n")
    png = os.path.join(work, "one.png")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=24x16",
                    "-frames:v", "1", png], check=True)
    data = open(png, "rb").read()
    first = None
    print("items     peak MiB  wall s  growth")
    for count in counts:
        root = os.path.join(work, "d%d" % count)
        for folder in range(10):
            d = os.path.join(root, "f%d" % folder)
            os.makedirs(d, exist_ok=True)
            for i in range(count // 10):
                with open(os.path.join(d, "%06d.png" % i), "wb") as f:
                    f.write(data)
        env = dict(os.environ, FRESCO_STATE_DIR=os.path.join(work, "state%d" % count))
        run = subprocess.run(
            ["/usr/bin/time", "-v", fresco, "run", root + "/", "--include", "*.png",
             "-o", os.path.join(work, "out%d.jsonl" % count), "--model", model, "--task", "classify",
             "--labels", labels, "--quiet", "-y"],
            env=env, capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit("fresco run failed:\n" + run.stderr)
        peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1)) / 1024
        wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", run.stderr).group(1)
        parts = [float(p) for p in wall.split(":")]
        seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
        first = first or peak
        print("%-9d %8.1f  %6.1f  %+.1f%%" % (count, peak, seconds, 100 * (peak / first - 1)))
        sys.stdout.flush()
        subprocess.run(["rm", "-rf", root])


if __name__ == "__main__":
    main()

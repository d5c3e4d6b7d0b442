"""Can the network itself run faster on this CPU without visible loss? Measures candidates against
the fp32 model on the same frames: speed of the model alone (median of alternating runs) and
PSNR of the output against fp32's. A candidate is worth shipping at >= 1.3x with >= 35 dB.

  .fresco/bench-venv/bin/python bench/below_floor.py --height 360
  .fresco/bench-venv/bin/python bench/below_floor.py --height 720 --only threads

Candidates: int8 static quantisation of the convolutions (QDQ, per-channel weights; all convs,
all but the first and last 9x9, or only the residual blocks' convs; MinMax or percentile
calibration on scikit-image's sample photos), int8 dynamic quantisation, graph optimisation
level (extended, without the NCHWc layout, vs all), two frames per call, thread placement
(two sessions of one thread on two frames at once vs one session of two threads), and the exact
upsample fold that fresco applies when it loads a model for the CPU (crates/infer/src/rewrite.rs;
`--only rewrite`: one thread, CPU time per frame, so other work on the machine counts less).
"""

import argparse
import os
import tempfile
import threading
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_dynamic, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process


def photos(h, w):
    from skimage import data, transform

    out = []
    for name in ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry"]:
        im = getattr(data, name)()
        if im.ndim == 2:
            im = np.stack([im] * 3, -1)
        im = transform.resize(im[..., :3], (h, w), preserve_range=True, anti_aliasing=True).astype(np.float32)
        if im.max() <= 1.0:
            im *= 255
        out.append(im.transpose(2, 0, 1)[None].copy())
    return out


class Frames(CalibrationDataReader):
    def __init__(self, frames):
        self.it = iter([{"input1": x} for x in frames])

    def get_next(self):
        return next(self.it, None)


def upsample_fold(model):
    """The rewrite of crates/infer/src/rewrite.rs, in Python: nearest 2x Resize -> reflect Pad 1 ->
    3x3 Conv becomes edge Pad 1 -> 2x2 Conv with 4x the outputs -> DepthToSpace (DCR) -> Slice."""
    from onnx import helper, numpy_helper

    g = model.graph
    init = {t.name: t for t in g.initializer}
    users = {}
    for n in g.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    # taps of the 3-tap kernel summed into each tap of a phase: slot 0 odd phase, slot 1 even
    groups = [[[0, 1], [2]], [[0], [1, 2]]]
    nodes, gone, folds = [], set(), 0
    for n in g.node:
        if id(n) in gone:
            continue
        if n.op_type != "Resize":
            nodes.append(n)
            continue
        pad = users[n.output[0]][0]
        conv = users[pad.output[0]][0]
        w = numpy_helper.to_array(init[conv.input[1]]).astype(np.float64)
        co, ci = w.shape[:2]
        w2 = np.zeros((2, 2, co, ci, 2, 2))
        for sy in range(2):
            for sx in range(2):
                for a in range(2):
                    for b in range(2):
                        w2[sy, sx, :, :, a, b] = w[:, :, groups[sy][a]][:, :, :, groups[sx][b]].sum((2, 3))
        p = f"fold{folds}_"
        g.initializer.extend([
            numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), p + "pads"),
            numpy_helper.from_array(w2.reshape(4 * co, ci, 2, 2).astype(np.float32), p + "w"),
            numpy_helper.from_array(np.tile(numpy_helper.to_array(init[conv.input[2]]), 4), p + "b"),
            numpy_helper.from_array(np.array([1, 1], np.int64), p + "starts"),
            numpy_helper.from_array(np.array([-1, -1], np.int64), p + "ends"),
            numpy_helper.from_array(np.array([2, 3], np.int64), p + "axes")])
        nodes += [helper.make_node("Pad", [n.input[0], p + "pads"], [p + "padded"], mode="edge"),
                  helper.make_node("Conv", [p + "padded", p + "w", p + "b"], [p + "phases"], kernel_shape=[2, 2]),
                  helper.make_node("DepthToSpace", [p + "phases"], [p + "spread"], blocksize=2, mode="DCR"),
                  helper.make_node("Slice", [p + "spread", p + "starts", p + "ends", p + "axes"], [conv.output[0]])]
        gone |= {id(pad), id(conv)}
        folds += 1
    del g.node[:]
    g.node.extend(nodes)
    used = {i for n in g.node for i in n.input}
    kept = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    return model, folds


def split_thin_conv(model):
    """The second rewrite of crates/infer/src/rewrite.rs, in Python: the last 9x9 conv (32 -> 3)
    on the 2x2 SpaceToDepth of its (even-sized) input, a 5x5 kernel, 4 phases, DepthToSpace."""
    from onnx import helper, numpy_helper

    g = model.graph
    init = {t.name: t for t in g.initializer}
    nodes = list(g.node)
    i = [j for j, n in enumerate(nodes) if n.op_type == "Conv"][-1]
    conv = nodes[i]
    w = numpy_helper.to_array(init[conv.input[1]])
    co, ci, k, _ = w.shape
    kk = (k + 1) // 2
    w2 = np.zeros((2, 2, co, 2, 2, ci, kk, kk), np.float32)
    for py in range(2):
        for px in range(2):
            for qy in range(2):
                for qx in range(2):
                    for my in range(kk):
                        for mx in range(kk):
                            a, b = 2 * my + qy - py, 2 * mx + qx - px
                            if 0 <= a < k and 0 <= b < k:
                                w2[py, px, :, qy, qx, :, my, mx] = w[:, :, a, b]
    g.initializer.extend([numpy_helper.from_array(w2.reshape(4 * co, 4 * ci, kk, kk), "thin_w"),
                          numpy_helper.from_array(np.tile(numpy_helper.to_array(init[conv.input[2]]), 4), "thin_b")])
    nodes[i:i + 1] = [helper.make_node("SpaceToDepth", [conv.input[0]], ["thin_packed"], blocksize=2),
                      helper.make_node("Conv", ["thin_packed", "thin_w", "thin_b"], ["thin_phases"], kernel_shape=[kk, kk]),
                      helper.make_node("DepthToSpace", ["thin_phases"], [conv.output[0]], blocksize=2, mode="DCR")]
    del g.node[:]
    g.node.extend(nodes)
    used = {i for n in g.node for i in n.input}
    kept = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    return model


def cpu_versus(label, a_path, b_path, frames, refs, rounds):
    """One thread each, CPU seconds per frame (time.process_time), alternating, medians."""
    sa, sb = session(a_path, 1), session(b_path, 1)
    x = {"input1": frames[0]}
    sa.run(None, x)
    sb.run(None, x)
    ta, tb, loads = [], [], []
    for r in range(rounds):
        for s, t in ([(sa, ta), (sb, tb)] if r % 2 == 0 else [(sb, tb), (sa, ta)]):
            c = time.process_time()
            s.run(None, x)
            t.append(time.process_time() - c)
        loads.append(os.getloadavg()[0])
    outs = [sb.run(None, {"input1": f})[0] for f in frames]
    quality = [psnr(r, o) for r, o in zip(refs, outs)]
    worst = max(float(np.abs(r - o).max()) for r, o in zip(refs, outs))
    print(f"  {label:<40} fp32 {np.median(ta):6.3f} s  candidate {np.median(tb):6.3f} s CPU/frame (1 thread)  "
          f"speed-up {np.median(ta) / np.median(tb):5.3f}x  PSNR min {min(quality):5.1f} dB  max |diff| {worst:.1e}  "
          f"load {min(loads):.1f}-{max(loads):.1f}", flush=True)


def session(path, threads, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.graph_optimization_level = level
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def psnr(a, b):
    a = np.clip(a, 0, 255).round()
    b = np.clip(b, 0, 255).round()
    return 10 * np.log10(255 ** 2 / max(np.mean((a - b) ** 2), 1e-12))


def timed(fn, rounds):
    ts = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return ts


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=os.path.join(os.environ.get("FRESCO_MODEL_DIR", ""), "mosaic.onnx"))
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", choices=["int8", "level", "threads", "rewrite"], help="one group of candidates")
    args = p.parse_args()
    h, w = args.height, (args.height * 16 // 9 + 3) // 4 * 4
    frames = photos(h, w)
    tmp = tempfile.mkdtemp(prefix="fresco-below-floor-")
    fp32 = session(args.model, args.threads)
    refs = [fp32.run(None, {"input1": x})[0] for x in frames]
    print(f"{args.model} at {w}x{h}, {args.threads} threads, load {os.getloadavg()[0]:.2f}")

    def versus(label, candidate, frames_per_call=1, level=None):
        s = session(candidate, args.threads, level) if level is not None else session(candidate, args.threads)
        s.run(None, {"input1": frames[0]})
        a, b = [], []
        for _ in range(args.rounds):  # alternate, so load changes hit both alike
            a += timed(lambda: fp32.run(None, {"input1": frames[0]}), 1)
            b += timed(lambda: s.run(None, {"input1": frames[0]}), 1)
        quality = [psnr(r, s.run(None, {"input1": x})[0]) for r, x in zip(refs, frames)]
        speed = np.median(a) / np.median(b)
        print(f"  {label:<40} fp32 {np.median(a):6.3f} s  candidate {np.median(b):6.3f} s  speed-up {speed:4.2f}x  "
              f"PSNR vs fp32 min {min(quality):5.1f} mean {np.mean(quality):5.1f} dB", flush=True)

    if args.only in (None, "int8"):
        pre = os.path.join(tmp, "pre.onnx")
        quant_pre_process(args.model, pre, skip_symbolic_shape=True)
        model = onnx.load(pre)
        for i, node in enumerate(model.graph.node):
            node.name = node.name or f"{node.op_type}_{i}"
        onnx.save(model, pre)
        convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
        variants = [("all convs", [], CalibrationMethod.MinMax),
                    ("all but the 9x9 first and last", [convs[0], convs[-1]], CalibrationMethod.MinMax),
                    ("residual blocks only", convs[:3] + convs[-3:], CalibrationMethod.MinMax),
                    ("residual blocks only, percentile", convs[:3] + convs[-3:], CalibrationMethod.Percentile)]
        for label, excluded, method in variants:
            out = os.path.join(tmp, "q.onnx")
            quantize_static(pre, out, Frames(frames[:4]), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["Conv"],
                            nodes_to_exclude=excluded, calibrate_method=method)
            versus(f"int8 static QDQ, {label}", out)
        out = os.path.join(tmp, "qd.onnx")
        quantize_dynamic(args.model, out, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"], per_channel=True)
        versus("int8 dynamic (ConvInteger)", out)
    if args.only in (None, "level"):
        versus("optimisation level extended (no NCHWc)", args.model, level=ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
    if args.only in (None, "rewrite"):
        folded, count = upsample_fold(onnx.load(args.model))
        out = os.path.join(tmp, "folded.onnx")
        onnx.save(folded, out)
        cpu_versus(f"exact upsample fold ({count} folds)", args.model, out, frames, refs, max(args.rounds, 5))
        both = os.path.join(tmp, "folded-thin.onnx")
        onnx.save(split_thin_conv(folded), both)
        cpu_versus("exact fold + thin last conv (fresco's)", args.model, both, frames, refs, max(args.rounds, 5))
    if args.only in (None, "threads"):
        one = [session(args.model, 1) for _ in range(2)]
        pair = np.concatenate(frames[:2])
        fp32.run(None, {"input1": pair})
        for s in one:
            s.run(None, {"input1": frames[0]})

        def two_sessions():
            ts = [threading.Thread(target=s.run, args=(None, {"input1": f})) for s, f in zip(one, frames[:2])]
            [t.start() for t in ts]
            [t.join() for t in ts]

        a, b, c = [], [], []
        for _ in range(args.rounds):
            a += timed(lambda: [fp32.run(None, {"input1": f}) for f in frames[:2]], 1)
            b += timed(two_sessions, 1)
            c += timed(lambda: fp32.run(None, {"input1": pair}), 1)
        base = np.median(a)
        print(f"  {'2 frames: 1 session x ' + str(args.threads) + ' threads':<40} {base:6.3f} s")
        print(f"  {'2 frames: 2 sessions x 1 thread, parallel':<40} {np.median(b):6.3f} s  speed-up {base / np.median(b):4.2f}x  (bit-identical output)")
        print(f"  {'2 frames: one call with a batch of 2':<40} {np.median(c):6.3f} s  speed-up {base / np.median(c):4.2f}x  (bit-identical output)")


if __name__ == "__main__":
    main()

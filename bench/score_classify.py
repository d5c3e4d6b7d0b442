"""Records scoring end to end against the model alone: `.fresco/venv/bin/python bench/score_classify.py`.

The classifier (EfficientNet-Lite0 from $FRESCO_MODEL_DIR/scoring, or ../shared/models/scoring)
scores every frame of a testsrc2 clip (640x360, 25 frames/s, 20 s by default):

1. end to end: `fresco run CLIP -o out.jsonl --model efficientnet-lite0.onnx --task classify
   --labels imagenet_labels.txt --threads T --workers 1 --json`, timed from the process's start
   to its exit, in a fresh state folder (probe, frame scan, the model's trial load in a child,
   the plan's load and chunk timing, ffmpeg decoding and scaling, preparation, inference,
   JSONL parts, assembly);
2. model alone: Python onnxruntime, intra-op threads T, on the same frames decoded and scaled
   by ffmpeg beforehand (the size and filter fresco asks ffmpeg for) and prepared beforehand the
   way fresco's built-in card for this model says (centre crop 224x224 of the 455x256 frame,
   (x - 127) / 128, NCHW); only `session.run` is timed, one frame a call (fresco's default
   batch), after a warm-up call.

It prints both throughputs, their ratio (the issue's target: end to end >= 0.85 of model
alone), where fresco's time went (from its job log: before the plan, the plan, each chunk with
its model seconds, assembly), and checks that both give the same top-5 classes for every frame
(scores within 1e-3), so the preparation really is the same.
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def model_dir():
    base = os.environ.get("FRESCO_MODEL_DIR") or os.path.join(REPO, "..", "shared", "models")
    return os.path.join(base, "scoring")


def make_clip(path, width, height, seconds, fps):
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=s={width}x{height}:r={fps}:d={seconds}",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", path], check=True)


def scaled_size(width, height, side=224, crop_fraction=0.875):
    """fresco's PrepSpec::scaled_size for resize = crop (the model's built-in card)."""
    s = max(side / width, side / height) / crop_fraction
    return max(round(width * s), side), max(round(height * s), side)


def decode_scaled(clip, sw, sh):
    """Every frame scaled by ffmpeg as fresco's decoder scales them, uint8 (n, sh, sw, 3)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", clip, "-map", "0:v:0", "-vf",
                          f"scale={sw}:{sh}:flags=bilinear,format=rgb24", "-fps_mode", "passthrough",
                          "-f", "rawvideo", "pipe:1"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, sh, sw, 3)


def prepare(frames, side=224):
    """Centre crop (offsets rounded down, as fresco's), (x - 127) / 128, NCHW float32."""
    n, h, w, _ = frames.shape
    y0, x0 = (h - side) // 2, (w - side) // 2
    crop = frames[:, y0:y0 + side, x0:x0 + side, :].astype(np.float32)
    return ((crop - 127.0) / 128.0).transpose(0, 3, 1, 2).copy()


def model_alone(model, tensors, threads, batch=1):
    """Scores `tensors`, `batch` a call: (logits, seconds in session.run, onnxruntime's version)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    session.run(None, {name: tensors[:1]})  # warm-up, untimed
    logits, seconds = [], 0.0
    for i in range(0, len(tensors), batch):
        x = tensors[i:i + batch]
        t = time.perf_counter()
        y = session.run(None, {name: x})[0]
        seconds += time.perf_counter() - t
        logits.extend(y)
    return np.array(logits), seconds, ort.__version__


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def parse_time(stamp):
    return datetime.datetime.strptime(stamp.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def breakdown(log_path, started, ended):
    """Where fresco's wall time went, from the job log's timestamps."""
    lines = []
    with open(log_path) as f:
        for line in f:
            stamp, _, rest = line.partition(" ")
            lines.append((parse_time(stamp), rest.split(" ", 1)[1].strip()))
    first_claim = next(t for t, m in lines if m.startswith("claimed plan"))
    planned = next(t for t, m in lines if m.startswith("planned"))
    claims = [t for t, m in lines if m.startswith("claimed score")]
    scored = [(t, m) for t, m in lines if m.startswith("scored chunk")]
    assemble = next(t for t, m in lines if m.startswith("claimed assemble"))
    published = next(t for t, m in lines if m.startswith("assembled"))
    model = sum(float(m.split(", ")[1].split(" s")[0]) for _, m in scored)
    chunks = sum(t - c for c, (t, _) in zip(claims, scored))
    return {
        "before the plan (start, model trial load, submit)": first_claim - started,
        "plan (probe, frame scan, model load, chunk timing)": planned - first_claim,
        "chunks: model (session.run, as fresco times it)": model,
        "chunks: the rest (decode+scale wait, preparation, decoding rows, JSONL part)": chunks - model,
        "between tasks (claims, queue)": (assemble - planned) - chunks,
        "assembly (join parts, count rows, publish)": published - assemble,
        "after assembly (process exit, summary)": ended - published,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--size", default="640x360")
    p.add_argument("--rate", type=int, default=25)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--repeat", type=int, default=2, help="runs of each side; the best is reported")
    p.add_argument("--fresco", default=os.path.join(REPO, "target", "release", "fresco"))
    p.add_argument("--fresco-arg", action="append", default=[], help="extra argument for fresco run")
    p.add_argument("--models", default=model_dir())
    args = p.parse_args()
    model = os.path.join(args.models, "efficientnet-lite0.onnx")
    labels = os.path.join(args.models, "imagenet_labels.txt")
    for f in (model, labels, args.fresco):
        if not os.path.exists(f):
            sys.exit(f"missing: {f} (build with cargo build --release -p fresco; set FRESCO_MODEL_DIR)")
    w, h = map(int, args.size.split("x"))
    work = tempfile.mkdtemp(prefix="fresco-score-bench-")
    try:
        clip = os.path.join(work, "clip.mp4")
        make_clip(clip, w, h, args.seconds, args.rate)
        sw, sh = scaled_size(w, h)
        frames = decode_scaled(clip, sw, sh)
        n = len(frames)
        t = time.perf_counter()
        tensors = prepare(frames)
        prep_seconds = time.perf_counter() - t

        alone = []
        for _ in range(args.repeat):
            logits, seconds, ort_version = model_alone(model, tensors, args.threads)
            alone.append(seconds)
        model_fps = n / min(alone)

        runs = []
        for r in range(args.repeat):
            state = os.path.join(work, f"state-{r}")
            out = os.path.join(work, f"out-{r}.jsonl")
            cmd = [args.fresco, "run", clip, "-o", out, "--model", model, "--task", "classify",
                   "--labels", labels, "--threads", str(args.threads), "--workers", "1",
                   "--quiet", "--json"] + args.fresco_arg
            env = dict(os.environ, FRESCO_STATE_DIR=state)
            started = time.time()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            ended = time.time()
            if proc.returncode != 0:
                sys.exit(f"fresco failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
            summary = json.loads(proc.stdout)
            log_dir = os.path.join(state, "work", "logs")
            log = os.path.join(log_dir, os.listdir(log_dir)[0])
            runs.append((ended - started, summary, breakdown(log, started, ended), out))
        wall, summary, parts, out = min(runs, key=lambda r: r[0])
        rows = [json.loads(line) for line in open(out)]
        end_fps = n / wall

        # The same preparation: fresco's top-5 equals the model's own, frame by frame.
        probs = softmax(logits)
        worst, mismatched = 0.0, 0
        for row, pr in zip(rows, probs):
            top = np.argsort(-pr)[:5]
            got = [c["index"] for c in row["classes"]]
            if got != list(top):
                mismatched += 1
            worst = max(worst, max(abs(c["score"] - pr[c["index"]]) for c in row["classes"]))

        print(f"clip: {args.size} testsrc2, {n} frames ({args.seconds:g} s at {args.rate}/s), every frame scored")
        print(f"threads: {args.threads} (fresco --threads {args.threads} --workers 1; onnxruntime "
              f"intra_op_num_threads={args.threads}, inter_op 1), batch 1, {os.cpu_count()} cores; onnxruntime {ort_version}")
        print(f"model alone:  {model_fps:7.1f} frames/s  ({min(alone):.2f} s of session.run for {n} frames; "
              f"numpy preparation beforehand, untimed: {1e6 * prep_seconds / n:.0f} us/frame)")
        print(f"end to end:   {end_fps:7.1f} frames/s  ({wall:.2f} s wall, {len(rows)} rows, "
              f"{summary['outputs'][0]['chunks']} chunks)")
        print(f"ratio:        {end_fps / model_fps:.3f}  (target >= 0.85)")
        print(f"same top-5 as the model alone: {n - mismatched}/{n} frames; largest score difference {worst:.2e}")
        print("where fresco's wall time went:")
        for label, seconds in parts.items():
            print(f"  {seconds:6.2f} s  {label}")
        print(json.dumps({"frames": n, "threads": args.threads, "model_fps": model_fps, "end_to_end_fps": end_fps,
                          "ratio": end_fps / model_fps, "walls": [round(r[0], 3) for r in runs],
                          "model_alone_seconds": [round(s, 3) for s in alone],
                          "breakdown": {k: round(v, 3) for k, v in parts.items()}}))
        if mismatched or worst > 1e-3:
            sys.exit("fresco's classes differ from the model alone's: the preparation is not the same")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

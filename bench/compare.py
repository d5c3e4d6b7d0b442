"""Side-by-side comparison of fresco with what people would otherwise use (run by `bench/compare`).

On the same clip (generated with ffmpeg's testsrc2 and a sine tone, or one given with --clip),
one after another, each method styles every frame with the same network:

1. fresco: `fresco run` with the embedded defaults (durable local queue, chunks, assembly);
2. reference: the reference design's method as a peer: ffmpeg extracts the audio and writes every
   frame as a JPEG, bench/reference_style.py styles each JPEG (PyTorch eager TransformerNet, or
   Python onnxruntime) and writes JPEGs, ffmpeg restitches them at the source's frame rate and
   muxes the audio back;
3. floor: Python onnxruntime on the decoded raw frames, no video I/O at all (the model-only floor).

For each it reports wall seconds, frames/s, peak memory (the sum of the resident sets of the
method's whole process tree, sampled every 50 ms), the ratio to fresco, the quality of its output
against the same network in float32 on the decoded source frames (PSNR and SSIM over all
frames; the floor's own outputs are that reference), and correctness (frame count, duration,
audio packets identical to the source's or not).
"""

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


# ---------------------------------------------------------------- running and measuring


class TreeMemory:
    """Samples the summed RSS of a process and all its descendants."""

    def __init__(self, pid, interval=0.05):
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree_rss(self):
        parents, rss = {}, {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
                rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, IndexError, ValueError):
                continue
        total, stack = 0, [self.pid]
        children = {}
        for child, parent in parents.items():
            children.setdefault(parent, []).append(child)
        while stack:
            p = stack.pop()
            total += rss.get(p, 0)
            stack.extend(children.get(p, []))
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.peak


def measured(cmd, env=None, cwd=None, log=None):
    """Runs `cmd`; returns (wall seconds, peak tree RSS bytes, stdout). Fails loudly."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mem = TreeMemory(proc.pid)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    peak = mem.stop()
    if log is not None:
        log.append({"cmd": [str(c) for c in cmd], "seconds": round(wall, 3), "stderr_tail": err[-2000:]})
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{err[-3000:]}")
    return wall, peak, out


def ffprobe_json(path, *args):
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *args, str(path)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def video_facts(path):
    """Frame count (decoded), video duration, container duration, frame rate, size."""
    info = ffprobe_json(path, "-count_frames", "-select_streams", "v:0", "-show_entries",
                        "stream=nb_read_frames,r_frame_rate,avg_frame_rate,width,height,duration:format=duration")
    s = info["streams"][0]
    return {
        "frames": int(s["nb_read_frames"]),
        "video_duration": float(s.get("duration", "nan")),
        "duration": float(info["format"]["duration"]),
        "rate": s["r_frame_rate"],
        "width": int(s["width"]),
        "height": int(s["height"]),
    }


def audio_md5(path):
    """MD5 of the first audio stream's packets (stream copy), or None without audio."""
    info = ffprobe_json(path, "-show_entries", "stream=index", "-select_streams", "a")
    if not info.get("streams"):
        return None
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-c", "copy", "-f", "md5", "-"],
                         check=True, capture_output=True, text=True).stdout
    return out.strip()


def decode_rgb(path, width, height):
    """Every frame of the first video stream as uint8 RGB, shape (n, h, w, 3)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "pipe:1"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


# ---------------------------------------------------------------- quality


def quality(output_frames, reference_path, n_ref):
    """Mean PSNR (dB) and SSIM of the output's frames against the float reference frames."""
    from skimage.metrics import structural_similarity

    ref = np.load(reference_path, mmap_mode="r")
    n = min(len(output_frames), n_ref)
    psnrs, ssims, sq = [], [], 0.0
    for i in range(n):
        a = output_frames[i].astype(np.float64)
        b = ref[i].astype(np.float64)
        mse = np.mean((a - b) ** 2)
        sq += mse
        psnrs.append(99.0 if mse == 0 else 10 * math.log10(255 ** 2 / mse))
        ssims.append(structural_similarity(output_frames[i], ref[i], channel_axis=2, data_range=255))
    overall = 99.0 if sq == 0 else 10 * math.log10(255 ** 2 / (sq / n))
    return {"psnr_db": round(overall, 2), "psnr_min_db": round(min(psnrs), 2), "ssim": round(float(np.mean(ssims)), 4),
            "frames_compared": n}


# ---------------------------------------------------------------- the methods


def run_fresco(args, clip, work, log):
    out = os.path.join(work, "fresco.mp4")
    state = os.path.join(work, "fresco-state")
    env = dict(os.environ, FRESCO_MODEL_DIR=args.model_dir, FRESCO_STATE_DIR=state)
    # The embedded defaults, in a fresh state folder (so that nothing is resumed from an earlier run).
    cmd = [args.fresco, "run", clip, "-o", out, "--style", args.style, "--quiet", "--json", "--no-download"]
    cmd += args.fresco_arg
    wall, peak, stdout = measured(cmd, env=env, log=log)
    summary = json.loads(stdout)
    model_seconds = sum(o.get("model_seconds", 0.0) for o in summary.get("outputs", []))
    return out, wall, peak, {"model_seconds": round(model_seconds, 2), "engine": summary.get("engine")}


def run_reference(args, clip, facts, work, log):
    frames = os.path.join(work, "ref-frames")
    styled = os.path.join(work, "ref-styled")
    os.makedirs(frames)
    audio = os.path.join(work, "ref-audio.mka")
    out = os.path.join(work, "reference.mp4")
    has_audio = audio_md5(clip) is not None
    steps = []
    if has_audio:
        steps.append(("extract audio", ["ffmpeg", "-v", "error", "-i", clip, "-vn", "-map", "0:a:0", "-c:a", "copy", audio]))
    steps.append(("frames to JPEG", ["ffmpeg", "-v", "error", "-i", clip, "-map", "0:v:0", "-q:v", "2",
                                     os.path.join(frames, "%06d.jpg")]))
    steps.append(("style JPEGs", [sys.executable, os.path.join(HERE, "reference_style.py"), frames, styled,
                                  "--model", os.path.join(args.model_dir, f"{args.style}.onnx"),
                                  "--engine", args.reference_engine, "--threads", str(args.threads)]))
    stitch = ["ffmpeg", "-v", "error", "-framerate", facts["rate"], "-i", os.path.join(styled, "%06d.jpg")]
    if has_audio:
        stitch += ["-i", audio, "-map", "0:v:0", "-map", "1:a:0", "-c:a", "copy"]
    stitch += ["-c:v", "libx264", "-crf", "18", "-preset", "medium", "-pix_fmt", "yuv420p", out]
    steps.append(("JPEGs to video", stitch))
    wall, peak, detail = 0.0, 0, {}
    for label, cmd in steps:
        w, p, stdout = measured(cmd, log=log)
        wall += w
        peak = max(peak, p)
        detail[label] = round(w, 2)
        if label == "style JPEGs":
            detail["engine"] = stdout.splitlines()[0].removeprefix("engine: ")
    return out, wall, peak, detail


def run_floor(args, clip, facts, work, log):
    """The floor runs in its own process (so its memory is its own); it saves the reference frames."""
    ref = os.path.join(work, "reference-frames.npy")
    cmd = [sys.executable, os.path.join(HERE, "compare.py"), "--floor-worker", clip,
           "--model-dir", args.model_dir, "--style", args.style, "--threads", str(args.threads),
           "--floor-out", ref, "--floor-size", f"{facts['width']}x{facts['height']}"]
    wall, peak, stdout = measured(cmd, log=log)
    result = json.loads(stdout.strip().splitlines()[-1])
    return ref, result["model_seconds"], peak, result


def floor_worker(args):
    """Model-only: decode (untimed), then time onnxruntime over every frame; save the outputs."""
    import onnxruntime as ort

    w, h = map(int, args.floor_size.split("x"))
    frames = decode_rgb(args.floor_worker, w, h)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(os.path.join(args.model_dir, f"{args.style}.onnx"), options,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    # The models want sizes that are multiples of 4; fresco reflect-pads, so does this.
    ph, pw = -(-h // 4) * 4, -(-w // 4) * 4

    def tensor(frame):
        x = frame.astype(np.float32).transpose(2, 0, 1)
        if (ph, pw) != (h, w):
            x = np.pad(x, ((0, 0), (0, ph - h), (0, pw - w)), mode="reflect")
        return x[None]

    session.run(None, {name: tensor(frames[0])})  # warm-up, untimed: the floor is steady state
    out = np.lib.format.open_memmap(args.floor_out, mode="w+", dtype=np.uint8, shape=frames.shape)
    model = 0.0
    for i, frame in enumerate(frames):
        x = tensor(frame)
        t = time.perf_counter()
        y = session.run(None, {name: x})[0]
        model += time.perf_counter() - t
        out[i] = np.clip(y[0, :, :h, :w], 0, 255).round().astype(np.uint8).transpose(1, 2, 0)
    out.flush()
    print(json.dumps({"model_seconds": model, "frames": len(frames), "onnxruntime": ort.__version__}))


# ---------------------------------------------------------------- one resolution


def make_clip(path, width, height, seconds, fps):
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r={fps}:d={seconds}",
                    "-f", "lavfi", "-i", f"sine=f=440:d={seconds}", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", path], check=True)


def load():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def compare_one(args, clip, label, work):
    facts = video_facts(clip)
    src_audio = audio_md5(clip)
    log = []
    rows = {}
    print(f"\n== {label}: {clip} ({facts['width']}x{facts['height']}, {facts['frames']} frames, "
          f"{facts['duration']:.2f} s, audio {'yes' if src_audio else 'no'})", flush=True)
    runs = {"fresco": [], "reference": [], "floor": []}
    outputs = {}
    for rep in range(args.repeat):
        # Alternate the order between repeats, so that a load change does not favour one method.
        order = ["floor", "fresco", "reference"] if rep % 2 == 0 else ["reference", "fresco", "floor"]
        for method in order:
            if method == "reference" and args.no_reference:
                continue
            sub = os.path.join(work, f"{label}-{method}-{rep}")
            os.makedirs(sub)
            before = load()
            if method == "fresco":
                out, wall, peak, detail = run_fresco(args, clip, sub, log)
            elif method == "reference":
                out, wall, peak, detail = run_reference(args, clip, facts, sub, log)
            else:
                out, wall, peak, detail = run_floor(args, clip, facts, sub, log)
            detail["load_before"] = round(before, 2)
            runs[method].append((wall, peak, detail))
            outputs.setdefault(method, out)
            print(f"  {method:<10} {wall:8.2f} s  {facts['frames'] / wall:7.3f} frames/s  peak {peak / 2**20:7.0f} MiB  "
                  f"(load {before:.2f})  {detail}", flush=True)
    ref_path = outputs["floor"]
    for method, results in runs.items():
        if not results:
            continue
        walls = sorted(r[0] for r in results)
        wall = walls[len(walls) // 2]
        peak = max(r[1] for r in results)
        row = {"seconds": round(wall, 2), "seconds_all": [round(r[0], 2) for r in results],
               "fps": round(facts["frames"] / wall, 3), "peak_mib": round(peak / 2**20),
               "detail": results[0][2]}
        if method == "floor":
            row.update({"frames": facts["frames"], "duration": None, "audio_identical": None,
                        "psnr_db": None, "ssim": None})
        else:
            out = outputs[method]
            of = video_facts(out)
            decoded = decode_rgb(out, facts["width"], facts["height"])
            row.update(quality(decoded, ref_path, facts["frames"]))
            row.update({"frames": of["frames"], "frames_ok": of["frames"] == facts["frames"],
                        "duration": of["duration"], "video_duration": of["video_duration"],
                        "duration_diff_ms": round(1000 * (of["video_duration"] - facts["video_duration"]), 1),
                        "audio_identical": (audio_md5(out) == src_audio) if src_audio else None})
        rows[method] = row
    base = rows["fresco"]["seconds"]
    for row in rows.values():
        row["time_vs_fresco"] = round(row["seconds"] / base, 3)
    return {"label": label, "source": facts, "methods": rows, "commands": log}


# ---------------------------------------------------------------- report


def table(results):
    lines = ["| clip | method | wall s | frames/s | x fresco time | peak MiB | PSNR dB (min) | SSIM | frames | duration diff ms | audio identical |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |"]
    names = {"fresco": "fresco run", "reference": "reference (JPEG frames + {engine})", "floor": "model-only floor (Python ORT)"}
    for r in results:
        src = r["source"]
        for method, row in r["methods"].items():
            name = names[method]
            if method == "reference":
                engine = row["detail"].get("engine", "")
                name = name.format(engine="PyTorch" if engine.startswith("PyTorch") else "Python ORT")
            psnr = "-" if row["psnr_db"] is None else f"{row['psnr_db']:.2f} ({row['psnr_min_db']:.2f})"
            ssim = "-" if row["ssim"] is None else f"{row['ssim']:.4f}"
            frames = f"{row['frames']}/{src['frames']}"
            dur = "-" if row.get("duration_diff_ms") is None else f"{row['duration_diff_ms']:+.1f}"
            audio = {None: "-", True: "yes", False: "no"}[row["audio_identical"]]
            lines.append(f"| {r['label']} | {name} | {row['seconds']:.1f} | {row['fps']:.3f} | {row['time_vs_fresco']:.2f} | "
                         f"{row['peak_mib']} | {psnr} | {ssim} | {frames} | {dur} | {audio} |")
    return "\n".join(lines)


def chart(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [("fresco", "fresco run"), ("reference", "reference (JPEG + PyTorch)"), ("floor", "model-only floor")]
    labels = [r["label"] for r in results]
    fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=100)
    width = 0.8 / len(methods)
    for i, (key, name) in enumerate(methods):
        values = [r["methods"].get(key, {}).get("fps", 0) for r in results]
        if key == "reference" and results and "reference" in results[0]["methods"]:
            if not results[0]["methods"]["reference"]["detail"].get("engine", "").startswith("PyTorch"):
                name = "reference (JPEG + Python ORT)"
        bars = ax.bar([x + (i - 1) * width for x in range(len(labels))], values, width, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("frames/s (higher is better)")
    loads = [row["detail"].get("load_before", float("nan")) for r in results for row in r["methods"].values()]
    ax.set_title(f"fresco vs the alternatives, same machine ({os.cpu_count()} CPUs, load {min(loads):.1f}-{max(loads):.1f})",
                 fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


def machine():
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip", help="a real clip to use instead of the generated ones (its own size)")
    p.add_argument("--heights", default="360,720", help="generated clip heights (16:9), comma-separated")
    p.add_argument("--seconds", type=float, default=3.0, help="generated clip length")
    p.add_argument("--fps", type=int, default=25, help="generated clip frame rate")
    p.add_argument("--style", default="mosaic")
    p.add_argument("--model-dir", default=os.environ.get("FRESCO_MODEL_DIR", ""))
    p.add_argument("--fresco", default=os.path.join(REPO, "target", "release", "fresco"))
    p.add_argument("--fresco-arg", action="append", default=[], help="extra argument for fresco run (repeatable)")
    p.add_argument("--reference-engine", choices=["torch", "onnxruntime"], default="torch")
    p.add_argument("--no-reference", action="store_true", help="skip the reference method")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--repeat", type=int, default=1, help="runs of each method (alternating order; medians)")
    p.add_argument("--out", default=os.path.join(REPO, "out", "bench"), help="folder for results.json, table.md, the chart")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder of outputs")
    p.add_argument("--replot", metavar="RESULTS_JSON", help="only redraw the chart and table from a results.json")
    p.add_argument("--floor-worker", help=argparse.SUPPRESS)
    p.add_argument("--floor-out", help=argparse.SUPPRESS)
    p.add_argument("--floor-size", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.floor_worker:
        return floor_worker(args)
    if args.replot:
        results = json.load(open(args.replot))["results"]
        os.makedirs(args.out, exist_ok=True)
        chart(results, os.path.join(args.out, "performance-fps.png"))
        print(table(results))
        return
    model = os.path.join(args.model_dir, f"{args.style}.onnx")
    if not os.path.isfile(model):
        sys.exit(f"{model}: no such model; set FRESCO_MODEL_DIR or --model-dir to a folder with {args.style}.onnx")
    if not os.access(args.fresco, os.X_OK):
        sys.exit(f"{args.fresco}: no fresco binary; build it with `cargo build --release -p fresco`")
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="fresco-compare-")
    results = []
    try:
        if args.clip:
            results.append(compare_one(args, os.path.abspath(args.clip), os.path.basename(args.clip), work))
        else:
            for height in [int(h) for h in args.heights.split(",")]:
                width = (height * 16 // 9 + 1) // 2 * 2
                clip = os.path.join(work, f"clip-{height}p.mp4")
                make_clip(clip, width, height, args.seconds, args.fps)
                results.append(compare_one(args, clip, f"{height}p", work))
    finally:
        if args.keep:
            print(f"outputs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report = {"machine": machine(), "style": args.style, "threads": args.threads, "results": results,
              "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "load_after": load()}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(report, f, indent=1)
    md = table(results)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(md + "\n")
    chart(results, os.path.join(args.out, "performance-fps.png"))
    print("\n" + md)
    for r in results:
        m = r["methods"]
        line = f"{r['label']}: "
        if "reference" in m:
            line += f"fresco is {m['reference']['seconds'] / m['fresco']['seconds']:.2f}x faster than the reference; "
        line += f"fresco takes {m['fresco']['seconds'] / m['floor']['seconds']:.3f}x the floor's time"
        print(line)
    print(f"\nresults in {args.out}/ (results.json, table.md, performance-fps.png)")


if __name__ == "__main__":
    main()

"""The figures of docs/temporal.md, "Figures": for each style, `fresco run` per frame and with
`--temporal` on the clip bench/temporal_clip.sh makes (a zoom and pan with a moving cut-out over a real
photo, 640x360, 48 frames), then `fresco eval temporal --chunk-frames 12 --json` on each.

With `--real`, the clip is real footage instead (bench/temporal_real.sh: a hand-held camera and a
hand turning a box, 640x360, 192 frames, fetched from Debian's opencv-doc package).

`python3 bench/temporal_figures.py [--real] [--throughput [--repeats N]] [STYLE...]` (default mosaic candy udnie) with numpy (the venv
of bench/flow_validate.py does), FRESCO_MODEL_DIR holding the styles, and ONNX Runtime where
`fresco run` finds it (scripts/test.sh's PATH). FRESCO_BIN names the binary (default
target/release/fresco, else target/debug/fresco).

Per style it prints the warping error per frame and with --temporal (and the input's floor), the
same at chunk starts and inside chunks (chunks of 12 frames, a boundary every 12 frames), the
sharpness (mean gradient magnitude of the luma, in [0, 1] per pixel, over every frame) and the
throughput of each run (frames / wall seconds of `fresco run`, end to end, two workers).

With --throughput it runs each style per frame and with --temporal with fresco's own chunk sizing
(no --chunk-frames: what a user gets), alternately, N pairs (default 3), and prints the
throughputs, each pair's ratio and the median ratio.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CHUNK = 12


def binary():
    if os.environ.get("FRESCO_BIN"):
        return os.environ["FRESCO_BIN"]
    for kind in ["release", "debug"]:
        path = os.path.join(REPO, "target", kind, "fresco")
        if os.path.exists(path):
            return path
    sys.exit("build fresco first (cargo build --release -p fresco)")


def sharpness(path):
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True,
    ).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, 360, 640, 3).astype(np.float64) / 255.0
    luma = frames @ np.array([0.299, 0.587, 0.114])
    gx = (luma[:, 1:-1, 2:] - luma[:, 1:-1, :-2]) / 2
    gy = (luma[:, 2:, 1:-1] - luma[:, :-2, 1:-1]) / 2
    return float(np.hypot(gx, gy).mean())


def frame_count(path):
    return int(subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path],
        check=True, capture_output=True, text=True).stdout.strip())


def timed_run(fresco, clip, out, style, temporal, env):
    args = [fresco, "run", clip, "-o", out, "--style", style, "--no-download", "--codec", "ffv1",
            "--quiet", "-y"] + (["--temporal"] if temporal else [])
    start = time.perf_counter()
    subprocess.run(args, check=True, env=env)
    elapsed = time.perf_counter() - start
    return frame_count(clip) / elapsed


def throughput(fresco, clip, work, env, styles, repeats):
    """Per frame and --temporal alternately (A B A B ...), `repeats` pairs: on a machine shared
    with other work, each pair sees about the same load; the median ratio of the pairs."""
    print("style   pair  frames/s per frame  with --temporal  ratio")
    for style in styles:
        ratios = []
        for pair in range(repeats):
            fps = [timed_run(fresco, clip, os.path.join(work, "%s-%s-auto.mkv" % (style, temporal)),
                             style, temporal, env) for temporal in [False, True]]
            ratios.append(fps[1] / fps[0])
            print("%-7s %d     %.3f               %.3f            %.3f" % (style, pair + 1, fps[0], fps[1], ratios[-1]))
            sys.stdout.flush()
        print("%-7s median ratio %.3f" % (style, sorted(ratios)[len(ratios) // 2]))


def main():
    args = sys.argv[1:]
    only_throughput = "--throughput" in args
    real = "--real" in args
    repeats = 3
    if "--repeats" in args:
        repeats = int(args[args.index("--repeats") + 1])
        del args[args.index("--repeats"):args.index("--repeats") + 2]
    styles = [a for a in args if a not in ("--throughput", "--real")] or ["mosaic", "candy", "udnie"]
    fresco = binary()
    work = tempfile.mkdtemp(prefix="fresco-temporal-")
    clip = os.path.join(work, "clip.mkv")
    subprocess.run([os.path.join(HERE, "temporal_real.sh" if real else "temporal_clip.sh"), clip], check=True)
    frames = frame_count(clip)
    env = dict(os.environ, FRESCO_STATE_DIR=os.path.join(work, "state"))
    if only_throughput:
        throughput(fresco, clip, work, env, styles, repeats)
        subprocess.run(["rm", "-rf", work])
        return
    print("style   run         warping error (clip / chunk starts / inside)   floor        sharpness  frames/s")
    for style in styles:
        for temporal in [False, True]:
            out = os.path.join(work, "%s-%s.mkv" % (style, "temporal" if temporal else "per-frame"))
            args = [fresco, "run", clip, "-o", out, "--style", style, "--no-download", "--codec", "ffv1",
                    "--chunk-frames", str(CHUNK), "--quiet", "-y"] + (["--temporal"] if temporal else [])
            start = time.perf_counter()
            subprocess.run(args, check=True, env=env)
            fps = frames / (time.perf_counter() - start)
            report = json.loads(subprocess.run(
                [fresco, "eval", "temporal", clip, out, "--chunk-frames", str(CHUNK), "--json"],
                check=True, capture_output=True, env=env).stdout)
            print("%-7s %-11s %.4e / %.4e / %.4e   %.4e   %.5f    %.3f" % (
                style, "temporal" if temporal else "per-frame", report["clip"]["output"],
                report["chunks"]["boundaries"]["output"], report["chunks"]["inside"]["output"],
                report["clip"]["input"], sharpness(out), fps))
            sys.stdout.flush()
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()

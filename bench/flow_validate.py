"""fresco's optical flow against OpenCV's: `python bench/flow_validate.py` in a venv that has
PyPI's `opencv-python-headless` and `numpy` (not .fresco/venv, which stays as scripts/setup.sh
makes it: `python3 -m venv /tmp/cv && /tmp/cv/bin/pip install opencv-python-headless numpy`).

Clips, made by ffmpeg from one real photo ($FRESCO_MODEL_DIR/scoring/dog.jpg, or
../shared/models/scoring/dog.jpg; 768x576) and decoded to packed RGB over a pipe:

- pan: the photo scaled to 1280x960, a 640x360 window moving 3 px right and 1 px down a frame,
  with a 160x120 cut-out of the photo's middle (scaled to 200x150) moving over it 5 px left
  and 2 px down a frame: camera and subject motion, with occlusions;
- zoom: the photo scaled from 1024 px wide growing 6 px a frame, a centred 640x360 window;
- testsrc2: ffmpeg's synthetic pattern at 640x360 (moving and flat areas);
- box: real footage, a hand-held camera and a hand turning a box (bench/temporal_real.sh, which
  fetches OpenCV's box.mp4 from Debian's opencv-doc package), its first 12 frames at 640x360.

For each consecutive pair it computes fresco's flow (crates/temporal/examples/flow_pairs.rs,
built with --release, one core, default settings: docs/temporal.md) and OpenCV's DIS
(preset MEDIUM) and Farneback (pyramid scale 0.5, 5 levels, window 15, 3 iterations, poly_n 5,
poly_sigma 1.1) on the same luma, and prints the average endpoint error (pixels) of fresco's
flow against each, over pixels at least 8 px from the edge, and of DIS against Farneback for
scale; on the pan clip also against the true flow of the background (-3, -1: the window moves right and down) outside the
cut-out's path. Then the cost per flow at 640x360 and 1280x720 (the pan clip made at that size).
"""

import os
import subprocess
import sys
import time

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FRAMES = 12


def photo():
    base = os.environ.get("FRESCO_MODEL_DIR") or os.path.join(REPO, "..", "shared", "models")
    return os.path.join(base, "scoring", "dog.jpg")


def clip_filter(kind, w, h):
    if kind == "pan":
        big_w, big_h = 2 * w, 2 * h * 4 // 3
        return (
            "[0:v]format=rgb24,scale=%d:%d,split[bg][fg];" % (big_w, big_h)
            + "[fg]crop=%d:%d:%d:%d,scale=%d:%d[cut];"
            % (w // 4, h // 3, big_w // 2, big_h // 2, w * 5 // 16, h * 5 // 12)
            + "[bg]crop=%d:%d:x='20+n*3':y='20+n*1',format=rgb24[win];" % (w, h)
            + "[win][cut]overlay=x='%d-n*5':y='%d+n*2':format=rgb,format=rgb24" % (w // 2, h // 5)
        )
    if kind == "zoom":
        return (
            "[0:v]format=rgb24,scale=w='%d+n*6':h=-2:eval=frame,crop=%d:%d,format=rgb24" % (w * 8 // 5, w, h)
        )
    raise ValueError(kind)


def frames(kind, w, h):
    if kind == "box":
        clip = os.path.join(os.environ.get("TMPDIR", "/tmp"), "fresco-flow-box-%d.mkv" % os.getpid())
        subprocess.run([os.path.join(HERE, "temporal_real.sh"), clip, "120", str(FRAMES)], check=True)
        args = ["-i", clip, "-vf", "format=rgb24"]
    elif kind == "testsrc2":
        args = ["-f", "lavfi", "-i", "testsrc2=s=%dx%d:r=25" % (w, h), "-vf", "format=rgb24"]
    else:
        args = ["-loop", "1", "-framerate", "25", "-i", photo(), "-filter_complex", clip_filter(kind, w, h)]
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error"] + args
        + ["-frames:v", str(FRAMES), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
        check=True, capture_output=True,
    ).stdout
    if kind == "box":
        os.remove(clip)
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def ours(clip):
    _, h, w, _ = clip.shape
    exe = os.path.join(REPO, "target", "release", "examples", "flow_pairs")
    run = subprocess.run([exe, str(w), str(h)], input=clip.tobytes(), capture_output=True, check=True)
    flows = np.frombuffer(run.stdout, np.float32).reshape(-1, h, w, 2)
    return flows, run.stderr.decode().strip()


def luma8(frame):
    # The luma fresco uses (BT.601 weights), as 8-bit for OpenCV.
    y = 0.299 * frame[..., 0] + 0.587 * frame[..., 1] + 0.114 * frame[..., 2]
    return np.clip(np.round(y), 0, 255).astype(np.uint8)


def opencv(clip):
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    out_dis, out_fb = [], []
    for a, b in zip(clip[:-1], clip[1:]):
        la, lb = luma8(a), luma8(b)
        out_dis.append(dis.calc(la, lb, None))
        out_fb.append(cv2.calcOpticalFlowFarneback(la, lb, None, 0.5, 5, 15, 3, 5, 1.1, 0))
    return np.array(out_dis), np.array(out_fb)


def epe(a, b, mask=None):
    e = np.hypot(a[..., 0] - b[..., 0], a[..., 1] - b[..., 1])[:, 8:-8, 8:-8]
    if mask is not None:
        e = e[:, mask[8:-8, 8:-8]]
    return float(e.mean())


def main():
    w, h = 640, 360
    print("average endpoint error (px), %d frames per clip, %dx%d, 8 px edge left out" % (FRAMES, w, h))
    for kind in ["pan", "zoom", "testsrc2", "box"]:
        clip = frames(kind, w, h)
        flows, _ = ours(clip)
        dis, fb = opencv(clip)
        line = "%-9s fresco-DIS %.3f  fresco-Farneback %.3f  DIS-Farneback %.3f" % (
            kind, epe(flows, dis), epe(flows, fb), epe(dis, fb))
        if kind == "pan":
            # The background's true flow, away from where the cut-out is in any frame.
            truth = np.zeros_like(flows)
            truth[..., 0], truth[..., 1] = -3.0, -1.0
            mask = np.ones((h, w), bool)
            x0, y0, cw, ch = w // 2, h // 5, w * 5 // 16, h * 5 // 12
            mask[max(0, y0 - 8): y0 + ch + 2 * FRAMES + 8, max(0, x0 - 5 * FRAMES - 8): x0 + cw + 8] = False
            line += "  | background truth: fresco %.3f DIS %.3f Farneback %.3f" % (
                epe(flows, truth, mask), epe(dis, truth, mask), epe(fb, truth, mask))
        print(line)
        sys.stdout.flush()
    for size in [(640, 360), (1280, 720)]:
        clip = frames("pan", *size)
        _, timing = ours(clip)
        la, lb = luma8(clip[0]), luma8(clip[1])
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        cv2.setNumThreads(1)
        start = time.perf_counter()
        for _ in range(5):
            dis.calc(la, lb, None)
        dis_ms = (time.perf_counter() - start) / 5 * 1000
        print("cost %dx%d: fresco %s; OpenCV DIS medium %.1f ms (one thread)" % (size[0], size[1], timing, dis_ms))


if __name__ == "__main__":
    main()

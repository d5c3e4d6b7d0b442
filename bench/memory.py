"""Peak memory of `fresco run` against video length: `.fresco/bench-venv/bin/python bench/memory.py`.

Generates clips of the same size and content but different lengths (10 s and 60 s by default)
and styles each with a cheap model (the built-in vintage filter by default), in a fresh state
folder each; prints the peak summed RSS of fresco's whole process tree (fresco and its ffmpeg
children, sampled every 50 ms) and the largest single process. Bounded memory means the two
peaks stay within a few percent of each other.
"""

import argparse
import json
import os
import shutil
import tempfile

import compare
from compare import REPO, make_clip


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", default="10,60", help="clip lengths in seconds, comma-separated")
    p.add_argument("--size", default="640x360")
    p.add_argument("--style", default="vintage")
    p.add_argument("--fresco", default=os.path.join(REPO, "target", "release", "fresco"))
    p.add_argument("--fresco-arg", action="append", default=[])
    args = p.parse_args()
    w, h = map(int, args.size.split("x"))
    work = tempfile.mkdtemp(prefix="fresco-memory-")
    rows = []
    try:
        for seconds in [float(s) for s in args.lengths.split(",")]:
            clip = os.path.join(work, f"clip-{seconds:g}s.mp4")
            make_clip(clip, w, h, seconds, 25)
            state = os.path.join(work, f"state-{seconds:g}")
            env = dict(os.environ, FRESCO_STATE_DIR=state)
            out = os.path.join(work, f"out-{seconds:g}s.mp4")
            cmd = [args.fresco, "run", clip, "-o", out, "--style", args.style, "--quiet", "--json"] + args.fresco_arg
            log = []
            wall, peak, stdout = compare.measured(cmd, env=env, log=log)
            frames = json.loads(stdout)["frames"]
            rows.append({"seconds": seconds, "frames": frames, "wall": round(wall, 1), "peak_tree_mib": round(peak / 2**20, 1)})
            print(f"{seconds:5g} s clip ({frames} frames, {args.size}, {args.style}): {wall:6.1f} s, "
                  f"peak {peak / 2**20:7.1f} MiB (fresco + ffmpeg children)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lo, hi = min(r["peak_tree_mib"] for r in rows), max(r["peak_tree_mib"] for r in rows)
    print(f"spread of peaks: {100 * (hi - lo) / lo:.1f}% (target: within 10%)")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

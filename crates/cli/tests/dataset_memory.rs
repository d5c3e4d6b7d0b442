//! A dataset job's peak memory does not grow with the dataset (issue 17: "peak memory that does
//! not grow with the dataset's size, 100k vs 10k items within 10%").
//!
//! `fresco run DIR/ -o out.jsonl` scores 10,000 and then 100,000 small PNGs (one 24x16 testsrc2
//! frame, hard-linked under many names in folders of 10,000) with a constant classifier built
//! here, so that the model costs next to nothing and what grows, if anything, is fresco's own
//! memory: the listing, the pinned chunks, the reads ahead, the rows and their assembly. The peak
//! resident memory of each run is the kernel's (`wait4`'s `ru_maxrss`, through
//! `fresco_testkit::process::run_measured`), so no outside tool is needed.
//!
//! What made it grow before (docs/datasets.md, "Memory and the benchmark"): assembly reading
//! every part at once (+56% at 100k), then memory freed in glibc's per-thread malloc arenas
//! (+39%), which `fresco` now caps at two. Run with `MALLOC_ARENA_MAX=16` in the environment
//! (which `fresco` honours) to see this test fail.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::scoring::queue_flags;
use common::*;

/// How long one run may take (the 100,000-item run takes minutes in a debug build).
const TIMEOUT: Duration = Duration::from_secs(1500);
/// Items per folder.
const PER_FOLDER: usize = 10_000;

/// `count` items under `root`, every one a hard link to a copy of `png` (one copy per folder:
/// a file takes at most 65,000 links on ext4): their number.
fn dataset(root: &Path, png: &Path, count: usize) -> usize {
    let mut source = PathBuf::new();
    for i in 0..count {
        let folder = root.join(format!("d{:02}", i / PER_FOLDER));
        if i % PER_FOLDER == 0 {
            std::fs::create_dir_all(&folder).unwrap();
            source = root.with_extension(format!("{}.png", i / PER_FOLDER));
            std::fs::copy(png, &source).unwrap();
        }
        std::fs::hard_link(&source, folder.join(format!("item-{i:06}.png"))).unwrap();
    }
    count
}

/// Scores the `count` items under `root` into `dir/out.jsonl`: the peak memory in KiB.
fn score(dir: &Path, root: &Path, model: &Path, count: usize) -> u64 {
    let out = dir.join("out.jsonl");
    let mut args: Vec<String> = vec![
        "run".into(),
        format!("{}/", root.display()),
        "--include".into(),
        "*.png".into(),
        "-o".into(),
        out.display().to_string(),
        "--model".into(),
        model.display().to_string(),
        "--task".into(),
        "classify".into(),
        "-q".into(),
        "-y".into(),
    ];
    args.extend(queue_flags(dir));
    let (ran, peak) = run_measured(fresco_cmd().args(&args), TIMEOUT);
    ran.ok();
    // Every item has its row, and none is an error row.
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), count, "a row per item");
    assert!(
        !text.contains("\"error\""),
        "no item failed: {}",
        text.lines().find(|l| l.contains("\"error\"")).unwrap()
    );
    peak
}

#[test]
fn peak_memory_is_the_same_for_ten_thousand_and_a_hundred_thousand_items() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("frame.png");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=24x16:rate=1",
            "-frames:v",
            "1",
        ],
        &png,
    );
    let model: PathBuf = dir.path().join("constant.onnx");
    std::fs::write(
        &model,
        fresco_infer::onnx_build::constant_classifier_model(3),
    )
    .unwrap();
    let mut peaks = Vec::new();
    for count in [10_000, 100_000] {
        let work = dir.path().join(format!("run-{count}"));
        let root = work.join("items");
        dataset(&root, &png, count);
        let started = Instant::now();
        let peak = score(&work, &root, &model, count);
        eprintln!(
            "{count} items: peak {:.1} MiB, {:.1} s",
            peak as f64 / 1024.0,
            started.elapsed().as_secs_f64()
        );
        peaks.push(peak);
        std::fs::remove_dir_all(&work).unwrap();
    }
    let (small, large) = (peaks[0] as f64, peaks[1] as f64);
    assert!(
        large <= small * 1.10,
        "peak memory grew with the dataset: {:.1} MiB for 10,000 items, {:.1} MiB for 100,000 \
         (+{:.1}%, more than 10%)",
        small / 1024.0,
        large / 1024.0,
        (large / small - 1.0) * 100.0
    );
}

//! A job's log as the workers wrote it to the queue (`fresco jobs logs ID --json`), read back
//! for the scale-out tests: which worker claimed and scored which chunk, and how often.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::jobs::TestQueue;
use crate::common::{fresco_cmd, run_with_timeout, s};

/// One line of a job's log.
#[derive(Debug, Clone)]
pub struct Entry {
    pub worker: String,
    pub message: String,
}

/// The job's whole log, oldest first.
pub fn read(queue: &TestQueue, id: &str) -> Vec<Entry> {
    let mut args = vec![s("jobs"), s("logs"), s(id), s("--json")];
    args.extend(queue.args());
    let out = run_with_timeout(fresco_cmd().args(args), Duration::from_secs(60)).ok();
    out.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("jobs logs --json printed {l:?}: {e}"));
            Entry {
                worker: v["worker"].as_str().unwrap_or("-").to_string(),
                message: v["message"].as_str().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

/// The numbers in `text`, in order.
fn numbers(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// Claims of score tasks: (worker, chunk, first frame, end frame).
pub fn score_claims(log: &[Entry]) -> Vec<(String, u64, u64, u64)> {
    log.iter()
        .filter_map(|e| {
            let rest = e.message.strip_prefix("claimed score chunk ")?;
            let n = numbers(rest);
            Some((e.worker.clone(), *n.first()?, *n.get(1)?, *n.get(2)?))
        })
        .collect()
}

/// Chunks scored to the end by a worker: (worker, chunk, frames). A chunk a worker found
/// already on disk (finished by a worker that died before recording it) is not scored again.
pub fn scored(log: &[Entry]) -> Vec<(String, u64, u64)> {
    log.iter()
        .filter(|e| !e.message.contains("already on disk"))
        .filter_map(|e| {
            let rest = e.message.strip_prefix("scored chunk ")?;
            let n = numbers(rest);
            Some((e.worker.clone(), *n.first()?, *n.get(1)?))
        })
        .collect()
}

/// How many times each chunk was scored to the end.
pub fn times_scored(log: &[Entry]) -> BTreeMap<u64, usize> {
    let mut times = BTreeMap::new();
    for (_, chunk, _) in scored(log) {
        *times.entry(chunk).or_insert(0) += 1;
    }
    times
}

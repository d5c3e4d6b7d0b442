//! Queues and worker processes for the durable-job tests: a SQLite file or a fresh PostgreSQL
//! database per test, `fresco jobs` calls, and `fresco worker` processes with their logs.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{fresco_cmd, p, run_with_timeout, s, LogTo, Out};
pub use fresco_testkit::process::{read_log, wait_exit, wait_until};

/// A queue for one test: its URL and the work folder its workers share.
pub struct TestQueue {
    pub url: String,
    pub work: PathBuf,
    /// For PostgreSQL: the admin URL and the database to drop at the end.
    pg: Option<(String, String)>,
}

impl Drop for TestQueue {
    fn drop(&mut self) {
        if let Some((admin, db)) = &self.pg {
            let _ = Command::new("psql")
                .args([
                    admin.as_str(),
                    "-q",
                    "-c",
                    &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A SQLite queue in `dir`.
pub fn sqlite_queue(dir: &Path) -> TestQueue {
    TestQueue {
        url: format!("sqlite://{}", dir.join("queue.db").display()),
        work: dir.join("work"),
        pg: None,
    }
}

/// A fresh PostgreSQL database on the server `FRESCO_TEST_POSTGRES_URL` names, or None (with a
/// message) when it is not set. With `FRESCO_REQUIRE_POSTGRES=1` (CI) a missing server fails.
pub fn postgres_queue(dir: &Path) -> Option<TestQueue> {
    let admin = match std::env::var("FRESCO_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                std::env::var("FRESCO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "FRESCO_REQUIRE_POSTGRES=1 but FRESCO_TEST_POSTGRES_URL is not set"
            );
            eprintln!(
                "SKIPPED: set FRESCO_TEST_POSTGRES_URL (scripts/postgres.sh prints one) to run this test on PostgreSQL"
            );
            return None;
        }
    };
    Some(pg_queue_on(&admin, dir))
}

/// A fresh database on the PostgreSQL server at `admin` (dropped when the queue is).
pub fn pg_queue_on(admin: &str, dir: &Path) -> TestQueue {
    let admin = admin.to_string();
    let db = format!(
        "fresco_cli_{}_{}",
        std::process::id(),
        Instant::now().elapsed().subsec_nanos() ^ rand_u32()
    );
    let status = Command::new("psql")
        .args([admin.as_str(), "-q", "-c", &format!("CREATE DATABASE {db}")])
        .status()
        .expect("psql runs");
    assert!(
        status.success(),
        "could not create database {db} on {admin}"
    );
    let url = match admin.rfind('/') {
        Some(slash) if admin[..slash].contains("://") && slash > admin.find("://").unwrap() + 2 => {
            let rest = &admin[slash + 1..];
            let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
            format!("{}/{db}{query}", &admin[..slash])
        }
        _ => format!("{admin}/{db}"),
    };
    TestQueue {
        url,
        work: dir.join("work"),
        pg: Some((admin, db)),
    }
}

fn rand_u32() -> u32 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish() as u32
}

impl TestQueue {
    /// `--db URL --work-dir DIR`.
    pub fn args(&self) -> Vec<&OsStr> {
        vec![s("--db"), s(&self.url), s("--work-dir"), p(&self.work)]
    }

    /// `fresco jobs submit INPUT -o OUTPUT --model MODEL EXTRA...`; returns the job id.
    pub fn submit(&self, input: &Path, output: &Path, model: &Path, extra: &[&str]) -> String {
        let out = self.try_submit(input, output, model, extra).ok();
        out.stdout.trim().to_string()
    }

    /// `fresco jobs submit INPUT -o OUTPUT --model MODEL EXTRA...`, for a submission that may
    /// be refused: what the command printed and its exit code.
    pub fn try_submit(&self, input: &Path, output: &Path, model: &Path, extra: &[&str]) -> Out {
        let mut args = vec![
            s("jobs"),
            s("submit"),
            p(input),
            s("-o"),
            p(output),
            s("--model"),
            p(model),
        ];
        args.extend(self.args());
        args.extend(extra.iter().map(|a| s(a)));
        run_with_timeout(fresco_cmd().args(args), Duration::from_secs(60))
    }

    /// `fresco jobs show ID --json`.
    pub fn show(&self, id: &str) -> serde_json::Value {
        let mut args = vec![s("jobs"), s("show"), s(id), s("--json")];
        args.extend(self.args());
        run_with_timeout(fresco_cmd().args(args), Duration::from_secs(60))
            .ok()
            .json()
    }

    /// `fresco jobs VERB ID`.
    pub fn jobs(&self, verb: &str, id: &str) -> Out {
        let mut args = vec![s("jobs"), s(verb), s(id)];
        args.extend(self.args());
        run_with_timeout(fresco_cmd().args(args), Duration::from_secs(60))
    }

    /// Starts `fresco worker --until-idle` (2 s leases, 100 ms back-off) logging to `log`.
    pub fn spawn_worker(&self, log: &Path, env: &[(&str, &str)], extra: &[&str]) -> Child {
        let mut cmd = fresco_cmd();
        cmd.arg("worker")
            .args(self.args())
            .args([
                "--until-idle",
                "--lease-seconds",
                "2",
                "--retry-delay-ms",
                "100",
                "--threads",
                "1",
            ])
            .args(extra)
            .env("FRESCO_LOG", "info,ort=error,sqlx=warn")
            .log_to(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().expect("start fresco worker")
    }
}

/// Lines of `log` that record a claimed score task: (chunk, first frame, end frame).
pub fn score_claims(log: &str) -> Vec<(u64, u64, u64)> {
    log.lines()
        .filter_map(|l| {
            let rest = l.split("claimed score chunk ").nth(1)?;
            let mut nums = rest
                .split(|c: char| !c.is_ascii_digit())
                .filter(|t| !t.is_empty())
                .map(|t| t.parse::<u64>().unwrap());
            Some((nums.next()?, nums.next()?, nums.next()?))
        })
        .collect()
}

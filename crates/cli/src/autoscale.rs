//! `fresco serve --autoscale MIN..MAX`: `fresco worker` processes on this machine, started and
//! stopped from the depth of the queue.
//!
//! ```text
//! every second: queue.task_counts_of_kind(device) ─> demand (tasks waiting + tasks held)
//!               children still alive ─> workers
//!               Policy::decide(demand, workers) ─> up now | down after the cool-down | hold
//! ```
//!
//! Scaling up is immediate: as many workers as there are tasks to do, at most MAX. Scaling down
//! waits until the surplus has lasted `idle` (`--autoscale-idle`): jobs that arrive minutes
//! apart then find warm workers (model loaded, runtime initialised) instead of paying a cold
//! start each, at the price of idle processes for that long. A stopped worker gets SIGTERM, so
//! it finishes its task in flight (or hands it back after its grace period) and exits; idle
//! workers (by the queue's worker registry) are stopped before busy ones.
//!
//! Every decision is logged with its reason (`autoscale: up 0 -> 2 workers: ...`) and counted
//! in `fresco_autoscale_decisions_total{direction, reason}`; `fresco_autoscale_workers` is the
//! number of worker processes and `fresco_autoscale_demand` the tasks they are sized for.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fresco_queue::Queue;
use fresco_worker::StopSignal;
use tokio::process::{Child, Command};

/// How often the queue's depth is read.
const POLL: Duration = Duration::from_secs(1);
/// A worker that fails sooner than this after its start is taken as unable to start (a bad
/// device, a missing library): no new one is started for [`CRASH_PAUSE`], so a broken setup
/// does not become a tight loop of starts.
const EARLY_EXIT: Duration = Duration::from_secs(10);
const CRASH_PAUSE: Duration = Duration::from_secs(30);
/// Beyond the workers' own grace period, how long a stopped worker may take to exit before it
/// is killed.
const EXIT_MARGIN: Duration = Duration::from_secs(15);

/// `MIN..MAX` worker processes (`N` alone means `N..N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerRange {
    pub min: usize,
    pub max: usize,
}

impl FromStr for WorkerRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let number = |part: &str| {
            part.trim().parse::<usize>().map_err(|_| {
                format!("'{s}': expected MIN..MAX worker processes, e.g. 0..4 ('{part}' is not a number)")
            })
        };
        let (min, max) = match s.split_once("..") {
            Some((min, max)) => (number(min)?, number(max.trim_start_matches('='))?),
            None => {
                let n = number(s)?;
                (n, n)
            }
        };
        if max == 0 {
            return Err(format!(
                "'{s}': the most workers must be at least 1 (e.g. 0..4)"
            ));
        }
        if min > max {
            return Err(format!(
                "'{s}': the fewest workers ({min}) is more than the most ({max})"
            ));
        }
        Ok(WorkerRange { min, max })
    }
}

impl std::fmt::Display for WorkerRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..{}", self.min, self.max)
    }
}

/// Why the worker count changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// More tasks wait or run than there are workers.
    WorkWaiting,
    /// Fewer workers than the minimum (at start, or after one exited).
    BelowMinimum,
    /// Nothing queued or running for the whole idle time.
    Idle,
    /// Fewer tasks than workers for the whole idle time.
    Surplus,
}

impl Reason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Reason::WorkWaiting => "work-waiting",
            Reason::BelowMinimum => "below-minimum",
            Reason::Idle => "idle",
            Reason::Surplus => "surplus",
        }
    }
}

/// What to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Hold,
    Up { to: usize, reason: Reason },
    Down { to: usize, reason: Reason },
}

/// The scaling rule, with the one piece of state it needs: since when the workers have
/// outnumbered the work.
#[derive(Debug, Clone)]
pub struct Policy {
    pub range: WorkerRange,
    /// How long a surplus must last before workers are stopped (the cool-down).
    pub idle: Duration,
    surplus_since: Option<Instant>,
}

impl Policy {
    pub fn new(range: WorkerRange, idle: Duration) -> Policy {
        Policy {
            range,
            idle,
            surplus_since: None,
        }
    }

    /// Decides from the demand (tasks waiting plus tasks held) and the live workers.
    pub fn decide(&mut self, demand: u64, workers: usize, now: Instant) -> Decision {
        let wanted = usize::try_from(demand)
            .unwrap_or(usize::MAX)
            .clamp(self.range.min, self.range.max);
        if workers < self.range.min {
            self.surplus_since = None;
            return Decision::Up {
                to: wanted,
                reason: Reason::BelowMinimum,
            };
        }
        if wanted > workers {
            self.surplus_since = None;
            return Decision::Up {
                to: wanted,
                reason: Reason::WorkWaiting,
            };
        }
        if wanted == workers {
            self.surplus_since = None;
            return Decision::Hold;
        }
        let since = *self.surplus_since.get_or_insert(now);
        if now.duration_since(since) < self.idle {
            return Decision::Hold;
        }
        self.surplus_since = None;
        Decision::Down {
            to: wanted,
            reason: if demand == 0 {
                Reason::Idle
            } else {
                Reason::Surplus
            },
        }
    }

    /// Seconds left of the cool-down, while one runs.
    pub fn cooling_down(&self, now: Instant) -> Option<Duration> {
        self.surplus_since
            .map(|since| self.idle.saturating_sub(now.duration_since(since)))
    }
}

/// How the worker processes are started.
#[derive(Debug, Clone)]
pub struct AutoscaleConfig {
    pub range: WorkerRange,
    pub idle: Duration,
    /// The `fresco` binary (this one).
    pub exe: PathBuf,
    /// Arguments after `fresco worker`.
    pub worker_args: Vec<OsString>,
    /// Environment for the workers, set (`Some`) or removed (`None`). The queue URL goes here,
    /// not on the command line, where `ps` would show its password.
    pub worker_env: Vec<(&'static str, Option<OsString>)>,
    /// The workers' own grace period after SIGTERM.
    pub grace: Duration,
    /// The kind of device of the workers ("cpu", "cuda"): they claim only jobs of that kind,
    /// so only those jobs' tasks are demand.
    pub device_kind: &'static str,
}

/// The workers of `fresco serve ARGS --autoscale RANGE`: `fresco worker` with the server's
/// queue, folders, device and lease settings, each with its share of the cores.
pub fn config_for(args: &crate::serve::ServeArgs, range: WorkerRange) -> AutoscaleConfig {
    let mut worker_args: Vec<OsString> = vec![
        "--lease-seconds".into(),
        args.lease_seconds.max(1).to_string().into(),
        "--grace-seconds".into(),
        args.grace_seconds.to_string().into(),
        "--device".into(),
        args.device.to_string().into(),
        "--batch".into(),
        args.batch.to_string().into(),
    ];
    // MAX workers on one machine: each gets its share of the cores unless told otherwise.
    if let Some(threads) = fresco_worker::threads_per_worker(args.threads, range.max) {
        worker_args.extend(["--threads".into(), threads.to_string().into()]);
    }
    if let Some(dir) = &args.scratch_dir {
        worker_args.extend(["--scratch-dir".into(), dir.clone().into_os_string()]);
    }
    if let Some(mb) = args.scratch_budget_mb {
        worker_args.extend(["--scratch-budget-mb".into(), mb.to_string().into()]);
    }
    let mut worker_env = vec![("FRESCO_DB", Some(args.queue.db_url().into()))];
    match args.queue.system.as_deref().filter(|s| !s.is_empty()) {
        Some(system) => {
            worker_env.push(("FRESCO_SYSTEM", Some(system.into())));
            worker_env.push(("FRESCO_WORK_DIR", None));
        }
        None => {
            worker_env.push(("FRESCO_WORK_DIR", Some(args.queue.work_dir().into())));
            worker_env.push(("FRESCO_SYSTEM", None));
        }
    }
    AutoscaleConfig {
        range,
        idle: Duration::from_secs(args.autoscale_idle),
        exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("fresco")),
        worker_args,
        worker_env,
        grace: Duration::from_secs(args.grace_seconds),
        device_kind: args.device.kind().as_str(),
    }
}

/// One worker process.
struct WorkerProcess {
    child: Child,
    pid: u32,
    started: Instant,
    /// When SIGTERM was sent.
    stopping: Option<Instant>,
}

/// Starts and stops worker processes until `stop`, then stops them all and waits for them.
pub async fn run(queue: Arc<dyn Queue>, config: AutoscaleConfig, stop: Arc<StopSignal>) {
    let mut policy = Policy::new(config.range, config.idle);
    let mut workers: Vec<WorkerProcess> = Vec::new();
    let mut paused_until: Option<Instant> = None;
    let mut was_cooling = false;
    tracing::info!(
        "autoscale: {} worker processes, stopped after {} s without work",
        config.range,
        config.idle.as_secs()
    );
    metrics::gauge!("fresco_autoscale_workers").set(0.0);
    loop {
        reap(&mut workers, &mut paused_until, config.grace);
        if stop.is_stopping() {
            break;
        }
        let live = workers.iter().filter(|w| w.stopping.is_none()).count();
        metrics::gauge!("fresco_autoscale_workers").set(live as f64);
        match queue.task_counts_of_kind(config.device_kind).await {
            Ok(counts) => {
                let demand = counts.pending + counts.leased;
                metrics::gauge!("fresco_autoscale_demand").set(demand as f64);
                let now = Instant::now();
                let decision = policy.decide(demand, live, now);
                let what = format!(
                    "{} task{} waiting, {} held",
                    counts.pending,
                    plural(counts.pending),
                    counts.leased
                );
                let cooling = policy.cooling_down(now);
                if let (Some(left), false) = (cooling, was_cooling) {
                    tracing::info!(
                        "autoscale: cool-down: {live} worker{} for {demand} task{}; stopping the \
                         surplus in {} s unless work arrives",
                        plural(live as u64),
                        plural(demand),
                        left.as_secs()
                    );
                }
                was_cooling = cooling.is_some();
                match decision {
                    Decision::Hold => {}
                    Decision::Up { to, reason } => {
                        if let Some(until) = paused_until.filter(|u| *u > now) {
                            tracing::debug!(
                                "autoscale: not starting workers for {} s more (one failed at start)",
                                until.duration_since(now).as_secs()
                            );
                        } else {
                            tracing::info!(
                                "autoscale: up {live} -> {to} worker{}: {} ({what})",
                                plural(to as u64),
                                describe(reason, config.idle)
                            );
                            count_decision("up", reason);
                            for _ in live..to {
                                match start_worker(&config) {
                                    Ok(worker) => {
                                        tracing::info!(
                                            "autoscale: started worker pid {}",
                                            worker.pid
                                        );
                                        workers.push(worker);
                                    }
                                    Err(e) => {
                                        tracing::error!(
                                            "autoscale: cannot start {} worker: {e}",
                                            config.exe.display()
                                        );
                                        paused_until = Some(now + CRASH_PAUSE);
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Decision::Down { to, reason } => {
                        tracing::info!(
                            "autoscale: down {live} -> {to} worker{}: {} ({what})",
                            plural(to as u64),
                            describe(reason, config.idle)
                        );
                        count_decision("down", reason);
                        let idle = idle_pids(queue.as_ref()).await;
                        let running: Vec<(u32, Instant)> = workers
                            .iter()
                            .filter(|w| w.stopping.is_none())
                            .map(|w| (w.pid, w.started))
                            .collect();
                        for pid in choose_to_stop(&running, &idle, live - to) {
                            if let Some(worker) = workers.iter_mut().find(|w| w.pid == pid) {
                                terminate(worker);
                                tracing::info!("autoscale: stopping worker pid {pid}");
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!("autoscale: cannot read the queue's depth: {e}"),
        }
        let live = workers.iter().filter(|w| w.stopping.is_none()).count();
        metrics::gauge!("fresco_autoscale_workers").set(live as f64);
        tokio::select! {
            _ = stop.stopped() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
    // Shutting down: every worker finishes or hands back its task, then exits.
    if !workers.is_empty() {
        tracing::info!(
            "autoscale: stopping {} worker{} (shutdown)",
            workers.len(),
            plural(workers.len() as u64)
        );
    }
    for worker in workers.iter_mut() {
        if worker.stopping.is_none() {
            terminate(worker);
        }
    }
    let deadline = config.grace + EXIT_MARGIN;
    for mut worker in workers {
        match tokio::time::timeout(deadline, worker.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(
                    "autoscale: worker pid {} did not exit in {} s; killing it",
                    worker.pid,
                    deadline.as_secs()
                );
                let _ = worker.child.kill().await;
            }
        }
    }
    metrics::gauge!("fresco_autoscale_workers").set(0.0);
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn describe(reason: Reason, idle: Duration) -> String {
    match reason {
        Reason::WorkWaiting => "work is waiting".into(),
        Reason::BelowMinimum => "below the minimum".into(),
        Reason::Idle => format!("no work for {} s", idle.as_secs()),
        Reason::Surplus => format!("fewer tasks than workers for {} s", idle.as_secs()),
    }
}

fn count_decision(direction: &'static str, reason: Reason) {
    metrics::counter!(
        "fresco_autoscale_decisions_total",
        "direction" => direction,
        "reason" => reason.label()
    )
    .increment(1);
}

fn start_worker(config: &AutoscaleConfig) -> std::io::Result<WorkerProcess> {
    let mut command = Command::new(&config.exe);
    command
        .arg("worker")
        .args(&config.worker_args)
        .stdin(Stdio::null())
        // Their log lines go where this server's go.
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        // Should this process die without stopping them, they must not outlive it unattended.
        .kill_on_drop(true);
    for (key, value) in &config.worker_env {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    let child = command.spawn()?;
    let pid = child.id().unwrap_or(0);
    Ok(WorkerProcess {
        child,
        pid,
        started: Instant::now(),
        stopping: None,
    })
}

/// Sends SIGTERM: the worker stops claiming, finishes or hands back its task, and exits.
fn terminate(worker: &mut WorkerProcess) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    worker.stopping = Some(Instant::now());
    if let Ok(pid) = i32::try_from(worker.pid) {
        if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGTERM) {
            tracing::warn!("autoscale: cannot signal worker pid {pid}: {e}");
        }
    }
}

/// Forgets the workers that exited (saying how, where unasked), and kills stopped ones that
/// overstay their grace period.
fn reap(workers: &mut Vec<WorkerProcess>, paused_until: &mut Option<Instant>, grace: Duration) {
    workers.retain_mut(|worker| match worker.child.try_wait() {
        Ok(Some(status)) => {
            match worker.stopping {
                Some(_) => tracing::info!("autoscale: worker pid {} exited", worker.pid),
                None => {
                    tracing::warn!(
                        "autoscale: worker pid {} exited unasked ({status})",
                        worker.pid
                    );
                    if !status.success() && worker.started.elapsed() < EARLY_EXIT {
                        tracing::error!(
                            "autoscale: worker pid {} failed within {} s of its start; no new \
                             worker for {} s (see its error above)",
                            worker.pid,
                            EARLY_EXIT.as_secs(),
                            CRASH_PAUSE.as_secs()
                        );
                        *paused_until = Some(Instant::now() + CRASH_PAUSE);
                    }
                }
            }
            false
        }
        Ok(None) => {
            if worker
                .stopping
                .is_some_and(|at| at.elapsed() > grace + EXIT_MARGIN)
            {
                tracing::warn!(
                    "autoscale: worker pid {} still running {} s after SIGTERM; killing it",
                    worker.pid,
                    (grace + EXIT_MARGIN).as_secs()
                );
                let _ = worker.child.start_kill();
            }
            true
        }
        Err(e) => {
            tracing::warn!("autoscale: cannot check worker pid {}: {e}", worker.pid);
            true
        }
    });
}

/// Pids of this machine's workers that the queue's registry lists as idle (names are
/// `host:pid:n`).
async fn idle_pids(queue: &dyn Queue) -> Vec<u32> {
    match queue.workers(Duration::from_secs(600)).await {
        Ok(records) => records
            .iter()
            .filter(|r| r.state == "idle")
            .filter_map(|r| pid_of_worker_name(&r.name))
            .collect(),
        Err(e) => {
            tracing::debug!("autoscale: cannot list workers: {e}");
            Vec::new()
        }
    }
}

/// The pid in a worker name `host:pid:n`.
fn pid_of_worker_name(name: &str) -> Option<u32> {
    let mut parts = name.rsplit(':');
    parts.next()?;
    parts.next()?.parse().ok()
}

/// The `count` of the `live` workers (pid, start) to stop: idle ones first, then the youngest.
fn choose_to_stop(live: &[(u32, Instant)], idle: &[u32], count: usize) -> Vec<u32> {
    let mut candidates: Vec<(bool, Instant, u32)> = live
        .iter()
        .map(|&(pid, started)| (!idle.contains(&pid), started, pid))
        .collect();
    // Idle (false) before busy (true); among each, the most recently started first.
    candidates.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    candidates
        .into_iter()
        .take(count)
        .map(|(_, _, pid)| pid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(min: usize, max: usize) -> WorkerRange {
        WorkerRange { min, max }
    }

    #[test]
    fn ranges_parse_with_clear_errors() {
        assert_eq!("0..4".parse(), Ok(range(0, 4)));
        assert_eq!("2..=3".parse(), Ok(range(2, 3)));
        assert_eq!("3".parse(), Ok(range(3, 3)));
        let err = "4..2".parse::<WorkerRange>().unwrap_err();
        assert!(
            err.contains("fewest workers (4) is more than the most (2)"),
            "{err}"
        );
        let err = "0..0".parse::<WorkerRange>().unwrap_err();
        assert!(err.contains("at least 1"), "{err}");
        let err = "a..4".parse::<WorkerRange>().unwrap_err();
        assert!(err.contains("'a' is not a number"), "{err}");
    }

    #[test]
    fn up_at_once_to_the_demand_capped_at_max() {
        let mut policy = Policy::new(range(0, 3), Duration::from_secs(60));
        let t = Instant::now();
        assert_eq!(policy.decide(0, 0, t), Decision::Hold);
        assert_eq!(
            policy.decide(1, 0, t),
            Decision::Up {
                to: 1,
                reason: Reason::WorkWaiting
            }
        );
        assert_eq!(
            policy.decide(10, 1, t),
            Decision::Up {
                to: 3,
                reason: Reason::WorkWaiting
            }
        );
        assert_eq!(policy.decide(10, 3, t), Decision::Hold);
    }

    #[test]
    fn down_only_after_the_idle_time_and_work_resets_the_clock() {
        let idle = Duration::from_secs(60);
        let mut policy = Policy::new(range(0, 3), idle);
        let t0 = Instant::now();
        assert_eq!(policy.decide(0, 2, t0), Decision::Hold);
        assert_eq!(policy.cooling_down(t0), Some(idle));
        assert_eq!(
            policy.decide(0, 2, t0 + Duration::from_secs(59)),
            Decision::Hold
        );
        // A job in the cool-down: the warm workers take it, and the clock starts over.
        assert_eq!(
            policy.decide(2, 2, t0 + Duration::from_secs(59)),
            Decision::Hold
        );
        assert_eq!(policy.cooling_down(t0), None);
        let t1 = t0 + Duration::from_secs(70);
        assert_eq!(policy.decide(1, 2, t1), Decision::Hold);
        assert_eq!(
            policy.decide(1, 2, t1 + idle),
            Decision::Down {
                to: 1,
                reason: Reason::Surplus
            }
        );
        let t2 = t1 + idle + Duration::from_secs(1);
        assert_eq!(policy.decide(0, 1, t2), Decision::Hold);
        assert_eq!(
            policy.decide(0, 1, t2 + idle),
            Decision::Down {
                to: 0,
                reason: Reason::Idle
            }
        );
    }

    #[test]
    fn the_minimum_is_kept_and_restored() {
        let mut policy = Policy::new(range(1, 2), Duration::from_secs(5));
        let t = Instant::now();
        assert_eq!(
            policy.decide(0, 0, t),
            Decision::Up {
                to: 1,
                reason: Reason::BelowMinimum
            }
        );
        assert_eq!(policy.decide(0, 1, t), Decision::Hold);
        assert_eq!(
            policy.decide(0, 1, t + Duration::from_secs(600)),
            Decision::Hold
        );
    }

    #[test]
    fn idle_workers_are_stopped_first_then_the_youngest() {
        let t = Instant::now();
        let live = [
            (10, t),
            (11, t + Duration::from_secs(1)),
            (12, t + Duration::from_secs(2)),
        ];
        assert_eq!(choose_to_stop(&live, &[10], 1), vec![10]);
        assert_eq!(choose_to_stop(&live, &[10], 2), vec![10, 12]);
        assert_eq!(choose_to_stop(&live, &[], 2), vec![12, 11]);
        assert_eq!(choose_to_stop(&live, &[99], 5), vec![12, 11, 10]);
    }

    #[test]
    fn worker_names_give_their_pids() {
        assert_eq!(pid_of_worker_name("box:4242:0"), Some(4242));
        assert_eq!(pid_of_worker_name("my:host:17:3"), Some(17));
        assert_eq!(pid_of_worker_name("nonsense"), None);
    }
}

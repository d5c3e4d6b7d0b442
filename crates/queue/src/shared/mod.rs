//! The verbs that SQLite and PostgreSQL run alike, written once and compiled into each backend
//! (`sqlite.rs` and `postgres.rs` each include this folder as their `shared` module).
//!
//! Every statement here uses `$N` placeholders, which both databases accept, and the clock as
//! `now!()`, an SQL expression that each backend defines before it includes this module:
//! PostgreSQL's `statement_timestamp()`, SQLite's `julianday('now')` (this machine's clock, as
//! [`crate::now_ms`]). What the databases really do differently, each backend keeps: connecting,
//! taking the write lock (`BEGIN IMMEDIATE`) or row locks, the claim, sequence allocation,
//! notifications and lease expiry. The code here reaches those through the names the backend
//! module defines:
//!
//! - `Backend`, the queue type, with its `pool`; `Conn`, its connection type;
//! - `write()`, a write transaction (`commit()` ends it, dropping it rolls back), and
//!   `write_one()`, the same for a single statement, which PostgreSQL runs without a
//!   transaction of its own;
//! - `Backend::lock_job(conn, job)`, which locks a job row where the database needs it, and is
//!   false when the job is over; `LOCK_ROW` and `LOCK_TASK`, what a `SELECT` of a job or of a
//!   held task (`tasks t`) adds to lock the row; `DONE_CHUNKS_INDEX`, the index SQLite is told
//!   to read done chunks by;
//! - `work_added(conn)`, which wakes the waiters of [`crate::Leases::wait_for_work`];
//! - the verbs written per backend: `submit_as`, `claim_task`, `insert_chunks` (a plan's score
//!   tasks), `expire_held` and `wait`.

use super::{Backend, Conn, DONE_CHUNKS_INDEX, LOCK_ROW, LOCK_TASK};

pub(super) mod accounts;
mod batches;
pub(super) mod deliveries;
mod expiry;
mod items;
mod jobs;
mod leases;

pub(super) use expiry::{end_lease, LeaseEnded};
pub(super) use jobs::{active_with_identity, job_with_key};
pub(super) use leases::{insert_task, mark_running};

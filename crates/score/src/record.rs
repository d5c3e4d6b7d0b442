//! One row per scored frame ([`Record`]) and the formats rows are written in, chosen by the
//! output's extension ([`RecordFormat::from_path`]): JSON Lines and Parquet (docs/records.md).
//!
//! Rows are written in parts: a chunk of frames becomes one part (bytes, [`write_part`]), and
//! [`join_parts`] makes the final file from the parts in order, checking the total row count.

use std::path::Path;

use crate::prep::Task;

/// A class and its score (`classify`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Class {
    pub index: u32,
    pub label: String,
    pub score: f32,
}

/// A box in the displayed frame's pixels, `x0, y0, x1, y1` (`detect`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Detection {
    pub label: String,
    pub class: u32,
    pub score: f32,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// Points `x, y` in the displayed frame's pixels where the detector gives them (BlazeFace:
    /// eyes, nose, mouth, ears, in the model's order); empty for the other layouts.
    #[serde(default)]
    pub keypoints: Vec<[f32; 2]>,
}

/// One output tensor, row-major (`tensors`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<u64>,
    pub values: Vec<f32>,
}

/// The task's part of a row.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scores {
    Classes(Vec<Class>),
    Detections(Vec<Detection>),
    Tensors(Vec<Tensor>),
}

impl Scores {
    pub fn task(&self) -> Task {
        match self {
            Scores::Classes(_) => Task::Classify,
            Scores::Detections(_) => Task::Detect,
            Scores::Tensors(_) => Task::Tensors,
        }
    }
}

/// One scored frame (one image, for folders of images).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// The input, as the user named it.
    pub source: String,
    /// The frame's index in the stream, from 0 (sampling keeps the stream's numbering).
    pub frame: u64,
    /// Presentation timestamp in the stream's time base, as the container gives it.
    pub pts: i64,
    /// Seconds from the stream's first frame (0.0 for it, whatever its `pts`).
    pub time: f64,
    /// `classes`, `detections` or `tensors`, one key in JSON.
    #[serde(flatten)]
    pub scores: Scores,
}

/// Where records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    Jsonl,
    Parquet,
}

impl RecordFormat {
    /// `.jsonl` or `.parquet` (any case); `None` for any other output (videos, images).
    pub fn from_path(path: &Path) -> Option<RecordFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "jsonl" => Some(RecordFormat::Jsonl),
            "parquet" => Some(RecordFormat::Parquet),
            _ => None,
        }
    }
}

/// Why rows could not be written or joined.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record of task {found:?} in a {expected:?} file")]
    MixedTasks { expected: Task, found: Task },
    #[error("the parts hold {found} rows, {expected} were expected")]
    RowCount { expected: u64, found: u64 },
    #[error("part {part}: {reason}")]
    BadPart { part: usize, reason: String },
    #[error("writing records: {0}")]
    Write(String),
    /// A task whose results are not rows (`segment`'s masks are images).
    #[error("task {0:?} writes no records")]
    NotRecords(Task),
}

/// Refuses a task that writes no records: masks are images, never rows.
pub(crate) fn records_task(task: Task) -> Result<(), RecordError> {
    match task {
        Task::Classify | Task::Detect | Task::Tensors => Ok(()),
        Task::Segment => Err(RecordError::NotRecords(task)),
    }
}

/// Writes `rows` (all of `task`) as one part in `format`.
pub fn write_part(
    format: RecordFormat,
    task: Task,
    rows: &[Record],
) -> Result<Vec<u8>, RecordError> {
    records_task(task)?;
    if let Some(r) = rows.iter().find(|r| r.scores.task() != task) {
        return Err(RecordError::MixedTasks {
            expected: task,
            found: r.scores.task(),
        });
    }
    match format {
        RecordFormat::Jsonl => {
            let mut out = Vec::new();
            for row in rows {
                serde_json::to_writer(&mut out, row)
                    .map_err(|e| RecordError::Write(e.to_string()))?;
                out.push(b'\n');
            }
            Ok(out)
        }
        RecordFormat::Parquet => crate::parquet_out::write(task, rows),
    }
}

/// One row of a dataset's records (docs/datasets.md): an item scored, or why it was not.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemRow {
    Scored(Record),
    /// An error row: the item's key, the error's kind (`not-image`, ...) and message.
    Failed {
        source: String,
        kind: String,
        message: String,
    },
}

impl ItemRow {
    /// The item's key.
    pub fn source(&self) -> &str {
        match self {
            ItemRow::Scored(record) => &record.source,
            ItemRow::Failed { source, .. } => source,
        }
    }
}

/// One part of a dataset's records: JSON Lines with error rows as
/// `{"source": KEY, "error": {"kind": ..., "message": ...}}`, or Parquet with the error columns
/// ([`crate::parquet_out::dataset_schema`]). Joined by [`join_parts`] as a records job's parts.
pub fn write_dataset_part(
    format: RecordFormat,
    task: Task,
    rows: &[ItemRow],
) -> Result<Vec<u8>, RecordError> {
    records_task(task)?;
    match format {
        RecordFormat::Jsonl => {
            let mut out = Vec::new();
            for row in rows {
                let written = match row {
                    ItemRow::Scored(record) => serde_json::to_writer(&mut out, record),
                    ItemRow::Failed {
                        source,
                        kind,
                        message,
                    } => serde_json::to_writer(
                        &mut out,
                        &serde_json::json!({
                            "source": source,
                            "error": { "kind": kind, "message": message },
                        }),
                    ),
                };
                written.map_err(|e| RecordError::Write(e.to_string()))?;
                out.push(b'\n');
            }
            Ok(out)
        }
        RecordFormat::Parquet => crate::parquet_out::write_dataset(task, rows),
    }
}

/// Joins parts (in order) into `out`, checking that they hold `expected_rows` rows in all.
/// JSONL parts are concatenated; Parquet parts' row groups are rewritten into one file.
pub fn join_parts<W: std::io::Write + Send>(
    format: RecordFormat,
    task: Task,
    parts: &[bytes::Bytes],
    expected_rows: u64,
    out: W,
) -> Result<u64, RecordError> {
    records_task(task)?;
    let rows = match format {
        RecordFormat::Jsonl => join_jsonl(parts.len(), |i| Ok(&parts[i][..]), expected_rows, out)?,
        RecordFormat::Parquet => crate::parquet_out::join(
            task,
            parts.iter().map(|p| Ok(p.clone())),
            expected_rows,
            out,
        )?,
    };
    Ok(rows)
}

/// As [`join_parts`], with the parts read from `files` while they are joined, so that the
/// memory a join takes does not grow with the job (a dataset of a million items, a long film):
/// JSONL parts are counted, then copied, in blocks; Parquet parts are read a row group at a
/// time.
pub fn join_part_files<W: std::io::Write + Send>(
    format: RecordFormat,
    task: Task,
    files: &[std::path::PathBuf],
    expected_rows: u64,
    out: W,
) -> Result<u64, RecordError> {
    records_task(task)?;
    let open = |i: usize, file: &Path| {
        std::fs::File::open(file).map_err(|e| RecordError::BadPart {
            part: i,
            reason: format!("{}: {e}", file.display()),
        })
    };
    let rows = match format {
        RecordFormat::Jsonl => join_jsonl(files.len(), |i| open(i, &files[i]), expected_rows, out)?,
        RecordFormat::Parquet => crate::parquet_out::join(
            task,
            files.iter().enumerate().map(|(i, f)| open(i, f)),
            expected_rows,
            out,
        )?,
    };
    Ok(rows)
}

/// JSONL parts `0..count`, each opened by `open`: counted in blocks (each must end with a
/// newline, and all together hold `expected_rows` lines), then copied to `out`.
fn join_jsonl<R: std::io::Read, W: std::io::Write>(
    count: usize,
    open: impl Fn(usize) -> Result<R, RecordError>,
    expected_rows: u64,
    mut out: W,
) -> Result<u64, RecordError> {
    let mut rows = 0u64;
    for i in 0..count {
        let (lines, last) = count_lines(open(i)?).map_err(|e| RecordError::BadPart {
            part: i,
            reason: e.to_string(),
        })?;
        rows += lines;
        if last.is_some_and(|b| b != b'\n') {
            return Err(RecordError::BadPart {
                part: i,
                reason: "does not end with a newline (truncated?)".into(),
            });
        }
    }
    if rows != expected_rows {
        return Err(RecordError::RowCount {
            expected: expected_rows,
            found: rows,
        });
    }
    for i in 0..count {
        std::io::copy(&mut open(i)?, &mut out).map_err(|e| RecordError::Write(e.to_string()))?;
    }
    out.flush().map_err(|e| RecordError::Write(e.to_string()))?;
    Ok(rows)
}

/// The newlines `reader` holds, read in 64 KiB blocks, and its last byte.
fn count_lines(mut reader: impl std::io::Read) -> std::io::Result<(u64, Option<u8>)> {
    let mut block = vec![0u8; 1 << 16];
    let (mut lines, mut last) = (0u64, None);
    loop {
        let n = reader.read(&mut block)?;
        if n == 0 {
            return Ok((lines, last));
        }
        lines += block[..n].iter().filter(|b| **b == b'\n').count() as u64;
        last = Some(block[n - 1]);
    }
}

/// The rows of a records file: its lines (JSONL) or its footer's row count (Parquet).
pub fn count_rows(path: &std::path::Path) -> Result<u64, RecordError> {
    let read = |e: std::io::Error| RecordError::Write(format!("{}: {e}", path.display()));
    match RecordFormat::from_path(path) {
        Some(RecordFormat::Jsonl) => {
            let file = std::fs::File::open(path).map_err(read)?;
            Ok(count_lines(file).map_err(read)?.0)
        }
        Some(RecordFormat::Parquet) => {
            use parquet::file::reader::FileReader;
            let file = std::fs::File::open(path).map_err(read)?;
            let reader = parquet::file::reader::SerializedFileReader::new(file)
                .map_err(|e| RecordError::Write(format!("{}: {e}", path.display())))?;
            Ok(reader.metadata().file_metadata().num_rows() as u64)
        }
        None => Err(RecordError::Write(format!(
            "{}: not a records file",
            path.display()
        ))),
    }
}

//! Records as parts and joined files: JSONL round trips through serde, Parquet is read back by
//! an independent reader (pyarrow, and DuckDB where installed; from `FRESCO_TEST_PYTHON` or
//! .fresco/venv, skipped with a message where absent unless `FRESCO_REQUIRE_PYARROW=1`), and
//! joins check the row count and the parts.

mod common;

use std::path::Path;

use bytes::Bytes;
use fresco_score::{
    count_rows, join_part_files, join_parts, write_part, Class, Detection, Record, RecordError,
    RecordFormat, Scores, Task, Tensor,
};

fn row(frame: u64, scores: Scores) -> Record {
    Record {
        source: "film.mp4".into(),
        frame,
        pts: frame as i64 * 1001,
        time: frame as f64 * 1001.0 / 30000.0,
        scores,
    }
}

fn classes(frame: u64) -> Record {
    row(
        frame,
        Scores::Classes(vec![
            Class {
                index: 235,
                label: "German shepherd".into(),
                score: 0.5,
            },
            Class {
                index: frame as u32,
                label: format!("class {frame}"),
                score: 0.25,
            },
        ]),
    )
}

fn detections(frame: u64) -> Record {
    // Every third frame finds nothing: empty lists must survive.
    let found = (0..frame % 3)
        .map(|i| Detection {
            label: "dog".into(),
            class: 16,
            score: 0.5 + i as f32 / 10.0,
            bbox: [1.0, 2.0, 3.0 + frame as f32, 4.0],
            // Some with keypoints (as BlazeFace gives), some without: both must survive.
            keypoints: (0..i * 2).map(|k| [k as f32, frame as f32 + 0.5]).collect(),
        })
        .collect();
    row(frame, Scores::Detections(found))
}

fn tensors(frame: u64) -> Record {
    row(
        frame,
        Scores::Tensors(vec![
            Tensor {
                name: "embedding".into(),
                shape: vec![1, 3],
                values: vec![frame as f32, 0.5, -1.0],
            },
            Tensor {
                name: "score:0".into(),
                shape: vec![1],
                values: vec![0.75],
            },
        ]),
    )
}

fn rows(task: Task, frames: std::ops::Range<u64>) -> Vec<Record> {
    frames
        .map(|f| match task {
            Task::Classify => classes(f),
            Task::Detect => detections(f),
            Task::Tensors => tensors(f),
            Task::Segment => unreachable!("segment makes masks, never rows"),
        })
        .collect()
}

#[test]
fn segment_writes_no_records() {
    for format in [RecordFormat::Jsonl, RecordFormat::Parquet] {
        let refused = write_part(format, Task::Segment, &[]).unwrap_err();
        assert!(
            refused.to_string().contains("writes no records"),
            "{refused}"
        );
        let rows = [fresco_score::ItemRow::Failed {
            source: "a.png".into(),
            kind: "empty".into(),
            message: "0 bytes".into(),
        }];
        assert!(fresco_score::write_dataset_part(format, Task::Segment, &rows).is_err());
        let mut out = Vec::new();
        assert!(join_parts(format, Task::Segment, &[], 0, &mut out).is_err());
        assert!(out.is_empty());
    }
}

/// Three parts of frames 0..4, 4..5 and 5..9, joined.
fn joined(format: RecordFormat, task: Task) -> (Vec<Record>, Vec<u8>) {
    let all = rows(task, 0..9);
    let parts: Vec<Bytes> = [0..4, 4..5, 5..9]
        .into_iter()
        .map(|r| {
            Bytes::from(write_part(format, task, &all[r.start as usize..r.end as usize]).unwrap())
        })
        .collect();
    let mut out = Vec::new();
    assert_eq!(join_parts(format, task, &parts, 9, &mut out).unwrap(), 9);
    (all, out)
}

#[test]
fn formats_are_chosen_by_extension() {
    assert_eq!(
        RecordFormat::from_path(Path::new("a/tags.jsonl")),
        Some(RecordFormat::Jsonl)
    );
    assert_eq!(
        RecordFormat::from_path(Path::new("o.PARQUET")),
        Some(RecordFormat::Parquet)
    );
    assert_eq!(RecordFormat::from_path(Path::new("out.mp4")), None);
    assert_eq!(RecordFormat::from_path(Path::new("out")), None);
}

#[test]
fn jsonl_parts_join_into_one_object_per_line() {
    for task in [Task::Classify, Task::Detect, Task::Tensors] {
        let (all, out) = joined(RecordFormat::Jsonl, task);
        let text = String::from_utf8(out).unwrap();
        let back: Vec<Record> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, all, "{task:?}");
    }
    // The documented shape of a line.
    let line = serde_json::to_value(detections(2)).unwrap();
    assert_eq!(line["frame"], 2);
    assert_eq!(line["pts"], 2002);
    assert_eq!(
        line["detections"][0]["box"],
        serde_json::json!([1.0, 2.0, 5.0, 4.0])
    );
    assert_eq!(line["detections"][0]["class"], 16);
    assert_eq!(line["detections"][0]["keypoints"], serde_json::json!([]));
    assert_eq!(
        line["detections"][1]["keypoints"],
        serde_json::json!([[0.0, 2.5], [1.0, 2.5]])
    );
}

/// Parts in files (as assembly joins them, streaming) give the same file as parts in memory,
/// and are checked the same way.
#[test]
fn parts_in_files_join_as_parts_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    for format in [RecordFormat::Jsonl, RecordFormat::Parquet] {
        for task in [Task::Classify, Task::Detect, Task::Tensors] {
            let all = rows(task, 0..9);
            let files: Vec<std::path::PathBuf> = [0..4, 4..5, 5..9]
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    let file = dir.path().join(format!("{format:?}-{task:?}-{i}"));
                    let part = write_part(format, task, &all[r.start..r.end]).unwrap();
                    std::fs::write(&file, part).unwrap();
                    file
                })
                .collect();
            let mut out = Vec::new();
            assert_eq!(
                join_part_files(format, task, &files, 9, &mut out).unwrap(),
                9
            );
            assert_eq!(out, joined(format, task).1, "{format:?} {task:?}");
            let published = dir.path().join(match format {
                RecordFormat::Jsonl => "published.jsonl",
                RecordFormat::Parquet => "published.parquet",
            });
            std::fs::write(&published, &out).unwrap();
            assert_eq!(count_rows(&published).unwrap(), 9, "{format:?} {task:?}");
            let err = join_part_files(format, task, &files, 8, Vec::new()).unwrap_err();
            assert!(
                matches!(
                    err,
                    RecordError::RowCount {
                        expected: 8,
                        found: 9
                    }
                ),
                "{err}"
            );
            // A truncated part, and a missing one, are refused, naming them.
            let bytes = std::fs::read(&files[1]).unwrap();
            std::fs::write(&files[1], &bytes[..bytes.len() - 3]).unwrap();
            let err = join_part_files(format, task, &files, 9, Vec::new()).unwrap_err();
            assert!(
                matches!(err, RecordError::BadPart { part: 1, .. }),
                "{format:?}: {err}"
            );
            std::fs::remove_file(&files[2]).unwrap();
            let err = join_part_files(
                format,
                task,
                &files[..1]
                    .iter()
                    .chain(&files[2..])
                    .cloned()
                    .collect::<Vec<_>>(),
                4,
                Vec::new(),
            )
            .unwrap_err();
            assert!(
                matches!(err, RecordError::BadPart { part: 1, .. }),
                "{format:?}: {err}"
            );
        }
    }
}

#[test]
fn joins_check_the_row_count_and_the_parts() {
    for format in [RecordFormat::Jsonl, RecordFormat::Parquet] {
        let part =
            Bytes::from(write_part(format, Task::Classify, &rows(Task::Classify, 0..3)).unwrap());
        let parts = vec![part.clone(), part.clone()];
        let err = join_parts(format, Task::Classify, &parts, 5, Vec::new()).unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::RowCount {
                    expected: 5,
                    found: 6
                }
            ),
            "{err}"
        );
        // A truncated part is refused, naming it.
        let cut = part.slice(..part.len() - 3);
        let err =
            join_parts(format, Task::Classify, &[part.clone(), cut], 6, Vec::new()).unwrap_err();
        assert!(
            matches!(err, RecordError::BadPart { part: 1, .. }),
            "{format:?}: {err}"
        );
        // Rows of another task are refused.
        let err = write_part(format, Task::Detect, &rows(Task::Classify, 0..1)).unwrap_err();
        assert!(matches!(err, RecordError::MixedTasks { .. }), "{err}");
    }
    // A Parquet part of another task's schema.
    let other = Bytes::from(
        write_part(
            RecordFormat::Parquet,
            Task::Tensors,
            &rows(Task::Tensors, 0..1),
        )
        .unwrap(),
    );
    let err = join_parts(
        RecordFormat::Parquet,
        Task::Classify,
        &[other],
        1,
        Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(err, RecordError::BadPart { part: 0, .. }), "{err}");
    // No parts, no rows: an empty but valid file.
    let mut out = Vec::new();
    assert_eq!(
        join_parts(RecordFormat::Parquet, Task::Detect, &[], 0, &mut out).unwrap(),
        0
    );
    assert!(out.starts_with(b"PAR1"));
}

/// Equal JSON values, numbers within float32 precision.
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-6 * x.abs().max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

const READ_BACK_PY: &str = r#"
import json, sys
import pyarrow.parquet as pq
path = sys.argv[1]
f = pq.ParquetFile(path)
out = {"rows": f.metadata.num_rows, "row_groups": f.metadata.num_row_groups,
       "schema": str(f.schema_arrow), "records": f.read().to_pylist()}
try:
    import duckdb
    out["duckdb"] = duckdb.sql(f"select count(*), sum(len({sys.argv[2]})) from read_parquet('{path}')").fetchall()[0]
except ImportError:
    out["duckdb"] = None
print(json.dumps(out))
"#;

#[test]
fn parquet_is_read_back_by_pyarrow() {
    let Some(python) = common::python_with("pyarrow", "FRESCO_REQUIRE_PYARROW") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (task, column) in [
        (Task::Classify, "classes"),
        (Task::Detect, "detections"),
        (Task::Tensors, "tensors"),
    ] {
        let (all, out) = joined(RecordFormat::Parquet, task);
        let path = dir.path().join(format!("{column}.parquet"));
        std::fs::write(&path, &out).unwrap();
        let got = common::run_python(&python, READ_BACK_PY, &[&path, Path::new(column)]);
        assert_eq!(got["rows"], 9, "{task:?}");
        assert_eq!(got["row_groups"], 3, "one row group per part");
        println!("{task:?} schema:\n{}", got["schema"].as_str().unwrap());
        // pyarrow's rows are the records, field by field (float32 widened to double).
        let want: Vec<serde_json::Value> = all
            .iter()
            .map(|r| serde_json::to_value(r).unwrap())
            .collect();
        let got_records = got["records"].as_array().unwrap();
        assert_eq!(got_records.len(), want.len());
        for (g, w) in got_records.iter().zip(&want) {
            assert!(same(g, w), "{task:?}: pyarrow read {g}, wrote {w}");
        }
        if got["duckdb"].is_null() {
            println!("DuckDB not installed: pyarrow only");
        } else {
            let items: usize = all
                .iter()
                .map(|r| match &r.scores {
                    Scores::Classes(c) => c.len(),
                    Scores::Detections(d) => d.len(),
                    Scores::Tensors(t) => t.len(),
                })
                .sum();
            assert_eq!(got["duckdb"], serde_json::json!([9, items]), "{task:?}");
        }
    }
}

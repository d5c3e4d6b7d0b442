//! Records as Parquet, through arrow-rs: the schema of each task (docs/records.md), a part's
//! bytes from rows, and the join of parts into one file (one row group per part).
//!
//! Columns: `source` (string), `frame` (int64), `pts` (int64), `time` (double), then one of
//! `classes: list<struct<index: int32, label: string, score: float>>`,
//! `detections: list<struct<label: string, class: int32, score: float, box: list<float>,
//! keypoints: list<list<float>>>>` (box = x0, y0, x1, y1; each keypoint x, y; no keypoints is an
//! empty list), `tensors: list<struct<name: string, shape: list<int64>,
//! values: list<float>>>`. Written uncompressed, so readers need no codec.
//!
//! A dataset's records ([`dataset_schema`]) have the same columns, nullable past `source`, and
//! two more, `error_kind` and `error_message` (strings, null on a scored row): an item that
//! could not be scored is a row with only its `source` and its error.

use std::sync::Arc;

use arrow_array::Array;
use arrow_array::{
    ArrayRef, Float32Array, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch,
    StringArray, StructArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;

use crate::prep::Task;
use crate::record::{ItemRow, Record, RecordError, Scores};

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, false)))
}

fn class_fields() -> Fields {
    Fields::from(vec![
        Field::new("index", DataType::Int32, false),
        Field::new("label", DataType::Utf8, false),
        Field::new("score", DataType::Float32, false),
    ])
}

fn detection_fields() -> Fields {
    Fields::from(vec![
        Field::new("label", DataType::Utf8, false),
        Field::new("class", DataType::Int32, false),
        Field::new("score", DataType::Float32, false),
        Field::new("box", list_of(DataType::Float32), false),
        Field::new("keypoints", list_of(list_of(DataType::Float32)), false),
    ])
}

fn tensor_fields() -> Fields {
    Fields::from(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("shape", list_of(DataType::Int64), false),
        Field::new("values", list_of(DataType::Float32), false),
    ])
}

fn task_column(task: Task) -> (&'static str, Fields) {
    match task {
        Task::Classify => ("classes", class_fields()),
        Task::Detect => ("detections", detection_fields()),
        Task::Tensors => ("tensors", tensor_fields()),
        // Masks are images: every write and join refuses the task before a column is made.
        Task::Segment => ("masks", Fields::empty()),
    }
}

/// The schema of a task's records.
pub fn schema(task: Task) -> SchemaRef {
    let (name, fields) = task_column(task);
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("frame", DataType::Int64, false),
        Field::new("pts", DataType::Int64, false),
        Field::new("time", DataType::Float64, false),
        Field::new(name, list_of(DataType::Struct(fields)), false),
    ]))
}

/// The schema of a dataset's records: a task's columns, null on error rows, then the error.
pub fn dataset_schema(task: Task) -> SchemaRef {
    let (name, fields) = task_column(task);
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("frame", DataType::Int64, true),
        Field::new("pts", DataType::Int64, true),
        Field::new("time", DataType::Float64, true),
        Field::new(name, list_of(DataType::Struct(fields)), true),
        Field::new("error_kind", DataType::Utf8, true),
        Field::new("error_message", DataType::Utf8, true),
    ]))
}

/// A list column from per-row lengths and the flattened items.
fn list(item: DataType, lengths: impl IntoIterator<Item = usize>, values: ArrayRef) -> ArrayRef {
    Arc::new(ListArray::new(
        Arc::new(Field::new("item", item, false)),
        OffsetBuffer::from_lengths(lengths),
        values,
        None,
    ))
}

fn floats(values: impl IntoIterator<Item = f32>) -> ArrayRef {
    Arc::new(values.into_iter().collect::<Float32Array>())
}

fn strings<'a>(values: impl IntoIterator<Item = &'a str>) -> ArrayRef {
    Arc::new(values.into_iter().map(Some).collect::<StringArray>())
}

fn ints(values: impl IntoIterator<Item = i32>) -> ArrayRef {
    Arc::new(values.into_iter().collect::<Int32Array>())
}

fn batch(task: Task, rows: &[&Record]) -> Result<RecordBatch, RecordError> {
    crate::record::records_task(task)?;
    let (_, fields) = task_column(task);
    let mut lengths = Vec::with_capacity(rows.len());
    let items: ArrayRef = match task {
        Task::Classify => {
            let classes: Vec<_> = rows
                .iter()
                .flat_map(|r| match &r.scores {
                    Scores::Classes(c) => {
                        lengths.push(c.len());
                        c.as_slice()
                    }
                    _ => &[],
                })
                .collect();
            Arc::new(StructArray::new(
                fields.clone(),
                vec![
                    ints(classes.iter().map(|c| c.index as i32)),
                    strings(classes.iter().map(|c| c.label.as_str())),
                    floats(classes.iter().map(|c| c.score)),
                ],
                None,
            ))
        }
        Task::Detect => {
            let dets: Vec<_> = rows
                .iter()
                .flat_map(|r| match &r.scores {
                    Scores::Detections(d) => {
                        lengths.push(d.len());
                        d.as_slice()
                    }
                    _ => &[],
                })
                .collect();
            Arc::new(StructArray::new(
                fields.clone(),
                vec![
                    strings(dets.iter().map(|d| d.label.as_str())),
                    ints(dets.iter().map(|d| d.class as i32)),
                    floats(dets.iter().map(|d| d.score)),
                    list(
                        DataType::Float32,
                        dets.iter().map(|_| 4),
                        floats(dets.iter().flat_map(|d| d.bbox)),
                    ),
                    list(
                        list_of(DataType::Float32),
                        dets.iter().map(|d| d.keypoints.len()),
                        list(
                            DataType::Float32,
                            dets.iter().flat_map(|d| d.keypoints.iter().map(|_| 2)),
                            floats(
                                dets.iter()
                                    .flat_map(|d| d.keypoints.iter().flatten().copied()),
                            ),
                        ),
                    ),
                ],
                None,
            ))
        }
        Task::Segment => return Err(RecordError::NotRecords(task)),
        Task::Tensors => {
            let tensors: Vec<_> = rows
                .iter()
                .flat_map(|r| match &r.scores {
                    Scores::Tensors(t) => {
                        lengths.push(t.len());
                        t.as_slice()
                    }
                    _ => &[],
                })
                .collect();
            Arc::new(StructArray::new(
                fields.clone(),
                vec![
                    strings(tensors.iter().map(|t| t.name.as_str())),
                    list(
                        DataType::Int64,
                        tensors.iter().map(|t| t.shape.len()),
                        Arc::new(
                            tensors
                                .iter()
                                .flat_map(|t| t.shape.iter().map(|d| *d as i64))
                                .collect::<Int64Array>(),
                        ),
                    ),
                    list(
                        DataType::Float32,
                        tensors.iter().map(|t| t.values.len()),
                        floats(tensors.iter().flat_map(|t| t.values.iter().copied())),
                    ),
                ],
                None,
            ))
        }
    };
    if lengths.len() != rows.len() {
        let found = rows
            .iter()
            .map(|r| r.scores.task())
            .find(|t| *t != task)
            .unwrap_or(task);
        return Err(RecordError::MixedTasks {
            expected: task,
            found,
        });
    }
    let columns: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|r| r.source.as_str())),
        Arc::new(rows.iter().map(|r| r.frame as i64).collect::<Int64Array>()),
        Arc::new(rows.iter().map(|r| r.pts).collect::<Int64Array>()),
        Arc::new(rows.iter().map(|r| r.time).collect::<Float64Array>()),
        list(DataType::Struct(fields), lengths, items),
    ];
    RecordBatch::try_new(schema(task), columns).map_err(|e| RecordError::Write(e.to_string()))
}

/// `batch` as a complete Parquet file of one row group.
fn file_of(schema: SchemaRef, batch: &RecordBatch) -> Result<Vec<u8>, RecordError> {
    let write_error = |e: parquet::errors::ParquetError| RecordError::Write(e.to_string());
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, None).map_err(write_error)?;
    writer.write(batch).map_err(write_error)?;
    writer.close().map_err(write_error)?;
    Ok(out)
}

/// One part: a complete Parquet file holding `rows` as one row group.
pub(crate) fn write(task: Task, rows: &[Record]) -> Result<Vec<u8>, RecordError> {
    let rows: Vec<&Record> = rows.iter().collect();
    file_of(schema(task), &batch(task, &rows)?)
}

/// One part of a dataset's records: its scored rows as [`batch`] makes them, spread out in
/// listing order with null rows where items failed, and the error columns.
pub(crate) fn write_dataset(task: Task, rows: &[ItemRow]) -> Result<Vec<u8>, RecordError> {
    fn scored_of(row: &ItemRow) -> Option<&Record> {
        match row {
            ItemRow::Scored(record) => Some(record),
            ItemRow::Failed { .. } => None,
        }
    }
    let scored: Vec<&Record> = rows.iter().filter_map(scored_of).collect();
    let scored_batch = batch(task, &scored)?;
    let items = scored_batch
        .column(4)
        .as_any()
        .downcast_ref::<ListArray>()
        .expect("the task's column is a list");
    let mut lengths = Vec::with_capacity(rows.len());
    let mut next = 0;
    for row in rows {
        match row {
            ItemRow::Scored(_) => {
                lengths.push(items.value_length(next) as usize);
                next += 1;
            }
            ItemRow::Failed { .. } => lengths.push(0),
        }
    }
    let (_, fields) = task_column(task);
    let valid = NullBuffer::from(
        rows.iter()
            .map(|r| scored_of(r).is_some())
            .collect::<Vec<_>>(),
    );
    let task_items: ArrayRef = Arc::new(ListArray::new(
        Arc::new(Field::new("item", DataType::Struct(fields), false)),
        OffsetBuffer::from_lengths(lengths),
        items.values().clone(),
        Some(valid),
    ));
    fn error(row: &ItemRow) -> Option<(&str, &str)> {
        match row {
            ItemRow::Scored(_) => None,
            ItemRow::Failed { kind, message, .. } => Some((kind.as_str(), message.as_str())),
        }
    }
    let columns: Vec<ArrayRef> = vec![
        strings(rows.iter().map(ItemRow::source)),
        Arc::new(
            rows.iter()
                .map(|r| scored_of(r).map(|x| x.frame as i64))
                .collect::<Int64Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| scored_of(r).map(|x| x.pts))
                .collect::<Int64Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| scored_of(r).map(|x| x.time))
                .collect::<Float64Array>(),
        ),
        task_items,
        Arc::new(
            rows.iter()
                .map(|r| error(r).map(|e| e.0))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| error(r).map(|e| e.1))
                .collect::<StringArray>(),
        ),
    ];
    let schema = dataset_schema(task);
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| RecordError::Write(e.to_string()))?;
    file_of(schema, &batch)
}

/// The parts' rows into one file, a row group per non-empty part. The parts are a records
/// job's ([`schema`]) or a dataset's ([`dataset_schema`]), as the first says, all alike.
/// Each part is read a row group at a time (`parts` may be files or bytes in memory).
pub(crate) fn join<W, R>(
    task: Task,
    parts: impl IntoIterator<Item = Result<R, RecordError>>,
    expected_rows: u64,
    out: W,
) -> Result<u64, RecordError>
where
    W: std::io::Write + Send,
    R: parquet::file::reader::ChunkReader + 'static,
{
    let mut schema = schema(task);
    let mut readers = Vec::new();
    let mut rows = 0u64;
    for (i, part) in parts.into_iter().enumerate() {
        let bad = |reason: String| RecordError::BadPart { part: i, reason };
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(part?).map_err(|e| bad(e.to_string()))?;
        let dataset = dataset_schema(task);
        if i == 0 && builder.schema().fields() == dataset.fields() {
            schema = dataset;
        }
        if builder.schema().fields() != schema.fields() {
            return Err(bad(format!(
                "its schema is not that of {task:?} records: {:?}",
                builder.schema()
            )));
        }
        rows += builder.metadata().file_metadata().num_rows() as u64;
        readers.push(builder.build().map_err(|e| bad(e.to_string()))?);
    }
    if rows != expected_rows {
        return Err(RecordError::RowCount {
            expected: expected_rows,
            found: rows,
        });
    }
    let write_error = |e: parquet::errors::ParquetError| RecordError::Write(e.to_string());
    let mut writer = ArrowWriter::try_new(out, schema, None).map_err(write_error)?;
    for (i, reader) in readers.into_iter().enumerate() {
        for batch in reader {
            let batch = batch.map_err(|e| RecordError::BadPart {
                part: i,
                reason: e.to_string(),
            })?;
            writer.write(&batch).map_err(write_error)?;
        }
        writer.flush().map_err(write_error)?;
    }
    writer.close().map_err(write_error)?;
    Ok(rows)
}

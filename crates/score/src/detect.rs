//! Detection decoders: the output layouts of common detectors to boxes in model-input pixels,
//! then score threshold, per-class non-maximum suppression, and the way back to the frame.
//!
//! - `yolo` (YOLOv3/v5): one output `[N, rows, 5 + classes]`, rows of `cx, cy, w, h` (input
//!   pixels), objectness, class probabilities; a row's score is objectness x its best class.
//! - `yolov8`: one output `[N, 4 + classes, anchors]` (transposed, no objectness); a column's
//!   score is its best class.
//! - `ssd` (TensorFlow detection API): `boxes [N, K, 4]` as normalised `ymin, xmin, ymax, xmax`,
//!   `scores [N, K]`, `classes [N, K]` (class numbers as the model gives them), and optionally
//!   `num_detections [N]`.
//! - `anchors` (BlazeFace-like): score logits `[N, A_i, 1]` and boxes `[N, A_i, 4 + 2k]` per
//!   anchor grid, `cx, cy` relative to the anchor's centre and `w, h`, in input pixels, then
//!   `k` keypoints `x, y` relative to the anchor's centre too (BlazeFace's six: eyes, nose,
//!   mouth, ears), kept in the rows; score = sigmoid(logit clamped to ±100), one class.

use fresco_infer::NamedTensor;

use crate::card::AnchorGrid;
use crate::prep::Geometry;
use crate::record::Detection;

/// The layout of a detector's outputs (`--detect-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectFormat {
    Yolo,
    Yolov8,
    Ssd,
    Anchors,
}

impl std::str::FromStr for DetectFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "yolo" => Ok(DetectFormat::Yolo),
            "yolov8" => Ok(DetectFormat::Yolov8),
            "ssd" => Ok(DetectFormat::Ssd),
            "anchors" => Ok(DetectFormat::Anchors),
            other => Err(format!(
                "unknown detect format '{other}': expected yolo, yolov8, ssd or anchors"
            )),
        }
    }
}

/// A box before it is mapped to the frame: `x0, y0, x1, y1` in model-input pixels, with the
/// keypoints the layout gives (`anchors` only), `x, y` in model-input pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct RawBox {
    pub class: usize,
    pub score: f32,
    pub bbox: [f32; 4],
    pub keypoints: Vec<[f32; 2]>,
}

/// How to decode one detector's outputs, validated against the model (see `resolve`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DetectSpec {
    pub format: DetectFormat,
    /// Indices into the model's outputs: yolo/yolov8 one; ssd boxes, scores, classes and
    /// optionally num_detections; anchors the score outputs, then the box outputs.
    pub outputs: Vec<usize>,
    pub min_score: f32,
    pub nms_iou: f32,
    pub top_k: Option<usize>,
    /// The model's input size, for normalised coordinates.
    pub input_size: (u32, u32),
    /// `anchors` only: each anchor's centre, normalised, in output order.
    #[serde(skip)]
    pub anchor_centres: Vec<[f32; 2]>,
}

pub const DEFAULT_MIN_SCORE: f32 = 0.25;
pub const DEFAULT_NMS_IOU: f32 = 0.45;

/// Anchor centres of grids in order: cell by cell, row-major, `per_cell` anchors in each.
pub fn anchor_centres(grids: &[AnchorGrid]) -> Vec<[f32; 2]> {
    let mut centres = Vec::new();
    for g in grids {
        let n = g.size as f32;
        for y in 0..g.size {
            for x in 0..g.size {
                for _ in 0..g.per_cell {
                    centres.push([(x as f32 + 0.5) / n, (y as f32 + 0.5) / n]);
                }
            }
        }
    }
    centres
}

/// The values of frame `b` of a batched output.
fn frame_slice(t: &NamedTensor, b: usize) -> Result<&[f32], String> {
    let batch = t.shape.first().copied().unwrap_or(1).max(1);
    let per = t.values.len() / batch;
    t.values
        .get(b * per..(b + 1) * per)
        .ok_or_else(|| format!("output '{}' has no frame {b}", t.name))
}

fn cxcywh(cx: f32, cy: f32, w: f32, h: f32) -> [f32; 4] {
    [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
}

fn best(scores: impl Iterator<Item = f32>) -> (usize, f32) {
    scores.enumerate().fold(
        (0, f32::NEG_INFINITY),
        |acc, (i, s)| if s > acc.1 { (i, s) } else { acc },
    )
}

/// Boxes of frame `b` above the minimum score, before suppression.
pub fn raw_boxes(
    spec: &DetectSpec,
    outputs: &[NamedTensor],
    b: usize,
) -> Result<Vec<RawBox>, String> {
    let mut boxes = Vec::new();
    let out = |i: usize| &outputs[spec.outputs[i]];
    match spec.format {
        DetectFormat::Yolo => {
            let t = out(0);
            let cols = *t.shape.last().unwrap_or(&0);
            if cols < 6 {
                return Err(format!(
                    "output '{}' has {cols} columns; yolo needs 6 or more",
                    t.name
                ));
            }
            for row in frame_slice(t, b)?.chunks_exact(cols) {
                let objectness = row[4];
                if objectness < spec.min_score {
                    continue;
                }
                let (class, p) = best(row[5..].iter().copied());
                let score = objectness * p;
                if score >= spec.min_score {
                    boxes.push(RawBox {
                        class,
                        score,
                        bbox: cxcywh(row[0], row[1], row[2], row[3]),
                        keypoints: Vec::new(),
                    });
                }
            }
        }
        DetectFormat::Yolov8 => {
            let t = out(0);
            let (rows, anchors) = match t.shape.as_slice() {
                [_, r, a] | [r, a] => (*r, *a),
                _ => {
                    return Err(format!(
                        "output '{}' is not [N, 4 + classes, anchors]",
                        t.name
                    ))
                }
            };
            if rows < 5 {
                return Err(format!(
                    "output '{}' has {rows} rows; yolov8 needs 5 or more",
                    t.name
                ));
            }
            let v = frame_slice(t, b)?;
            for a in 0..anchors {
                let at = |r: usize| v[r * anchors + a];
                let (class, score) = best((4..rows).map(at));
                if score >= spec.min_score {
                    boxes.push(RawBox {
                        class,
                        score,
                        bbox: cxcywh(at(0), at(1), at(2), at(3)),
                        keypoints: Vec::new(),
                    });
                }
            }
        }
        DetectFormat::Ssd => {
            let (bx, sc, cl) = (
                frame_slice(out(0), b)?,
                frame_slice(out(1), b)?,
                frame_slice(out(2), b)?,
            );
            let mut k = sc.len().min(cl.len()).min(bx.len() / 4);
            if spec.outputs.len() > 3 {
                let n = frame_slice(out(3), b)?.first().copied().unwrap_or(0.0);
                k = k.min(n.max(0.0) as usize);
            }
            let (w, h) = (spec.input_size.0 as f32, spec.input_size.1 as f32);
            for i in 0..k {
                if sc[i] >= spec.min_score {
                    let r = &bx[i * 4..i * 4 + 4];
                    boxes.push(RawBox {
                        class: cl[i].max(0.0) as usize,
                        score: sc[i],
                        bbox: [r[1] * w, r[0] * h, r[3] * w, r[2] * h],
                        keypoints: Vec::new(),
                    });
                }
            }
        }
        DetectFormat::Anchors => {
            let half = spec.outputs.len() / 2;
            let (w, h) = (spec.input_size.0 as f32, spec.input_size.1 as f32);
            let mut logits = Vec::new();
            for i in 0..half {
                logits.extend_from_slice(frame_slice(out(i), b)?);
            }
            let mut anchor = 0usize;
            for i in half..spec.outputs.len() {
                let t = out(i);
                let cols = *t.shape.last().unwrap_or(&0);
                for row in frame_slice(t, b)?.chunks_exact(cols.max(1)) {
                    let (Some(&logit), Some(c)) =
                        (logits.get(anchor), spec.anchor_centres.get(anchor))
                    else {
                        return Err(format!(
                            "the outputs hold more boxes than the card's {} anchors",
                            spec.anchor_centres.len()
                        ));
                    };
                    anchor += 1;
                    let score = 1.0 / (1.0 + (-logit.clamp(-100.0, 100.0)).exp());
                    if score >= spec.min_score {
                        let (ax, ay) = (c[0] * w, c[1] * h);
                        boxes.push(RawBox {
                            class: 0,
                            score,
                            bbox: cxcywh(row[0] + ax, row[1] + ay, row[2], row[3]),
                            keypoints: row
                                .get(4..)
                                .unwrap_or_default()
                                .chunks_exact(2)
                                .map(|p| [p[0] + ax, p[1] + ay])
                                .collect(),
                        });
                    }
                }
            }
            if anchor != spec.anchor_centres.len() || logits.len() != anchor {
                return Err(format!(
                    "the outputs hold {} scores and {anchor} boxes for {} anchors",
                    logits.len(),
                    spec.anchor_centres.len()
                ));
            }
        }
    }
    Ok(boxes)
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Greedy non-maximum suppression per class: highest score first, a box overlapping a kept box
/// of its class by more than `threshold` IoU is dropped. The result is sorted by score (ties
/// by class, then position, so it is deterministic).
pub fn nms(mut boxes: Vec<RawBox>, threshold: f32) -> Vec<RawBox> {
    boxes.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.class.cmp(&b.class))
            .then(a.bbox[0].total_cmp(&b.bbox[0]))
            .then(a.bbox[1].total_cmp(&b.bbox[1]))
    });
    let mut kept: Vec<RawBox> = Vec::new();
    for candidate in boxes {
        let suppressed = kept
            .iter()
            .any(|k| k.class == candidate.class && iou(&k.bbox, &candidate.bbox) > threshold);
        if !suppressed {
            kept.push(candidate);
        }
    }
    kept
}

/// Frame `b`'s detections: decoded, suppressed, cut to top-k, mapped to the frame.
pub fn detect(
    spec: &DetectSpec,
    outputs: &[NamedTensor],
    b: usize,
    geometry: &Geometry,
    label: impl Fn(usize) -> String,
) -> Result<Vec<Detection>, String> {
    let mut kept = nms(raw_boxes(spec, outputs, b)?, spec.nms_iou);
    if let Some(k) = spec.top_k {
        kept.truncate(k);
    }
    Ok(kept
        .into_iter()
        .map(|r| Detection {
            label: label(r.class),
            class: r.class as u32,
            score: r.score,
            bbox: geometry.box_to_frame(r.bbox),
            keypoints: r
                .keypoints
                .iter()
                .map(|&p| geometry.point_to_frame(p))
                .collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(class: usize, score: f32, bbox: [f32; 4]) -> RawBox {
        RawBox {
            class,
            score,
            bbox,
            keypoints: Vec::new(),
        }
    }

    #[test]
    fn nms_suppresses_overlaps_within_a_class_only() {
        let boxes = vec![
            raw(0, 0.8, [0.0, 0.0, 10.0, 10.0]),
            raw(0, 0.9, [1.0, 1.0, 11.0, 11.0]), // IoU 81/119 = 0.68 with the first
            raw(1, 0.7, [0.0, 0.0, 10.0, 10.0]), // another class: kept
            raw(0, 0.6, [20.0, 20.0, 30.0, 30.0]), // no overlap: kept
        ];
        let kept = nms(boxes.clone(), 0.45);
        assert_eq!(
            kept,
            vec![boxes[1].clone(), boxes[2].clone(), boxes[3].clone()],
            "highest first, the overlapped 0.8 box dropped"
        );
        // Above the overlap, both stay.
        assert_eq!(nms(boxes, 0.7).len(), 4);
    }

    #[test]
    fn anchors_are_laid_out_cell_by_cell() {
        let c = anchor_centres(&[
            AnchorGrid {
                size: 2,
                per_cell: 2,
            },
            AnchorGrid {
                size: 1,
                per_cell: 1,
            },
        ]);
        assert_eq!(
            c,
            vec![
                [0.25, 0.25],
                [0.25, 0.25],
                [0.75, 0.25],
                [0.75, 0.25],
                [0.25, 0.75],
                [0.25, 0.75],
                [0.75, 0.75],
                [0.75, 0.75],
                [0.5, 0.5]
            ]
        );
    }
}

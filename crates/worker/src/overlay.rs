//! The "after" image of a records job's preview: the sampled frame's JPEG with what the model
//! found drawn over it, as an SVG document. Boxes (`detect`) become rectangles with their label
//! and score; top classes (`classify`) and output names and shapes (`tensors`) become lines of
//! text in the top-left corner.
//!
//! SVG rather than pixels drawn into the frame: the browser renders the text, so no font has
//! to be shipped or rasterised here, and the queue's preview row stays as it is (two byte
//! strings and a media type). The document works in the displayed frame's pixels (its
//! `viewBox`), which is where a row's boxes are, and the browser scales it to the preview's
//! size; the JPEG is embedded as a `data:` URI, so the image loads nothing else.
//!
//! Labels come from a user's labels file or model card: every string is escaped for XML
//! (quick-xml's `escape`), stripped of characters XML cannot hold, and shortened, so that no
//! label can end an element or add one. The document has no script and no style sheet (only
//! presentation attributes, which the dashboard's content security policy allows).

use std::fmt::Write as _;

use base64::Engine as _;
use fresco_score::{Class, Detection, Scores, Tensor};

/// The media type of the overlay.
pub const MIME: &str = "image/svg+xml";
/// Boxes drawn at most (the highest scores first, as the rows list them).
pub const MAX_BOXES: usize = 50;
/// Lines of text drawn at most (classes, or output tensors).
pub const MAX_LINES: usize = 8;
/// Characters of a label drawn at most.
pub const MAX_LABEL_CHARS: usize = 48;

/// The box colour, and the dark halo that keeps text readable on any picture.
const INK: &str = "#ffd400";
const HALO: &str = "#000000";

/// An SVG of `jpeg` (the displayed frame, `frame` = its width and height in pixels, scaled down
/// to at most `max_width` wide) with `scores` drawn over it.
pub fn svg(jpeg: &[u8], frame: (u32, u32), max_width: u32, scores: &Scores) -> String {
    let (fw, fh) = (frame.0.max(1), frame.1.max(1));
    let width = fw.min(max_width.max(1));
    let height = ((fh as f64 * width as f64 / fw as f64).round() as u32).max(1);
    // Sizes in frame pixels that come out the same on screen for any frame size.
    let font = (fw.max(fh) as f64 / 40.0).max(6.0);
    let stroke = (fw.max(fh) as f64 / 320.0).max(1.0);
    let mut out = String::with_capacity(jpeg.len() * 4 / 3 + 4096);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {fw} {fh}" font-family="sans-serif">"#
    );
    let _ = write!(
        out,
        r#"<image x="0" y="0" width="{fw}" height="{fh}" preserveAspectRatio="none" href="data:image/jpeg;base64,{}"/>"#,
        base64::engine::general_purpose::STANDARD.encode(jpeg)
    );
    let text_style = format!(
        r#"font-size="{font:.1}" fill="{INK}" stroke="{HALO}" stroke-width="{:.1}" paint-order="stroke""#,
        font / 6.0
    );
    match scores {
        Scores::Detections(found) => {
            draw_boxes(&mut out, found, (fw, fh), font, stroke, &text_style)
        }
        Scores::Classes(classes) => {
            draw_lines(&mut out, classes.iter().map(class_line), font, &text_style)
        }
        Scores::Tensors(tensors) => {
            draw_lines(&mut out, tensors.iter().map(tensor_line), font, &text_style)
        }
    }
    out.push_str("</svg>");
    out
}

fn draw_boxes(
    out: &mut String,
    found: &[Detection],
    (fw, fh): (u32, u32),
    font: f64,
    stroke: f64,
    text_style: &str,
) {
    let drawn: Vec<&Detection> = found
        .iter()
        .filter(|d| d.bbox.iter().all(|v| v.is_finite()))
        .take(MAX_BOXES)
        .collect();
    let clamp = |v: f32, max: u32| (v as f64).clamp(0.0, max as f64);
    let _ = write!(
        out,
        r#"<g fill="none" stroke="{INK}" stroke-width="{stroke:.1}">"#
    );
    for d in &drawn {
        let [x0, y0, x1, y1] = d.bbox;
        let (x0, x1) = (clamp(x0.min(x1), fw), clamp(x0.max(x1), fw));
        let (y0, y1) = (clamp(y0.min(y1), fh), clamp(y0.max(y1), fh));
        let _ = write!(
            out,
            r#"<rect x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}"/>"#,
            x1 - x0,
            y1 - y0
        );
        // Keypoints (BlazeFace's eyes, nose, mouth, ears) as small circles.
        for p in d
            .keypoints
            .iter()
            .filter(|p| p.iter().all(|v| v.is_finite()))
        {
            let _ = write!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="{:.1}"/>"#,
                clamp(p[0], fw),
                clamp(p[1], fh),
                stroke * 2.0
            );
        }
    }
    out.push_str("</g>");
    let _ = write!(out, "<g {text_style}>");
    for d in &drawn {
        let [x0, y0, _, y1] = d.bbox;
        let x = clamp(x0, fw);
        let top = clamp(y0.min(y1), fh);
        // Above the box where there is room, else just inside it.
        let y = if top >= font * 1.1 {
            top - font * 0.25
        } else {
            top + font
        };
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{y:.1}">{}</text>"#,
            text(&format!("{} {:.2}", d.label, d.score))
        );
    }
    out.push_str("</g>");
}

fn draw_lines(out: &mut String, lines: impl Iterator<Item = String>, font: f64, text_style: &str) {
    let _ = write!(out, "<g {text_style}>");
    for (i, line) in lines.take(MAX_LINES).enumerate() {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            font * 0.5,
            font * (1.2 + 1.25 * i as f64),
            text(&line)
        );
    }
    out.push_str("</g>");
}

fn class_line(class: &Class) -> String {
    format!("{} {:.2}", class.label, class.score)
}

fn tensor_line(tensor: &Tensor) -> String {
    let dims: Vec<String> = tensor.shape.iter().map(u64::to_string).collect();
    format!("{} [{}]", tensor.name, dims.join(", "))
}

/// `raw` as XML character data: characters XML 1.0 cannot hold (controls, U+FFFE, U+FFFF)
/// replaced, at most [`MAX_LABEL_CHARS`] characters kept, then `<`, `>`, `&`, `'` and `"`
/// escaped.
fn text(raw: &str) -> String {
    let mut kept: String = raw
        .chars()
        .take(MAX_LABEL_CHARS)
        .map(|c| if allowed_in_xml(c) { c } else { '\u{FFFD}' })
        .collect();
    if raw.chars().nth(MAX_LABEL_CHARS).is_some() {
        kept.push('…');
    }
    quick_xml::escape::escape(kept.as_str()).into_owned()
}

/// XML 1.0's `Char` production, less tab and line ends (a label is drawn on one line).
fn allowed_in_xml(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fresco_testkit::svg::parse;

    fn detection(label: &str, score: f32, bbox: [f32; 4]) -> Detection {
        Detection {
            label: label.into(),
            class: 0,
            score,
            bbox,
            keypoints: Vec::new(),
        }
    }

    #[test]
    fn boxes_are_drawn_in_frame_pixels_and_scaled_by_the_view_box() {
        let scores = Scores::Detections(vec![
            detection("dog", 0.607, [133.0, 189.0, 370.0, 512.0]),
            detection("car", 0.704, [466.0, 71.0, 680.0, 170.0]),
        ]);
        let svg = svg(&[0xFF, 0xD8, 0xFF], (1280, 720), 640, &scores);
        let doc = parse(&svg);
        let root = &doc.elements[0];
        assert_eq!(root.name, "svg");
        assert_eq!(root.get("width"), Some("640"));
        assert_eq!(root.get("height"), Some("360"));
        assert_eq!(root.get("viewBox"), Some("0 0 1280 720"));
        let image = doc.named("image").next().unwrap();
        assert_eq!(image.get("href"), Some("data:image/jpeg;base64,/9j/"));
        assert_eq!(image.get("width"), Some("1280"));
        let rects: Vec<[f64; 4]> = doc
            .named("rect")
            .map(|e| ["x", "y", "width", "height"].map(|k| e.number(k)))
            .collect();
        assert_eq!(
            rects,
            [[133.0, 189.0, 237.0, 323.0], [466.0, 71.0, 214.0, 99.0]]
        );
        assert_eq!(doc.texts, ["dog 0.61", "car 0.70"]);
        assert!(!svg.contains("<script") && !svg.contains("style="), "{svg}");
    }

    #[test]
    fn keypoints_are_small_circles_in_frame_pixels() {
        let mut face = detection("face", 0.9, [10.0, 10.0, 50.0, 50.0]);
        face.keypoints = vec![[20.0, 25.0], [40.0, 25.0], [f32::NAN, 1.0], [500.0, 30.0]];
        let doc = parse(&svg(
            &[1, 2],
            (100, 60),
            640,
            &Scores::Detections(vec![face]),
        ));
        let centres: Vec<[f64; 2]> = doc
            .named("circle")
            .map(|c| [c.number("cx"), c.number("cy")])
            .collect();
        assert_eq!(
            centres,
            [[20.0, 25.0], [40.0, 25.0], [100.0, 30.0]],
            "the NaN point left out, the one past the frame clamped"
        );
    }

    #[test]
    fn hostile_labels_stay_text() {
        let hostile = "</text><script>alert(1)</script><text x=\"0\" onload='x'>&amp;";
        for scores in [
            Scores::Detections(vec![detection(hostile, 0.5, [0.0, 0.0, 10.0, 10.0])]),
            Scores::Classes(vec![Class {
                index: 3,
                label: hostile.into(),
                score: 0.5,
            }]),
            Scores::Tensors(vec![Tensor {
                name: hostile.into(),
                shape: vec![1, 3],
                values: vec![0.0; 3],
            }]),
        ] {
            let svg = svg(&[1, 2, 3], (64, 48), 640, &scores);
            assert!(!svg.contains("<script"), "{svg}");
            assert!(svg.contains("&lt;/text&gt;&lt;script&gt;"), "{svg}");
            let doc = parse(&svg);
            assert!(
                doc.elements
                    .iter()
                    .all(|e| ["svg", "image", "g", "rect", "circle", "text"]
                        .contains(&e.name.as_str())),
                "{doc:?}"
            );
            assert_eq!(doc.texts.len(), 1, "{doc:?}");
            let shown: String = hostile.chars().take(MAX_LABEL_CHARS).collect();
            assert_eq!(doc.texts[0], format!("{shown}…"), "{doc:?}");
        }
    }

    #[test]
    fn characters_xml_cannot_hold_are_replaced_and_long_labels_shortened() {
        assert_eq!(
            text("a\u{0}b\u{1b}c\nd\u{FFFF}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}d\u{FFFD}"
        );
        assert_eq!(text("tabby, tabby cat"), "tabby, tabby cat");
        assert_eq!(text("\"q\" & 'a'"), "&quot;q&quot; &amp; &apos;a&apos;");
        let long = "x".repeat(MAX_LABEL_CHARS + 5);
        assert_eq!(text(&long), format!("{}…", &long[..MAX_LABEL_CHARS]));
        let accents = "é".repeat(MAX_LABEL_CHARS);
        assert_eq!(text(&accents), accents);
        // What a parser reads back is what was drawn.
        let doc = parse(&svg(
            &[0],
            (8, 8),
            640,
            &Scores::Detections(vec![detection("a\u{7}<b>", 1.0, [0.0, 0.0, 1.0, 1.0])]),
        ));
        assert_eq!(doc.texts, ["a\u{FFFD}<b> 1.00"]);
    }

    #[test]
    fn classes_and_tensors_are_lines_in_the_corner() {
        let classes = Scores::Classes(
            (0..12)
                .map(|i| Class {
                    index: i,
                    label: format!("class {i}"),
                    score: 1.0 / (i + 2) as f32,
                })
                .collect(),
        );
        let doc = parse(&svg(&[0], (320, 240), 640, &classes));
        assert_eq!(doc.texts.len(), MAX_LINES);
        assert_eq!(doc.texts[..2], ["class 0 0.50", "class 1 0.33"]);
        assert_eq!(doc.named("rect").count(), 0);
        let tensors = Scores::Tensors(vec![
            Tensor {
                name: "embedding".into(),
                shape: vec![1, 512],
                values: vec![],
            },
            Tensor {
                name: "scores".into(),
                shape: vec![],
                values: vec![0.5],
            },
        ]);
        let doc = parse(&svg(&[0], (320, 240), 640, &tensors));
        assert_eq!(doc.texts, ["embedding [1, 512]", "scores []"]);
    }

    #[test]
    fn boxes_that_are_not_numbers_are_left_out_and_the_rest_clamped() {
        let scores = Scores::Detections(vec![
            detection("nan", 0.9, [f32::NAN, 0.0, 1.0, 1.0]),
            detection("wide", 0.8, [-20.0, 10.0, 500.0, 30.0]),
        ]);
        let doc = parse(&svg(&[0], (320, 240), 640, &scores));
        assert_eq!(doc.texts, ["wide 0.80"]);
        let rects: Vec<[f64; 4]> = doc
            .named("rect")
            .map(|e| ["x", "y", "width", "height"].map(|k| e.number(k)))
            .collect();
        assert_eq!(rects, [[0.0, 10.0, 320.0, 20.0]]);
    }
}

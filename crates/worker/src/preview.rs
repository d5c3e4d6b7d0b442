//! A job's before/after preview: once a chunk of a job is scored, the worker that scored it
//! grabs the chunk's first frame from the input and from the chunk it wrote, each scaled to at
//! most [`MAX_WIDTH`] px wide and encoded as JPEG by ffmpeg, and stores the pair in the queue
//! (the first pair of a job stays). A records job's "before" is the chunk's first sampled frame
//! (a JPEG the same way, grabbed while the chunk is scored) and its "after" that frame with the
//! frame's row drawn over it ([`crate::overlay`], an SVG). The dashboard serves both from the queue, so servers of a
//! cluster need no shared disk. A preview is a nicety: every failure is logged and nothing else.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fresco_core::FrameRange;
use fresco_pipeline::{JobPlan, Tools};
use fresco_queue::{Preview, Queue};

/// The widest a preview image is.
pub const MAX_WIDTH: u32 = 640;
/// The media type of both images of a video job, and of every "before" image.
pub const MIME: &str = "image/jpeg";
/// How long one frame grab may take.
const GRAB_TIMEOUT: Duration = Duration::from_secs(60);

/// Saves the job's preview from this chunk unless the job has one already. Runs on the
/// task's blocking thread (it blocks on the queue through the runtime's handle).
pub(crate) fn save_first(
    tools: &Tools,
    queue: &Arc<dyn Queue>,
    job: &str,
    chunk: u32,
    frames: FrameRange,
    plan: &JobPlan,
    chunk_file: &Path,
) {
    if has_preview(queue, job) {
        return;
    }
    let grabbed = grab_input_frame(tools, plan, frames.start)
        .and_then(|before| Ok((before, grab_first_frame(tools, chunk_file)?)));
    let (before, after) = match grabbed {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(chunk, "could not make the job's preview: {e}");
            return;
        }
    };
    save(
        queue,
        Preview {
            job_id: job.to_string(),
            chunk,
            frame: frames.start,
            mime: MIME.into(),
            before,
            after,
            created_at_ms: fresco_queue::now_ms(),
        },
    );
}

/// A records job's "before" image, grabbed from the input by ffmpeg in a thread of its own
/// while the chunk is scored (the grab would otherwise add its ffmpeg run to the chunk's time).
pub(crate) struct RecordsGrab {
    frame: u64,
    grabbed: std::thread::JoinHandle<Result<Vec<u8>, String>>,
}

/// Starts grabbing frame `frame` (decode order; the chunk's first sampled frame) of the plan's
/// input for the job's preview, unless the job has one already. Runs on the task's blocking
/// thread (it asks the queue through the runtime's handle); the grab stops with the task.
pub(crate) fn start_records_grab(
    tools: &Tools,
    queue: &Arc<dyn Queue>,
    job: &str,
    plan: &JobPlan,
    frame: u64,
) -> Option<RecordsGrab> {
    if has_preview(queue, job) {
        return None;
    }
    let (tools, plan) = (tools.clone(), plan.clone());
    let grabbed = std::thread::spawn(move || grab_input_frame(&tools, &plan, frame));
    Some(RecordsGrab { frame, grabbed })
}

impl RecordsGrab {
    /// Saves the job's preview from the chunk's first row: the grabbed frame, and the same
    /// frame with the row's scores drawn over it.
    pub(crate) fn save(
        self,
        queue: &Arc<dyn Queue>,
        job: &str,
        chunk: u32,
        plan: &JobPlan,
        row: &fresco_score::Record,
    ) {
        let before = match self.grabbed.join() {
            Ok(Ok(jpeg)) => jpeg,
            Ok(Err(e)) => {
                tracing::warn!(chunk, "could not make the job's preview: {e}");
                return;
            }
            Err(_) => {
                tracing::warn!(chunk, "could not make the job's preview: the grab panicked");
                return;
            }
        };
        if row.frame != self.frame {
            tracing::warn!(
                chunk,
                "could not make the job's preview: frame {} was grabbed for a row of frame {}",
                self.frame,
                row.frame
            );
            return;
        }
        save_records(queue, job, chunk, plan, row, before);
    }
}

/// Saves a records job's preview: `before` (the row's frame as a JPEG) and it with the row's
/// scores drawn over it.
fn save_records(
    queue: &Arc<dyn Queue>,
    job: &str,
    chunk: u32,
    plan: &JobPlan,
    row: &fresco_score::Record,
    before: Vec<u8>,
) {
    let frame = (plan.video.width, plan.video.height);
    let after = crate::overlay::svg(&before, frame, MAX_WIDTH, &row.scores).into_bytes();
    save(
        queue,
        Preview {
            job_id: job.to_string(),
            chunk,
            frame: row.frame,
            mime: crate::overlay::MIME.into(),
            before,
            after,
            created_at_ms: fresco_queue::now_ms(),
        },
    );
}

/// Whether the job has a preview already (or the queue cannot say: then none is made).
fn has_preview(queue: &Arc<dyn Queue>, job: &str) -> bool {
    let handle = tokio::runtime::Handle::current();
    match handle.block_on(queue.preview(job)) {
        Ok(found) => found.is_some(),
        Err(e) => {
            tracing::debug!("could not look up the job's preview: {e}");
            true
        }
    }
}

fn save(queue: &Arc<dyn Queue>, preview: Preview) {
    let chunk = preview.chunk;
    let handle = tokio::runtime::Handle::current();
    match handle.block_on(queue.save_preview(&preview)) {
        Ok(true) => {
            metrics::counter!(crate::telemetry::PREVIEWS_SAVED).increment(1);
            tracing::info!(chunk, "saved the job's before/after preview");
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(chunk, "could not save the job's preview: {e}"),
    }
}

/// Frame `index` (decode order) of the plan's input, as a preview JPEG. Found by time (a fast
/// seek, then decoding on to the frame), or by counting frames where timestamps are not
/// increasing.
fn grab_input_frame(tools: &Tools, plan: &JobPlan, index: u64) -> Result<Vec<u8>, String> {
    let pts = &plan.frame_pts;
    let i = usize::try_from(index).map_err(|_| format!("frame {index} is out of range"))?;
    if i >= pts.len() {
        return Err(format!(
            "frame {index} is past the input's {} frames",
            pts.len()
        ));
    }
    let mut args: Vec<std::ffi::OsString> = vec!["-v".into(), "error".into()];
    let filter = if plan.count_frames {
        args.extend(fresco_media::input::input_args(&plan.video.input));
        format!("select=eq(n\\,{i}),{}", scale_filter())
    } else {
        let (num, den) = plan.video.time_base;
        let seconds = |ticks: i64| ticks as f64 * num as f64 / den.max(1) as f64;
        let first = pts.iter().copied().min().unwrap_or(0);
        // Half a frame early, so that rounding never skips the frame itself.
        let half_gap = pts
            .get(i + 1)
            .map(|next| seconds(next - pts[i]) / 2.0)
            .unwrap_or(0.001);
        let at = (seconds(pts[i] - first) - half_gap).max(0.0);
        args.extend(["-ss".into(), format!("{at:.6}").into()]);
        args.extend(fresco_media::input::input_args(&plan.video.input));
        scale_filter()
    };
    args.extend(["-vf".into(), filter.into()]);
    jpeg(tools, args)
}

/// The first frame of a video file, as a preview JPEG.
fn grab_first_frame(tools: &Tools, file: &Path) -> Result<Vec<u8>, String> {
    let mut args: Vec<std::ffi::OsString> = vec!["-v".into(), "error".into()];
    args.extend(fresco_media::input::input_args(file));
    args.extend(["-vf".into(), scale_filter().into()]);
    jpeg(tools, args)
}

/// At most [`MAX_WIDTH`] wide, keeping the aspect ratio (an even height, for JPEG's 4:2:0).
fn scale_filter() -> String {
    format!("scale='min({MAX_WIDTH},iw)':-2")
}

fn jpeg(tools: &Tools, mut args: Vec<std::ffi::OsString>) -> Result<Vec<u8>, String> {
    args.extend(
        [
            "-frames:v",
            "1",
            "-an",
            "-sn",
            "-dn",
            "-pix_fmt",
            "yuvj420p",
            "-q:v",
            "4",
            "-c:v",
            "mjpeg",
            "-f",
            "image2pipe",
            "-",
        ]
        .map(std::ffi::OsString::from),
    );
    let captured = tools
        .ffmpeg
        .output(&args, GRAB_TIMEOUT)
        .map_err(|e| e.to_string())?;
    if captured.stdout.len() < 4 || captured.stdout[..2] != [0xFF, 0xD8] {
        return Err(format!(
            "ffmpeg wrote no JPEG ({} bytes){}",
            captured.stdout.len(),
            if captured.stderr_tail.is_empty() {
                String::new()
            } else {
                format!(": {}", captured.stderr_tail)
            }
        ));
    }
    Ok(captured.stdout)
}

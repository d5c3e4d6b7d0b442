//! Still images go straight through the model with the `image` crate: no ffmpeg, no video
//! machinery. EXIF orientation is applied first, so the styled picture stands the right way up.

use std::path::{Path, PathBuf};
use std::time::Instant;

use fresco_infer::Engine;
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

use crate::error::RunError;
use crate::output::TempOutput;

/// File extensions treated as still images.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp"];

/// True when the path's extension names a still image format.
pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// What styling one image did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageSummary {
    pub input: PathBuf,
    pub output: PathBuf,
    pub width: u32,
    pub height: u32,
    pub seconds: f64,
}

/// Reads an image as upright 8-bit RGB.
pub fn load_rgb(path: &Path) -> Result<RgbImage, RunError> {
    crate::video::check_input_file(path)?;
    let bad = |reason: String| RunError::NotMedia {
        path: path.to_path_buf(),
        reason,
    };
    let reader = ImageReader::open(path).map_err(|e| bad(e.to_string()))?;
    decode_upright(reader).map_err(|e| bad(e.to_string()))
}

/// Why bytes could not be decoded as an image ([`decode_rgb_scaled`]).
#[derive(Debug, thiserror::Error)]
pub enum ImageDecodeError {
    /// Not an image the decoder reads, or one cut short.
    #[error("{0}")]
    NotImage(String),
    /// The header claims more pixels than the decoder's memory limit allows.
    #[error("{0}")]
    TooLarge(String),
}

/// Decodes `reader` upright, within the `image` crate's default allocation limit.
fn decode_upright<R: std::io::BufRead + std::io::Seek>(
    reader: ImageReader<R>,
) -> Result<RgbImage, ImageDecodeError> {
    use ImageDecodeError::{NotImage, TooLarge};
    let reader = reader
        .with_guessed_format()
        .map_err(|e| NotImage(e.to_string()))?;
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| NotImage(format!("not an image we can read: {e}")))?;
    let orientation = decoder.orientation().ok();
    // The allocation limit `ImageReader::decode` applies (512 MiB by default), which going
    // through the decoder (for its orientation) skips: a header that claims 100000 x 100000
    // pixels is refused before its buffer is allocated.
    image::Limits::default()
        .reserve(decoder.total_bytes())
        .map_err(|e| TooLarge(format!("the image is too large to decode: {e}")))?;
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|e| NotImage(format!("the image could not be decoded: {e}")))?;
    if let Some(orientation) = orientation {
        img.apply_orientation(orientation);
    }
    Ok(img.to_rgb8())
}

/// [`load_rgb_scaled`] of an image's bytes already read (an object downloaded, a file a
/// dataset's chunk read): no path, no ffmpeg.
pub fn decode_rgb_scaled(
    bytes: &[u8],
    scaled_size: impl FnOnce(u32, u32) -> (u32, u32),
) -> Result<ScaledImage, ImageDecodeError> {
    let img = decode_upright(ImageReader::new(std::io::Cursor::new(bytes)))?;
    Ok(scale(img, scaled_size))
}

/// Packed RGB24 pixels of `width` x `height` encoded in the format `name`'s extension names
/// (PNG where it names none the `image` crate writes), for an output that is published whole.
pub fn encode_rgb(width: u32, height: u32, rgb: Vec<u8>, name: &str) -> Result<Vec<u8>, String> {
    let img = RgbImage::from_raw(width, height, rgb)
        .ok_or_else(|| format!("{name}: {width}x{height} pixels do not fit the buffer"))?;
    let format = image::ImageFormat::from_path(name).unwrap_or(image::ImageFormat::Png);
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), format)
        .map_err(|e| format!("cannot encode {name} as {format:?}: {e}"))?;
    Ok(bytes)
}

/// About the most [`decode_rgb_scaled`] allocates at once for `bytes`, from the header alone:
/// the decoded picture, its turned copy (EXIF orientation) and its RGB copy. `None` when the
/// header cannot be read, 0 when the decoder's limit will refuse the picture before allocating
/// it; decoding says why in both cases.
pub fn decode_bytes_needed(bytes: &[u8]) -> Option<u64> {
    let reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()?;
    let decoder = reader.into_decoder().ok()?;
    let (width, height) = decoder.dimensions();
    let total = decoder.total_bytes();
    if image::Limits::default().reserve(total).is_err() {
        return Some(0);
    }
    let rgb = u64::from(width) * u64::from(height) * 3;
    Some(total.saturating_mul(2).saturating_add(rgb))
}

/// An image as records scoring takes it: upright (as [`load_rgb`] reads it) and scaled to the
/// size the model's preparation asks for, as ffmpeg scales a video's frames.
#[derive(Debug)]
pub struct ScaledImage {
    /// Packed RGB24 of `scaled`'s size.
    pub rgb: Vec<u8>,
    pub scaled: (u32, u32),
    /// The upright picture's size, which boxes are given in.
    pub displayed: (u32, u32),
}

/// Reads an image upright and scales it to `scaled_size(width, height)` of the upright size
/// (bilinear, like the `scale` of [`crate::records::decode_sampled`]); [`load_rgb`]'s memory
/// limit refuses a picture whose header claims a huge size before its pixels are allocated.
pub fn load_rgb_scaled(
    path: &Path,
    scaled_size: impl FnOnce(u32, u32) -> (u32, u32),
) -> Result<ScaledImage, RunError> {
    Ok(scale(load_rgb(path)?, scaled_size))
}

/// `img` scaled to `scaled_size` of its size (bilinear).
fn scale(img: RgbImage, scaled_size: impl FnOnce(u32, u32) -> (u32, u32)) -> ScaledImage {
    let displayed = img.dimensions();
    let (w, h) = scaled_size(displayed.0, displayed.1);
    let scaled = if (w, h) == displayed {
        img
    } else {
        image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle)
    };
    ScaledImage {
        rgb: scaled.into_raw(),
        scaled: (w, h),
        displayed,
    }
}

/// Styles an RGB image in memory.
pub fn style_rgb_image(
    engine: &mut Engine,
    img: &RgbImage,
    label: &Path,
) -> Result<RgbImage, RunError> {
    let (w, h) = img.dimensions();
    let mut out = vec![0u8; (w * h * 3) as usize];
    engine
        .style_rgb(w, h, img.as_raw(), &mut out)
        .map_err(|e| RunError::Model {
            path: label.to_path_buf(),
            source: e,
        })?;
    Ok(RgbImage::from_raw(w, h, out).expect("buffer has the image's size"))
}

/// Styles one image file into another; the output format follows the output's extension.
pub fn style_image_file(
    engine: &mut Engine,
    input: &Path,
    output: &Path,
    overwrite: bool,
) -> Result<ImageSummary, RunError> {
    let started = Instant::now();
    if !is_image_path(output) {
        return Err(RunError::OutputUnwritable {
            path: output.to_path_buf(),
            reason: format!(
                "an image needs an image output ({})",
                IMAGE_EXTENSIONS.join(", ")
            ),
        });
    }
    let temp = TempOutput::create(output, overwrite)?;
    let img = load_rgb(input)?;
    let styled = style_rgb_image(engine, &img, input)?;
    let format = image::ImageFormat::from_path(output).map_err(|e| RunError::OutputUnwritable {
        path: output.to_path_buf(),
        reason: e.to_string(),
    })?;
    styled
        .save_with_format(temp.path(), format)
        .map_err(|e| RunError::OutputUnwritable {
            path: output.to_path_buf(),
            reason: e.to_string(),
        })?;
    let output = temp.commit()?;
    Ok(ImageSummary {
        input: input.to_path_buf(),
        output,
        width: img.width(),
        height: img.height(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::decode_bytes_needed;

    #[test]
    fn decode_needs_are_read_from_the_header() {
        let mut png = Vec::new();
        image::RgbImage::new(10, 20)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        // The decoded RGB picture, its turned copy and its RGB copy.
        assert_eq!(decode_bytes_needed(&png), Some(3 * 10 * 20 * 3));
        assert_eq!(decode_bytes_needed(b"not an image"), None);
    }
}

//! A minimal NUT muxer: one raw video stream, written to any [`Write`] (in practice the stdin of
//! `ffmpeg -f nut -i pipe:0 ...`).
//!
//! # Why NUT
//!
//! ffmpeg's `rawvideo` demuxer has no timestamps: every frame gets `n / framerate`, so variable
//! frame rate sources (phone video, screen captures, edited material) drift or get frames
//! duplicated/dropped on re-encode. NUT is ffmpeg's own simple container; it carries `rawvideo`
//! with an exact integer pts per frame in any rational time base, and its demuxer reads from a
//! non-seekable pipe. Writing it ourselves takes a few hundred lines and no extra dependency.
//!
//! # What is written
//!
//! File id string, main header, one stream header, then for every frame a syncpoint followed by
//! the frame. Every frame is a keyframe with a fully coded pts, an explicit size and a frame
//! header checksum, so ffmpeg's size/pts-distance rules never apply and any pts jump is fine.
//! No info packets and no index (the output is a pipe). Layout follows the NUT spec (version 3,
//! as ffmpeg writes by default) and was checked against ffmpeg 5.1's `libavformat/nutdec.c`:
//! varints `v`, big-endian checksums (CRC-32, polynomial 0x04C11DB7, initial value 0, no
//! reflection, no final xor), and the extra header checksum for packets whose `forward_ptr`
//! exceeds 4096.
//!
//! Frame data is never copied: header bytes go out in one small write, the caller's slice in
//! another. Wrap the writer in a `BufWriter` if it is unbuffered and frames are tiny.

use std::io::{self, Write};

/// `file_id_string`, including its terminating NUL.
const ID_STRING: &[u8] = b"nut/multimedia container\0";
const MAIN_STARTCODE: u64 = 0x4E4D_7A56_1F5F_04AD;
const STREAM_STARTCODE: u64 = 0x4E53_1140_5BF2_F9DB;
const SYNCPOINT_STARTCODE: u64 = 0x4E4B_E4AD_EECA_4569;

/// NUT version 3: the stable one; 4 adds main flags and side data we do not need.
const NUT_VERSION: u64 = 3;
/// Most bytes between two startcodes, unless one frame alone spans them (ours always does).
const MAX_DISTANCE: u64 = 32_768;
/// Only matters for lsb-coded pts; we always code the full pts (`pts + 2^shift`).
const MSB_PTS_SHIFT: u32 = 7;
/// A packet whose `forward_ptr` exceeds this also carries a header checksum.
const HEADER_CHECKSUM_THRESHOLD: u64 = 4096;

const FLAG_KEY: u64 = 1;
const FLAG_CODED_PTS: u64 = 8;
const FLAG_SIZE_MSB: u64 = 32;
const FLAG_CHECKSUM: u64 = 64;
const FLAG_INVALID: u64 = 8192;
/// The one frame code we define (every other code is invalid): stream 0, keyframe, coded pts,
/// size = `data_size_msb` (size_mul 1, size_lsb 0), header checksum present.
const FRAME_CODE: u8 = 1;
const FRAME_FLAGS: u64 = FLAG_KEY | FLAG_CODED_PTS | FLAG_SIZE_MSB | FLAG_CHECKSUM;

/// Packed RGB layouts the writer can carry as NUT `rawvideo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RawPixelFormat {
    /// 8 bits per channel, R G B: 3 bytes per pixel.
    Rgb24,
    /// 16 bits per channel, little endian, R G B: 6 bytes per pixel.
    Rgb48le,
}

impl RawPixelFormat {
    /// Bytes one pixel takes (3 or 6).
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            RawPixelFormat::Rgb24 => 3,
            RawPixelFormat::Rgb48le => 6,
        }
    }

    /// ffmpeg's name for the format (`-pix_fmt` value).
    pub fn ffmpeg_name(self) -> &'static str {
        match self {
            RawPixelFormat::Rgb24 => "rgb24",
            RawPixelFormat::Rgb48le => "rgb48le",
        }
    }

    /// The fourcc, as stored in the stream header: ffmpeg maps `RGB\x18` / `RGB\x30` to
    /// `rawvideo` (`ff_nut_video_tags`) and its raw decoder maps the same tags to
    /// rgb24 / rgb48le (`ff_raw_pix_fmt_tags`).
    fn fourcc(self) -> [u8; 4] {
        match self {
            RawPixelFormat::Rgb24 => *b"RGB\x18",
            RawPixelFormat::Rgb48le => *b"RGB\x30",
        }
    }
}

/// The single video stream of a NUT file: size, pixel layout and time base (`num/den` seconds
/// per pts tick, e.g. 1/90000 or 1001/30000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NutVideoSpec {
    /// Frame width in pixels (> 0).
    pub width: u32,
    /// Frame height in pixels (> 0).
    pub height: u32,
    /// Layout of every frame's bytes.
    pub pix_fmt: RawPixelFormat,
    /// Time base numerator (> 0).
    pub time_base_num: u64,
    /// Time base denominator (> 0).
    pub time_base_den: u64,
}

impl NutVideoSpec {
    /// Exact byte length of one frame: `width * height * bytes_per_pixel`, rows unpadded.
    pub fn frame_bytes(&self) -> usize {
        self.width as usize * self.height as usize * self.pix_fmt.bytes_per_pixel()
    }
}

/// Writes raw video frames with exact timestamps as a NUT stream.
///
/// After an I/O error the stream is in an unknown state and should be abandoned.
pub struct NutWriter<W: Write> {
    out: W,
    frame_bytes: usize,
    last_pts: Option<i64>,
    /// Bytes written so far, for syncpoint back pointers.
    pos: u64,
    last_syncpoint_pos: Option<u64>,
    /// Reused buffer for the syncpoint and frame header bytes.
    scratch: Vec<u8>,
}

impl<W: Write> NutWriter<W> {
    /// Writes the file id string, main header and the one stream header.
    ///
    /// Fails with `InvalidInput` for a zero width or height, or a time base with a zero term or
    /// a term that is not below 2^31 once reduced (the limit of ffmpeg's demuxer).
    pub fn new(mut out: W, spec: NutVideoSpec) -> io::Result<Self> {
        if spec.width == 0 || spec.height == 0 {
            return Err(invalid(format!(
                "frame size {}x{} is empty",
                spec.width, spec.height
            )));
        }
        let (num, den) = (spec.time_base_num, spec.time_base_den);
        if num == 0 || den == 0 {
            return Err(invalid(format!("time base {num}/{den} has a zero term")));
        }
        // The demuxer requires coprime terms; reducing keeps the same rational, so pts keep
        // their meaning.
        let g = gcd(num, den);
        let (num, den) = (num / g, den / g);
        if num >= 1 << 31 || den >= 1 << 31 {
            return Err(invalid(format!(
                "time base {num}/{den} does not fit NUT (terms < 2^31)"
            )));
        }

        let mut head = ID_STRING.to_vec();
        let mut p = Vec::with_capacity(64);

        put_v(&mut p, NUT_VERSION);
        put_v(&mut p, 1); // stream_count
        put_v(&mut p, MAX_DISTANCE);
        put_v(&mut p, 1); // time_base_count
        put_v(&mut p, num);
        put_v(&mut p, den);
        // Frame code table as runs of (flags, field count, fields...). With fewer than 6 fields
        // a run covers size_mul - size_lsb = 1 code; code 'N' (0x4E) is skipped implicitly.
        put_v(&mut p, FLAG_INVALID); // code 0
        put_v(&mut p, 0);
        put_v(&mut p, FRAME_FLAGS); // code 1: pts_delta 0, size_mul 1, stream 0, size_lsb 0
        put_v(&mut p, 0);
        put_v(&mut p, FLAG_INVALID); // codes 2..=255 except 'N': 253 codes
        put_v(&mut p, 6);
        for field in [0, 1, 0, 0, 0, 253] {
            // pts_delta (s, 0 codes as v 0), size_mul, stream_id, size_lsb, reserved, count
            put_v(&mut p, field);
        }
        put_v(&mut p, 0); // header_count_minus1: no elision headers
        put_packet(&mut head, MAIN_STARTCODE, &p);

        p.clear();
        put_v(&mut p, 0); // stream_id
        put_v(&mut p, 0); // stream_class: video
        put_v(&mut p, 4); // fourcc length
        p.extend_from_slice(&spec.pix_fmt.fourcc());
        put_v(&mut p, 0); // time_base_id
        put_v(&mut p, MSB_PTS_SHIFT.into());
        put_v(&mut p, (den / num).max(1)); // max_pts_distance: one second
        put_v(&mut p, 0); // decode_delay
        put_v(&mut p, 0); // stream_flags
        put_v(&mut p, 0); // codec_specific_data: empty
        put_v(&mut p, spec.width.into());
        put_v(&mut p, spec.height.into());
        put_v(&mut p, 0); // sample_width: 0/0 = aspect unknown, left to the encode command
        put_v(&mut p, 0); // sample_height
        put_v(&mut p, 0); // colorspace_type: unknown
        put_packet(&mut head, STREAM_STARTCODE, &p);

        out.write_all(&head)?;
        Ok(NutWriter {
            out,
            frame_bytes: spec.frame_bytes(),
            last_pts: None,
            pos: head.len() as u64,
            last_syncpoint_pos: None,
            scratch: Vec::with_capacity(64),
        })
    }

    /// One frame; every frame is a keyframe. pts in the spec's time base, strictly increasing
    /// (return io::ErrorKind::InvalidInput otherwise, and if data.len() != frame_bytes()).
    ///
    /// NUT timestamps are unsigned, so a negative pts is rejected the same way. A rejected
    /// call writes nothing.
    pub fn write_frame(&mut self, pts: i64, data: &[u8]) -> io::Result<()> {
        if data.len() != self.frame_bytes {
            return Err(invalid(format!(
                "frame has {} bytes, expected {}",
                data.len(),
                self.frame_bytes
            )));
        }
        if pts < 0 {
            return Err(invalid(format!(
                "pts {pts} is negative; NUT timestamps are unsigned"
            )));
        }
        if let Some(last) = self.last_pts {
            if pts <= last {
                return Err(invalid(format!(
                    "pts {pts} does not follow previous pts {last}"
                )));
            }
        }

        // Syncpoint: global_key_pts (one time base, so the pts itself) and a back pointer to the
        // previous syncpoint, whose keyframe is the last one at or before this pts.
        let sp_pos = self.pos;
        let back_ptr_div16 = self
            .last_syncpoint_pos
            .map_or(0, |prev| (sp_pos - prev) >> 4);
        let mut sp = [0u8; 20];
        let mut sp_len = encode_v(pts as u64, &mut sp);
        sp_len += encode_v(back_ptr_div16, &mut sp[sp_len..]);
        self.scratch.clear();
        put_packet(&mut self.scratch, SYNCPOINT_STARTCODE, &sp[..sp_len]);

        // Frame header: code, coded_pts (>= 2^shift means "full pts + 2^shift"), data size,
        // then the checksum of the header bytes.
        let header_start = self.scratch.len();
        self.scratch.push(FRAME_CODE);
        put_v(&mut self.scratch, pts as u64 + (1 << MSB_PTS_SHIFT));
        put_v(&mut self.scratch, data.len() as u64);
        let checksum = crc32(&self.scratch[header_start..]);
        self.scratch.extend_from_slice(&checksum.to_be_bytes());

        self.out.write_all(&self.scratch)?;
        self.out.write_all(data)?;
        self.pos += (self.scratch.len() + data.len()) as u64;
        self.last_syncpoint_pos = Some(sp_pos);
        self.last_pts = Some(pts);
        Ok(())
    }

    /// Flushes and returns the inner writer (no index needed: output is a pipe).
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Encodes `value` as a NUT `v` (7 bits per byte, most significant group first, high bit set on
/// all but the last byte) into `buf`, returning the length (1..=10).
fn encode_v(value: u64, buf: &mut [u8]) -> usize {
    let groups = ((64 - value.leading_zeros()).max(1) as usize).div_ceil(7);
    for (i, byte) in buf[..groups].iter_mut().enumerate() {
        let shift = 7 * (groups - 1 - i);
        let more = if i + 1 < groups { 0x80 } else { 0 };
        *byte = ((value >> shift) & 0x7F) as u8 | more;
    }
    groups
}

fn put_v(out: &mut Vec<u8>, value: u64) {
    let mut buf = [0u8; 10];
    let n = encode_v(value, &mut buf);
    out.extend_from_slice(&buf[..n]);
}

/// Appends one packet: startcode, `forward_ptr` (payload + its checksum), a header checksum
/// when `forward_ptr` > 4096, the payload and the payload's checksum.
fn put_packet(out: &mut Vec<u8>, startcode: u64, payload: &[u8]) {
    let start = out.len();
    let forward_ptr = payload.len() as u64 + 4;
    out.extend_from_slice(&startcode.to_be_bytes());
    put_v(out, forward_ptr);
    if forward_ptr > HEADER_CHECKSUM_THRESHOLD {
        let header_checksum = crc32(&out[start..]);
        out.extend_from_slice(&header_checksum.to_be_bytes());
    }
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32(payload).to_be_bytes());
}

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04C1_1DB7
            } else {
                c << 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// NUT's checksum: CRC-32, polynomial 0x04C11DB7, MSB first, initial value 0, no final xor.
fn crc32(data: &[u8]) -> u32 {
    data.iter().fold(0u32, |crc, &b| {
        (crc << 8) ^ CRC_TABLE[((crc >> 24) as u8 ^ b) as usize]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_v(&mut out, value);
        out
    }

    fn spec(width: u32, height: u32) -> NutVideoSpec {
        NutVideoSpec {
            width,
            height,
            pix_fmt: RawPixelFormat::Rgb24,
            time_base_num: 1,
            time_base_den: 90_000,
        }
    }

    #[test]
    fn varints_use_seven_bits_per_byte_msb_first() {
        assert_eq!(v(0), [0x00]);
        assert_eq!(v(127), [0x7F]);
        assert_eq!(v(128), [0x81, 0x00]);
        assert_eq!(v(16_383), [0xFF, 0x7F]);
        assert_eq!(v(16_384), [0x81, 0x80, 0x00]);
        assert_eq!(v(0x1234_5678), [0x81, 0x91, 0xD1, 0xAC, 0x78]);
        let max = v(u64::MAX);
        assert_eq!(max.len(), 10);
        assert_eq!(max[0], 0x81);
        assert!(max[1..9].iter().all(|&b| b == 0xFF));
        assert_eq!(max[9], 0x7F);
    }

    #[test]
    fn crc_matches_the_reference_vector_and_self_checks() {
        // CRC-32/POSIX without its final inversion: !0x765E7680.
        assert_eq!(crc32(b"123456789"), 0x89A1_897F);
        assert_eq!(crc32(&[]), 0);
        assert_eq!(crc32(&[0x01]), 0x04C1_1DB7);
        // Data followed by its big-endian checksum sums to zero: what ffmpeg's reader checks.
        let mut data = b"nut checksum".to_vec();
        data.extend_from_slice(&crc32(&data).to_be_bytes());
        assert_eq!(crc32(&data), 0);
    }

    #[test]
    fn large_packets_carry_a_header_checksum() {
        let payload = vec![0xA5u8; 5000];
        let mut out = Vec::new();
        put_packet(&mut out, SYNCPOINT_STARTCODE, &payload);
        let fwd = v(5004);
        assert_eq!(&out[..8], &SYNCPOINT_STARTCODE.to_be_bytes());
        assert_eq!(&out[8..8 + fwd.len()], &fwd[..]);
        let header_end = 8 + fwd.len() + 4;
        assert_eq!(crc32(&out[..header_end]), 0, "header checksum");
        assert_eq!(&out[header_end..header_end + 5000], &payload[..]);
        assert_eq!(crc32(&out[header_end..]), 0, "payload checksum");
        assert_eq!(out.len(), header_end + 5004);

        // At exactly 4096 there is no header checksum.
        let mut small = Vec::new();
        put_packet(&mut small, SYNCPOINT_STARTCODE, &[0u8; 4092]);
        assert_eq!(small.len(), 8 + v(4096).len() + 4096);
    }

    #[test]
    fn frames_are_syncpoint_header_checksum_then_the_data() {
        let mut w = NutWriter::new(Vec::new(), spec(2, 1)).unwrap();
        let header_len = w.pos as usize;
        w.write_frame(300, &[1, 2, 3, 4, 5, 6]).unwrap();
        let out = w.finish().unwrap();
        assert!(out.starts_with(ID_STRING));
        let frame = &out[header_len..];
        assert_eq!(&frame[..8], &SYNCPOINT_STARTCODE.to_be_bytes());
        // forward_ptr 7: global_key_pts 300 (2 bytes), back_ptr 0, checksum.
        assert_eq!(frame[8], 7);
        assert_eq!(&frame[9..12], &[0x82, 0x2C, 0x00]);
        assert_eq!(crc32(&frame[9..16]), 0);
        // Frame: code 1, coded_pts 300 + 128, size 6, checksum, data.
        assert_eq!(&frame[16..20], &[FRAME_CODE, 0x83, 0x2C, 6]);
        assert_eq!(crc32(&frame[16..24]), 0);
        assert_eq!(&frame[24..], &[1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn bad_pts_and_sizes_are_rejected_without_writing() {
        let mut w = NutWriter::new(Vec::new(), spec(3, 2)).unwrap();
        let frame = [7u8; 18];
        w.write_frame(10, &frame).unwrap();
        let written = w.pos;
        for (pts, data) in [
            (10, &frame[..]),
            (9, &frame[..]),
            (11, &frame[..17]),
            (11, &[][..]),
        ] {
            let err = w.write_frame(pts, data).unwrap_err();
            assert_eq!(
                err.kind(),
                io::ErrorKind::InvalidInput,
                "pts {pts} len {}",
                data.len()
            );
        }
        let mut fresh = NutWriter::new(Vec::new(), spec(3, 2)).unwrap();
        assert_eq!(
            fresh.write_frame(-1, &frame).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        w.write_frame(11, &frame).unwrap();
        let out = w.finish().unwrap();
        assert!(out.len() as u64 > written);
        assert_eq!(&out[out.len() - 18..], &frame);
    }

    #[test]
    fn bad_specs_are_rejected() {
        let bad = [
            NutVideoSpec {
                width: 0,
                ..spec(1, 1)
            },
            NutVideoSpec {
                height: 0,
                ..spec(1, 1)
            },
            NutVideoSpec {
                time_base_num: 0,
                ..spec(1, 1)
            },
            NutVideoSpec {
                time_base_den: 0,
                ..spec(1, 1)
            },
            NutVideoSpec {
                time_base_den: 1 << 31,
                ..spec(1, 1)
            },
        ];
        for s in bad {
            let err = NutWriter::new(Vec::new(), s).err().expect("rejected");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{s:?}");
        }
        // Reducible time bases are accepted (2/180000 == 1/90000).
        let s = NutVideoSpec {
            time_base_num: 2,
            time_base_den: 180_000,
            ..spec(1, 1)
        };
        assert!(NutWriter::new(Vec::new(), s).is_ok());
    }

    #[test]
    fn pixel_formats() {
        assert_eq!(RawPixelFormat::Rgb24.bytes_per_pixel(), 3);
        assert_eq!(RawPixelFormat::Rgb48le.bytes_per_pixel(), 6);
        assert_eq!(RawPixelFormat::Rgb24.ffmpeg_name(), "rgb24");
        assert_eq!(RawPixelFormat::Rgb48le.ffmpeg_name(), "rgb48le");
        let s = NutVideoSpec {
            pix_fmt: RawPixelFormat::Rgb48le,
            ..spec(33, 17)
        };
        assert_eq!(s.frame_bytes(), 33 * 17 * 6);
    }
}

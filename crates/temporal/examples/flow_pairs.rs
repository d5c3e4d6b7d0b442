//! Reads packed RGB frames of WIDTHxHEIGHT from stdin and writes the flow between each
//! consecutive pair to stdout (little-endian f32, u and v interleaved per pixel, row-major),
//! then the mean time of one flow on stderr: what bench/flow_validate.py compares with
//! OpenCV's flows and times. `cargo run --release -p fresco-temporal --example flow_pairs -- W H`.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use fresco_temporal::{dense_flow, FlowSettings, Plane};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("WIDTH HEIGHT"))
        .collect();
    let [width, height] = args[..] else {
        panic!("usage: flow_pairs WIDTH HEIGHT < frames.rgb > flows.f32");
    };
    let settings = FlowSettings::default();
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut frame = vec![0u8; width * height * 3];
    let mut previous: Option<Plane> = None;
    let (mut spent, mut flows) = (Duration::ZERO, 0u32);
    while stdin.read_exact(&mut frame).is_ok() {
        let current = Plane::luma(&frame, width, height);
        if let Some(previous) = &previous {
            let start = Instant::now();
            let flow = dense_flow(previous, &current, &settings);
            spent += start.elapsed();
            flows += 1;
            for (u, v) in flow.u.data.iter().zip(&flow.v.data) {
                stdout.write_all(&u.to_le_bytes()).expect("stdout");
                stdout.write_all(&v.to_le_bytes()).expect("stdout");
            }
        }
        previous = Some(current);
    }
    stdout.flush().expect("stdout");
    if flows > 0 {
        eprintln!(
            "{flows} flows at {width}x{height}: {:.1} ms each (one core)",
            spent.as_secs_f64() * 1000.0 / flows as f64
        );
    }
}

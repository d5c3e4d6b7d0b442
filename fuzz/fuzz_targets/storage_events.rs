//! Storage event bodies: Event Grid deliveries (`POST /v1/events/azure`) and SNS or
//! EventBridge messages (`POST /v1/events/s3`). Nothing may panic.
#![no_main]

use fresco_wire::events::{parse_event_grid, parse_s3};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = parse_event_grid(&value);
    let _ = parse_s3(&value);
});

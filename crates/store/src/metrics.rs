//! Bytes moved to and from stores, through the `metrics` facade
//! (`fresco_storage_read_bytes_total` and `fresco_storage_written_bytes_total`, by backend:
//! `local`, `azure` or `s3`; bounded, never the URL).

pub const READ_BYTES: &str = "fresco_storage_read_bytes_total";
pub const WRITTEN_BYTES: &str = "fresco_storage_written_bytes_total";

/// Registers the help texts with the installed recorder.
pub fn describe_metrics() {
    use metrics::{describe_counter, Unit};
    describe_counter!(
        READ_BYTES,
        Unit::Bytes,
        "Bytes read from stores (downloads and reads), by backend."
    );
    describe_counter!(
        WRITTEN_BYTES,
        Unit::Bytes,
        "Bytes written to stores (uploads and puts), by backend."
    );
}

/// Both families at zero for every backend, so that they exist from the first scrape.
pub fn zero_metrics() {
    for backend in ["local", "azure", "s3"] {
        metrics::counter!(READ_BYTES, "backend" => backend).increment(0);
        metrics::counter!(WRITTEN_BYTES, "backend" => backend).increment(0);
    }
}

/// The backend label of a store, from how it is displayed (its URL or folder).
fn backend(display: &str) -> &'static str {
    if display.starts_with("az://") || display.starts_with("azure://") {
        "azure"
    } else if display.starts_with("s3://") {
        "s3"
    } else {
        "local"
    }
}

pub(crate) fn read(display: &str, bytes: u64) {
    metrics::counter!(READ_BYTES, "backend" => backend(display)).increment(bytes);
}

pub(crate) fn written(display: &str, bytes: u64) {
    metrics::counter!(WRITTEN_BYTES, "backend" => backend(display)).increment(bytes);
}

#[cfg(test)]
mod tests {
    #[test]
    fn backends_are_named_by_scheme() {
        assert_eq!(super::backend("az://c/p"), "azure");
        assert_eq!(super::backend("s3://b/k"), "s3");
        assert_eq!(super::backend("/data/in"), "local");
        assert_eq!(super::backend("file:///data"), "local");
    }
}

//! Logging: `tracing` events to stderr, as human-readable text (coloured on a terminal) or as
//! JSON lines (`--log-format json`, one object per line, with the fields of the current span:
//! a worker's task span carries `job_id` and `chunk`, so every line logged while doing a task
//! names them). `FRESCO_LOG` sets the filter.
//!
//! With the cargo feature `otel`, spans are also exported by OTLP over HTTP to the collector
//! that `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) names, when one
//! is named; without it nothing is exported.

use std::io::IsTerminal as _;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Keeps the exporters alive; dropping it flushes what they hold.
pub struct Logging {
    #[cfg(feature = "otel")]
    otel: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Logging {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.otel.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("warning: could not flush the OpenTelemetry exporter: {e}");
            }
        }
    }
}

/// The format [`init`] installed.
static FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// Prints a line that must reach stderr whatever the log filter (the address a server listens
/// on, the final error): as is in text logs, as a JSON object in JSON logs, so that every line
/// of a JSON log parses.
pub fn announce(level: &str, line: &str) {
    match FORMAT.get() {
        Some(LogFormat::Json) => {
            let object = serde_json::json!({
                "timestamp": humantime::format_rfc3339_micros(std::time::SystemTime::now())
                    .to_string(),
                "level": level,
                "message": line,
                "target": "fresco",
            });
            eprintln!("{object}");
        }
        Some(LogFormat::Text) | None => eprintln!("{line}"),
    }
}

/// Installs the global subscriber: `FRESCO_LOG`'s filter (else `default_filter`), written in
/// `format` to stderr.
pub fn init(format: LogFormat, default_filter: &str) -> Logging {
    let _ = FORMAT.set(format);
    let filter =
        EnvFilter::try_from_env("FRESCO_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let lines = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(lines);
    #[cfg(feature = "otel")]
    {
        let (layer, provider) = otel::layer();
        registry.with(layer).init();
        Logging { otel: provider }
    }
    #[cfg(not(feature = "otel"))]
    {
        registry.init();
        Logging {}
    }
}

#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::Layer;

    /// An OTLP/HTTP exporter of spans, when a collector is configured.
    pub fn layer<S>() -> (
        Option<Box<dyn Layer<S> + Send + Sync>>,
        Option<SdkTracerProvider>,
    )
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let configured = [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
        if !configured {
            return (None, None);
        }
        let exporter = match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build()
        {
            Ok(exporter) => exporter,
            Err(e) => {
                eprintln!("warning: OpenTelemetry export is off: {e}");
                return (None, None);
            }
        };
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name("fresco")
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("fresco");
        let layer = tracing_opentelemetry::layer().with_tracer(tracer).boxed();
        (Some(layer), Some(provider))
    }
}

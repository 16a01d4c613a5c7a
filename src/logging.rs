//! The log filter: `RUST_LOG` (default `shopkeep=info,warn`), with the libraries that can
//! print the bot token or message bodies held below `debug` whatever it asks for.
//!
//! At `trace`, tungstenite prints every WebSocket frame it sends (the IDENTIFY frame
//! carries the token) and receives (customers' messages); the HTTP stack prints
//! requests. Those targets are capped at `info`, so no log level shows the token.

use tracing_subscriber::filter::{Directive, EnvFilter};

/// Targets capped at `info` whatever `RUST_LOG` says.
pub const CAPPED_TARGETS: [&str; 8] = [
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "reqwest",
    "h2",
    "rustls",
    "async_tungstenite",
];

/// The filter for `rust_log` (the value of `RUST_LOG`, if set), with [`CAPPED_TARGETS`]
/// at `info` at most. A `RUST_LOG` that does not parse falls back to the default.
pub fn filter(rust_log: Option<&str>) -> EnvFilter {
    let mut filter = rust_log
        .and_then(|value| EnvFilter::try_new(value).ok())
        .unwrap_or_else(|| EnvFilter::new("shopkeep=info,warn"));
    for target in CAPPED_TARGETS {
        if let Ok(directive) = format!("{target}=info").parse::<Directive>() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_everywhere_still_caps_the_websocket_and_http_libraries() {
        for rust_log in [
            "trace",
            "tungstenite=trace,trace",
            "debug,tokio_tungstenite=trace",
        ] {
            let filter = filter(Some(rust_log)).to_string();
            for target in CAPPED_TARGETS {
                assert!(
                    filter.contains(&format!("{target}=info")),
                    "{rust_log}: {filter}"
                );
                assert!(
                    !filter.contains(&format!("{target}=trace")),
                    "{rust_log}: {filter}"
                );
            }
        }
        assert!(filter(None).to_string().contains("shopkeep=info"));
    }
}

//! `-v` / `-vv` / `-vvv`: what the run logs on stderr, set up once at start. Only this crate's own
//! events are shown (never those of the HTTP libraries, which could show headers): `-v` each
//! request (method, path with personal query values masked, status, time, attempt) and each retry
//! decision with its reason, `-vv` the bodies' sizes too, `-vvv` everything the crate traces.
//! Without `-v` only warnings print. Nothing logged ever holds the token.
use tracing::Level;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;

/// The most detailed level shown for `-v` repeated `verbose` times (`-q` shows errors only).
pub fn level(verbose: u8, quiet: bool) -> Level {
    match (quiet, verbose) {
        (true, 0) => Level::ERROR,
        (_, 0) => Level::WARN,
        (_, 1) => Level::INFO,
        (_, 2) => Level::DEBUG,
        _ => Level::TRACE,
    }
}

/// Install the stderr logger (once; later calls do nothing).
pub fn init(verbose: u8, quiet: bool) {
    let max = LevelFilter::from_level(level(verbose, quiet));
    let ours = filter_fn(move |meta| {
        meta.target().starts_with("doto_bulk") && LevelFilter::from_level(*meta.level()) <= max
    });
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(ours);
    let subscriber = tracing_subscriber::registry().with(layer);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

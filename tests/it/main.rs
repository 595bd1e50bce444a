//! One integration-test binary; each module builds its own world (a sandbox on port 0, a temp dir).
mod cli;
mod client;
mod export;
mod fields;
mod import;
mod mapping;
mod mapping_init;
mod normalise;
mod props;
mod revert;
mod samples;
mod samples_import;
mod sandbox;
mod source;
mod validate;

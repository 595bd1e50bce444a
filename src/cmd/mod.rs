//! One file per command: orchestration only; the work is done by the library modules.
pub mod connect;
pub mod export;
pub mod import;
pub mod mapping;
pub mod revert;
pub mod sandbox;
pub mod validate;

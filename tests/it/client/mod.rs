//! The API client (`src/api`): against a scripted server that plays one quirk at a time
//! (`quirks`), and against the sandbox emulator (`sandbox`).
mod quirks;
mod sandbox;

//! The binary's top level: help and usage errors.
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
}

#[test]
fn help_lists_every_command() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for c in [
        "validate", "import", "export", "revert", "mapping", "sandbox",
    ] {
        assert!(text.contains(c), "--help does not mention {c}:\n{text}");
    }
}

#[test]
fn unknown_flag_is_a_usage_error_with_exit_code_2() {
    let out = bin().args(["validate", "--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

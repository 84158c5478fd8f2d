//! The binary's command line. (Being an integration test of this package, it also makes `cargo test`
//! build the `latchkey-permissions` binary that the workspace's black-box tests start.)

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey-permissions"))
        .args(args)
        .env_remove("LATCHKEY_PERMISSIONS_CONFIG")
        .output()
        .expect("run latchkey-permissions");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn help_and_version_are_answered_not_read_as_a_file_name() {
    for flag in ["--help", "-h"] {
        let (code, out, _) = run(&[flag]);
        assert_eq!(code, 0, "{flag}");
        assert!(out.starts_with("usage: latchkey-permissions CONFIG.toml"), "{flag}: {out}");
    }
    for flag in ["--version", "-V"] {
        let (code, out, _) = run(&[flag]);
        assert_eq!((code, out.trim()), (0, concat!("latchkey-permissions ", env!("CARGO_PKG_VERSION"))), "{flag}");
    }
}

#[test]
fn a_bad_command_line_is_a_usage_error() {
    for args in [&[][..], &["--frobnicate"], &["a.toml", "b.toml"]] {
        let (code, out, err) = run(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty() && err.contains("usage: latchkey-permissions"), "{args:?}: {err}");
    }
    let (code, _, err) = run(&["/nonexistent/permissions.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("configuration /nonexistent/permissions.toml"), "{err}");
}

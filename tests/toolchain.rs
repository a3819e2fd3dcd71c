//! `rust-version` in Cargo.toml is what the locked dependencies need, no less (a build on an
//! older toolchain would fail inside a dependency, far from the cause) and no more (a newcomer
//! would be told to upgrade for nothing). The Dockerfile's pinned Rust image follows it.
//!
//! Reads `cargo metadata` for this machine's platform, as the build resolves it: every
//! package of the lock that the build and the tests use, with its own `rust-version`.

use std::process::Command;

use serde_json::Value;

fn version(text: &str) -> Vec<u64> {
    let mut parts: Vec<u64> = text
        .split('.')
        .map(|p| {
            p.parse()
                .unwrap_or_else(|_| panic!("{text:?} is not a version"))
        })
        .collect();
    parts.resize(3, 0);
    parts
}

fn cargo(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn host() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let out = Command::new(rustc).arg("-vV").output().expect("rustc runs");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_string()
}

#[test]
fn rust_version_is_what_the_locked_dependencies_need() {
    let host = host();
    let metadata: Value = serde_json::from_str(&cargo(&[
        "metadata",
        "--format-version",
        "1",
        "--locked",
        "--offline",
        "--filter-platform",
        &host,
    ]))
    .expect("cargo metadata prints JSON");
    let used: std::collections::HashSet<&str> = metadata["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    let mut ours = None;
    let mut needed: Option<(Vec<u64>, String)> = None;
    for package in metadata["packages"].as_array().expect("packages") {
        let id = package["id"].as_str().unwrap_or_default();
        let Some(rust_version) = package["rust_version"].as_str() else {
            continue;
        };
        if package["name"] == "otk-mock" {
            ours = Some(version(rust_version));
        } else if used.contains(id) {
            let v = version(rust_version);
            if needed.as_ref().is_none_or(|(n, _)| v > *n) {
                let name = format!("{} {}", package["name"], package["version"]);
                needed = Some((v, name));
            }
        }
    }
    let ours = ours.expect("Cargo.toml sets rust-version");
    let (needed, by) = needed.expect("some dependency sets rust-version");
    assert_eq!(
        ours, needed,
        "Cargo.toml's rust-version is {ours:?}, but the lock needs {needed:?} (for {by}): set \
         rust-version to it, and the Dockerfile's rust image tag with it"
    );

    // The Dockerfile's build stage uses that version.
    let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile"))
        .expect("the Dockerfile");
    let tag = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .and_then(|rest| rest.split('-').next())
        .expect("the Dockerfile builds FROM rust:<version>-...");
    assert_eq!(
        version(tag),
        needed,
        "the Dockerfile's rust:{tag} image is not the rust-version the lock needs"
    );
}

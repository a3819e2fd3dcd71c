//! Compiles the bundled catalogue (`scenarios/`, `families/`, `templates/`) into the binary, so that
//! `otk-mock serve` works from any directory and from a container without the source tree.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn table(name: &str, root: &Path, keep: impl Fn(&Path) -> bool) -> String {
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(root, &mut files);
    files.retain(|p| keep(p));
    files.sort();
    let mut code = format!("pub static {name}: &[(&str, &str)] = &[\n");
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let _ = writeln!(
            code,
            "    ({relative:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    code.push_str("];\n");
    code
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    let mut code = table("SCENARIOS", &manifest.join("scenarios"), |p| {
        p.extension().is_some_and(|e| e == "toml")
    });
    code.push_str(&table("FAMILIES", &manifest.join("families"), |p| {
        p.extension().is_some_and(|e| e == "toml")
    }));
    code.push_str(&table("TEMPLATES", &manifest.join("templates"), |p| {
        p.extension().is_some_and(|e| e == "tera")
    }));
    if let Err(e) = std::fs::write(out.join("bundled.rs"), code) {
        println!("cargo:warning=could not write the bundled catalogue: {e}");
        std::process::exit(1);
    }
}

//! The catalogue compiled into the binary from `scenarios/`, `families/` and `templates/` (see `build.rs`):
//! `(path relative to its directory, contents)`, sorted by path.

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

//! `--watch`: reload scenarios and templates when their files change.
//!
//! A Tokio task looks at the `--scenarios` and `--templates` directories every
//! `--watch-interval` (default 500 ms): the path, size and modification time of every
//! `*.toml` (scenarios, top level) and `*.tera` (templates, whole tree). Polling was chosen
//! over file-system events because it works the same everywhere the mock runs (bind mounts
//! in containers, network file systems, editors that save by renaming) and needs no crate.
//! A change is loaded once two looks in a row agree, so an editor writing several files
//! causes one reload, not several half-way ones.
//!
//! The whole catalogue is loaded and checked as at start-up (on a blocking thread). If it is
//! good it replaces the one being served ([`crate::app::App::install`]); if not, the last
//! good one stays, and the errors go to the log (warning) and to `GET /__admin/health`.
//! The bundled catalogue cannot change, so without either directory there is nothing to do.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::app::App;
use crate::catalogue::Catalogue;

/// What the watcher compares between two looks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Snapshot(Vec<(PathBuf, u64, Option<SystemTime>)>);

/// Start watching, if the configuration gives a directory to watch.
pub fn spawn(app: &Arc<App>) {
    let config = app.config();
    let mut dirs = Vec::new();
    if let Some(dir) = &config.source.scenarios_dir {
        dirs.push((dir.clone(), "toml", false));
    }
    if let Some(dir) = &config.source.templates_dir {
        dirs.push((dir.clone(), "tera", true));
    }
    if dirs.is_empty() {
        tracing::warn!("--watch has nothing to watch: the bundled catalogue cannot change; give --scenarios and/or --templates");
        return;
    }
    let interval = config.watch_interval;
    let source = config.source.clone();
    let seed = config.seed;
    let mut stopping = app.stopping();
    let app = Arc::downgrade(app);
    tracing::info!(?interval, "watching the catalogue's files for changes");
    // The first look is taken now, before the server answers anything, so that a change
    // made right after start-up is seen as a change.
    let mut last = snapshot(&dirs);
    tokio::spawn(async move {
        let look = move || {
            let dirs = dirs.clone();
            tokio::task::spawn_blocking(move || snapshot(&dirs))
        };
        let mut settling: Option<Snapshot> = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stopping.changed() => return,
            }
            let Ok(now) = look().await else {
                return;
            };
            if now == last {
                settling = None;
                continue;
            }
            if settling.as_ref() != Some(&now) {
                settling = Some(now);
                continue;
            }
            settling = None;
            last = now;
            let Some(app) = app.upgrade() else {
                return;
            };
            let source = source.clone();
            match tokio::task::spawn_blocking(move || Catalogue::load(&source, seed)).await {
                Ok(Ok(catalogue)) => app.install(catalogue),
                Ok(Err(errors)) => app.reload_failed(errors.to_string()),
                Err(e) => app.reload_failed(format!("the reload task failed: {e}")),
            }
        }
    });
}

/// Every watched file with its size and modification time, sorted, walked as loading walks
/// them ([`crate::scenario::walk`]): a link loop or a tree past the walk's bounds is a marker
/// (the path at fault, no size), so the look ends, takes bounded memory, and a broken tree
/// changes the snapshot once, not on every look.
fn snapshot(dirs: &[(PathBuf, &'static str, bool)]) -> Snapshot {
    let mut files = Vec::new();
    for (dir, ext, recursive) in dirs {
        let walk = crate::scenario::walk::walk(dir, ext, *recursive);
        files.extend(
            walk.files
                .into_iter()
                .map(|f| (f.path, f.meta.len(), f.meta.modified().ok())),
        );
        // A directory that cannot be read, or a loop, is a state too: its change is a change.
        files.extend(
            walk.errors
                .into_iter()
                .map(|e| (PathBuf::from(e.file), u64::MAX, None)),
        );
    }
    files.sort();
    Snapshot(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_sees_new_changed_and_removed_files() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = [(dir.path().to_path_buf(), "toml", false)];
        let empty = snapshot(&dirs);
        std::fs::write(dir.path().join("a.toml"), "x").unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "x").unwrap();
        let one = snapshot(&dirs);
        assert_ne!(empty, one);
        assert_eq!(one.0.len(), 1);
        std::fs::write(dir.path().join("a.toml"), "xy").unwrap();
        assert_ne!(one, snapshot(&dirs));
        std::fs::remove_file(dir.path().join("a.toml")).unwrap();
        assert_eq!(empty, snapshot(&dirs));
    }

    #[cfg(unix)]
    #[test]
    fn a_link_loop_is_one_marker_in_a_bounded_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("journey")).unwrap();
        std::fs::write(dir.path().join("journey/a.json.tera"), "{}").unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("journey/loop")).unwrap();
        let dirs = [(dir.path().to_path_buf(), "tera", true)];
        let one = snapshot(&dirs);
        assert_eq!(one.0.len(), 2, "{one:?}");
        assert!(one
            .0
            .iter()
            .any(|(p, size, _)| p.ends_with("journey/loop") && *size == u64::MAX));
        assert_eq!(one, snapshot(&dirs), "a loop must not look like a change");
    }
}

//! Walking a catalogue directory without being led astray: the one walk that both loading
//! (`loader::read`) and `--watch`'s look at the files (`crate::reload`) take, so they always
//! see the same files.
//!
//! The policy:
//!
//! - **Symbolic links are followed**, to files and to directories: catalogues are often
//!   assembled from links (a shared `journey/base.json.tera`, a Kubernetes ConfigMap volume,
//!   whose files are links into a hidden directory), and refusing them would break those.
//! - **Each real directory is read once.** A directory reached again by another path (two
//!   links to one directory) is skipped: its files were read under the first path, and the
//!   walk goes in sorted order, so which path that is never changes between runs.
//! - **A link to a directory that contains it is a loop**, and an error naming the link and
//!   where it leads: following it would walk forever (it once grew a `--watch` process by
//!   650 MB in 30 s). Loops the links do not show (a bind mount of a parent) end at the
//!   depth bound instead.
//! - **Bounds**: at most [`MAX_DEPTH`] directories deep and [`MAX_ENTRIES`] directory
//!   entries looked at in one walk; past either, an error naming the directory. A catalogue
//!   is a few dozen files; the bounds only stop a wrong `--templates` (`/`, a home directory)
//!   from walking a whole disk.
//! - A matching name that is not a regular file (a device, a pipe, a link to `/dev/zero`) is
//!   an error, never read.
//!
//! Every problem is reported, and the walk goes on where it can.

use std::collections::HashSet;
use std::fs::Metadata;
use std::path::{Path, PathBuf};

use super::loader::LoadError;

/// How many directories deep a walk goes below the directory it starts in.
pub const MAX_DEPTH: usize = 16;

/// How many directory entries (files, directories, anything) one walk looks at.
pub const MAX_ENTRIES: usize = 10_000;

/// A file the walk found: where (as reached, under the starting directory) and what
/// `metadata` says of what it leads to.
#[derive(Debug)]
pub struct Found {
    pub path: PathBuf,
    pub meta: Metadata,
}

/// What a walk found and what went wrong.
#[derive(Debug, Default)]
pub struct Walk {
    /// Regular files ending in `.{ext}`, sorted by path.
    pub files: Vec<Found>,
    pub errors: Vec<LoadError>,
}

struct Walker<'a> {
    ext: &'a str,
    recursive: bool,
    /// Real paths of the directories read so far.
    visited: HashSet<PathBuf>,
    /// Real paths of the directories being read, from the start down: a link to one of them
    /// is a loop.
    ancestors: Vec<PathBuf>,
    entries: usize,
    walk: Walk,
}

/// Files ending in `.{ext}` in `dir` (and, if `recursive`, below it), by the policy above.
pub fn walk(dir: &Path, ext: &str, recursive: bool) -> Walk {
    let mut walker = Walker {
        ext,
        recursive,
        visited: HashSet::new(),
        ancestors: Vec::new(),
        entries: 0,
        walk: Walk::default(),
    };
    match dir.canonicalize() {
        Ok(real) => walker.visit(dir, real, 0),
        Err(e) => walker.error(dir, format!("cannot read this directory: {e}")),
    }
    let mut walk = walker.walk;
    walk.files.sort_by(|a, b| a.path.cmp(&b.path));
    walk
}

impl Walker<'_> {
    fn error(&mut self, path: &Path, message: String) {
        self.walk
            .errors
            .push(LoadError::new(path.display().to_string(), message));
    }

    /// Read directory `dir` (reached by that path; `real` is where it really is).
    fn visit(&mut self, dir: &Path, real: PathBuf, depth: usize) {
        if !self.visited.insert(real.clone()) {
            return;
        }
        // One past what is left, so that a directory of millions is never listed whole.
        let room = MAX_ENTRIES.saturating_sub(self.entries) + 1;
        let mut entries: Vec<std::fs::DirEntry> = match std::fs::read_dir(dir) {
            Ok(entries) => entries.flatten().take(room).collect(),
            Err(e) => {
                self.error(dir, format!("cannot read this directory: {e}"));
                return;
            }
        };
        self.entries += entries.len();
        if self.entries > MAX_ENTRIES {
            self.error(
                dir,
                format!("the catalogue's directories hold more than {MAX_ENTRIES} entries; point --scenarios/--templates at a directory that holds only the catalogue"),
            );
            return;
        }
        entries.sort_by_key(|e| e.file_name());
        self.ancestors.push(real);
        for entry in entries {
            self.entry(&entry.path(), depth);
        }
        self.ancestors.pop();
    }

    fn entry(&mut self, path: &Path, depth: usize) {
        let matches = path.extension().is_some_and(|e| e == self.ext);
        // Follows a link: what matters is what the name leads to.
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) => {
                if matches {
                    self.error(path, format!("cannot read this file: {e}"));
                }
                return;
            }
        };
        if meta.is_dir() {
            if self.recursive {
                self.directory(path, depth + 1);
            }
        } else if matches {
            if meta.is_file() {
                self.walk.files.push(Found {
                    path: path.to_path_buf(),
                    meta,
                });
            } else {
                self.error(
                    path,
                    "is not a regular file (a device, a pipe or a socket); a catalogue file must be one".to_string(),
                );
            }
        }
    }

    fn directory(&mut self, path: &Path, depth: usize) {
        let real = match path.canonicalize() {
            Ok(real) => real,
            Err(e) => {
                self.error(path, format!("cannot read this directory: {e}"));
                return;
            }
        };
        if self.ancestors.contains(&real) {
            self.error(
                path,
                format!(
                    "a symbolic link loop: this leads back to {}, which contains it; remove the link or point it outside the catalogue",
                    real.display()
                ),
            );
            return;
        }
        if depth > MAX_DEPTH {
            self.error(
                path,
                format!("is more than {MAX_DEPTH} directories deep; the catalogue must be shallower (or a mount leads back into it)"),
            );
            return;
        }
        self.visit(path, real, depth);
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(walk: &Walk, root: &Path) -> Vec<String> {
        walk.files
            .iter()
            .map(|f| f.path.strip_prefix(root).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn a_link_back_to_an_ancestor_is_a_loop_naming_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("journey/deep")).unwrap();
        std::fs::write(root.join("journey/a.json.tera"), "{}").unwrap();
        symlink(root, root.join("journey/deep/up")).unwrap();
        let walk = walk(root, "tera", true);
        assert_eq!(names(&walk, root), ["journey/a.json.tera"]);
        assert_eq!(walk.errors.len(), 1, "{:?}", walk.errors);
        let e = walk.errors[0].to_string();
        assert!(e.contains("journey/deep/up"), "{e}");
        assert!(e.contains("symbolic link loop"), "{e}");
    }

    #[test]
    fn links_are_followed_and_each_real_directory_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("shared.json.tera"), "{}").unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("real")).unwrap();
        std::fs::write(root.join("real/x.json.tera"), "{}").unwrap();
        symlink(outside.path(), root.join("linked")).unwrap();
        symlink(root.join("real"), root.join("again")).unwrap();
        symlink(
            outside.path().join("shared.json.tera"),
            root.join("file.json.tera"),
        )
        .unwrap();
        let walk = walk(root, "tera", true);
        assert!(walk.errors.is_empty(), "{:?}", walk.errors);
        // `again` and `real` are one directory: read once, under the name sorted first.
        assert_eq!(
            names(&walk, root),
            [
                "again/x.json.tera",
                "file.json.tera",
                "linked/shared.json.tera"
            ]
        );
    }

    #[test]
    fn depth_and_entry_counts_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut deep = dir.path().to_path_buf();
        for _ in 0..MAX_DEPTH + 2 {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        let walk = walk(dir.path(), "tera", true);
        assert_eq!(walk.errors.len(), 1);
        assert!(walk.errors[0].to_string().contains("directories deep"));

        let wide = tempfile::tempdir().unwrap();
        for i in 0..=MAX_ENTRIES {
            std::fs::write(wide.path().join(format!("{i}.txt")), "").unwrap();
        }
        let walk = super::walk(wide.path(), "tera", true);
        assert!(
            walk.errors[0].to_string().contains("more than"),
            "{:?}",
            walk.errors
        );
    }

    #[test]
    fn a_matching_name_that_is_not_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        symlink("/dev/zero", dir.path().join("zero.toml")).unwrap();
        symlink("/nonexistent/x", dir.path().join("gone.toml")).unwrap();
        let walk = walk(dir.path(), "toml", false);
        assert!(walk.files.is_empty());
        let errors: Vec<String> = walk.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("gone.toml") && errors[0].contains("cannot read"));
        assert!(errors[1].contains("zero.toml") && errors[1].contains("not a regular file"));
    }
}

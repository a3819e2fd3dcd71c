//! The process's file-descriptor limit, and the cap on open connections sized from it.
//!
//! Every connection holds a descriptor; so do the listener, the runtime (epoll, its wakers),
//! catalogue files while they are read, and outbound callback connections. A server that
//! accepts until the process runs out fails at all of those at once (`accept failed: Too
//! many open files`, callbacks that cannot connect), so connections stop short of the limit:
//! by default three quarters of it, the rest left for everything else.

/// The least kept for everything but connections, whatever the limit.
const RESERVED_AT_LEAST: u64 = 64;

/// The cap when the limit cannot be read (or is unlimited).
const WITHOUT_A_LIMIT: usize = 16_384;

/// Raise the soft limit on open files to the hard one, as far as the system lets us, and
/// return the soft limit in force afterwards (`None`: unknown or unlimited). The program
/// does this at start; the library leaves the process's limits alone.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let limit = getrlimit(Resource::Nofile);
        if let (Some(soft), Some(hard)) = (limit.current, limit.maximum) {
            if soft < hard {
                let raised = Rlimit {
                    current: Some(hard),
                    maximum: Some(hard),
                };
                match setrlimit(Resource::Nofile, raised) {
                    Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open-file limit"),
                    Err(e) => {
                        tracing::debug!(soft, hard, error = %e, "cannot raise the open-file limit")
                    }
                }
            }
        }
    }
    fd_limit()
}

/// The soft limit on open files now (`None`: unknown or unlimited).
pub fn fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The default `--max-connections` for a file-descriptor limit: the limit less a quarter of
/// it (at least 64) for everything else, and at least 1.
pub fn default_max_connections(fd_limit: Option<u64>) -> usize {
    let Some(limit) = fd_limit else {
        return WITHOUT_A_LIMIT;
    };
    let reserved = (limit / 4).max(RESERVED_AT_LEAST);
    let cap = limit.saturating_sub(reserved).max(1);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_a_quarter_of_the_descriptors_and_never_none() {
        assert_eq!(default_max_connections(Some(20_000)), 15_000);
        assert_eq!(default_max_connections(Some(1_048_576)), 786_432);
        assert_eq!(default_max_connections(Some(1024)), 768);
        // A small limit still leaves 64 for the rest.
        assert_eq!(default_max_connections(Some(200)), 136);
        assert_eq!(default_max_connections(Some(10)), 1);
        assert_eq!(default_max_connections(None), WITHOUT_A_LIMIT);
    }

    #[test]
    fn the_limit_after_raising_is_the_limit_read_afterwards() {
        let raised = raise_fd_limit();
        assert_eq!(raised, fd_limit());
    }
}

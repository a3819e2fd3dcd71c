//! The journey and callback flags of `otk-mock serve` reach the configuration.

use std::time::Duration;

use clap::Parser;
use otk_mock::cli::{Cli, Command};
use otk_mock::config::Config;

fn config(args: &[&str]) -> Result<Config, clap::Error> {
    let cli = Cli::try_parse_from(["otk-mock", "serve"].iter().chain(args))?;
    match cli.command {
        Command::Serve(serve) => Ok(serve.config()),
        other => panic!("parsed as {other:?}"),
    }
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = config(&[]).unwrap();
    assert_eq!(c.public_url, None);
    assert_eq!(c.max_journeys, 10_000);
    assert_eq!(c.auto_complete_after, Some(Duration::from_secs(5)));
    assert_eq!(c.in_progress_scenario, "in_progress");
    assert_eq!(c.expired_scenario, "link_expired");
    let cb = &c.callbacks;
    assert_eq!(cb.delay, Duration::ZERO);
    assert_eq!(cb.timeout, Duration::from_secs(10));
    assert_eq!(cb.auth_header, "Authorization");
    assert_eq!(cb.backoff_initial, Duration::from_secs(1));
    assert_eq!(cb.backoff_max, Duration::from_secs(60));
    assert_eq!(cb.max_attempts, 8);
    assert!(cb.signing_key.is_none());
    assert_eq!(cb.queue_capacity, 10_000);
    assert_eq!(cb.retry_capacity, 10_000);
    assert_eq!(cb.concurrency, 256);
    assert_eq!(cb.max_delay, Duration::from_secs(3600));
    assert!(cb.allow.is_empty());
    assert_eq!(cb.log_entries, 10_000);
    assert_eq!(cb.drain_window, Duration::from_secs(5));
    assert!(c.admin_token.is_none());
    assert_eq!(c.admin_bind, None);
}

#[test]
fn callback_bounds_and_admin_protection_flags_reach_the_configuration() {
    let c = config(&[
        "--callback-retry-queue",
        "12",
        "--callback-concurrency",
        "3",
        "--callback-max-delay",
        "10m",
        "--callback-allow",
        "10.0.0.0/8,hooks.example.test",
        "--callback-allow",
        "*.corp.test",
        "--admin-token",
        "s3cret",
        "--admin-bind",
        "127.0.0.1:9091",
    ])
    .unwrap();
    let cb = &c.callbacks;
    assert_eq!((cb.retry_capacity, cb.concurrency), (12, 3));
    assert_eq!(cb.max_delay, Duration::from_secs(600));
    let allow: Vec<String> = cb.allow.iter().map(ToString::to_string).collect();
    assert_eq!(allow, ["10.0.0.0/8", "hooks.example.test", "*.corp.test"]);
    assert!(c.admin_token.as_ref().unwrap().matches(b"s3cret"));
    assert_eq!(c.admin_bind, Some("127.0.0.1:9091".parse().unwrap()));
    // The token is never in a debug dump of the configuration.
    assert!(!format!("{c:?}").contains("s3cret"));
    // A default delay over the cap raises the cap rather than being refused later.
    let c = config(&["--callback-delay", "2h"]).unwrap();
    assert_eq!(c.callbacks.max_delay, Duration::from_secs(7200));
}

#[test]
fn flags_set_every_journey_and_callback_setting() {
    let c = config(&[
        "--public-url",
        "https://kyc.example.test/",
        "--max-journeys",
        "7",
        "--auto-complete-after",
        "never",
        "--callback-delay",
        "250ms",
        "--callback-timeout",
        "3s",
        "--callback-auth-header",
        "X-Callback-Key",
        "--callback-backoff-initial",
        "2s",
        "--callback-backoff-max",
        "30s",
        "--callback-max-attempts",
        "4",
        "--callback-signing-secret",
        "whsec_c2VjcmV0",
        "--callback-queue",
        "9",
        "--callback-log-entries",
        "11",
        "--callback-drain",
        "1s",
    ])
    .unwrap();
    assert_eq!(c.public_url.as_deref(), Some("https://kyc.example.test"));
    assert_eq!(c.max_journeys, 7);
    assert_eq!(c.auto_complete_after, None);
    let cb = &c.callbacks;
    assert_eq!(cb.delay, Duration::from_millis(250));
    assert_eq!(cb.timeout, Duration::from_secs(3));
    assert_eq!(cb.auth_header, "X-Callback-Key");
    assert_eq!(cb.backoff_initial, Duration::from_secs(2));
    assert_eq!(cb.backoff_max, Duration::from_secs(30));
    assert_eq!(cb.max_attempts, 4);
    assert_eq!(cb.signing_key.as_ref().unwrap().bytes(), b"secret");
    assert_eq!((cb.queue_capacity, cb.log_entries), (9, 11));
    assert_eq!(cb.drain_window, Duration::from_secs(1));
}

#[test]
fn bad_values_are_usage_errors_naming_the_flag() {
    for args in [
        &["--public-url", "kyc.example.test"][..],
        &["--auto-complete-after", "soon"],
        &["--callback-auth-header", "bad header"],
        &["--callback-max-attempts", "0"],
        &["--callback-signing-secret", "whsec_%%%"],
        &["--callback-allow", "http://x/"],
        &["--callback-max-delay", "soon"],
        &["--admin-token", " "],
        &["--admin-bind", "localhost"],
        &["--callback-concurrency", "0"],
    ] {
        let error = config(args).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{args:?}");
        assert!(error.to_string().contains(args[0]), "{args:?}: {error}");
    }
}

#[test]
fn control_plane_flags_have_documented_defaults_and_reach_the_configuration() {
    let c = config(&[]).unwrap();
    assert_eq!(c.journal_entries, 10_000);
    assert_eq!(c.fault_max_wait, Duration::from_secs(300));
    assert!(!c.watch);
    assert_eq!(c.watch_interval, Duration::from_millis(500));
    let c = config(&[
        "--journal-entries",
        "5",
        "--fault-max-wait",
        "30s",
        "--watch",
        "--watch-interval",
        "2s",
    ])
    .unwrap();
    assert_eq!(c.journal_entries, 5);
    assert_eq!(c.fault_max_wait, Duration::from_secs(30));
    assert!(c.watch);
    assert_eq!(c.watch_interval, Duration::from_secs(2));
}

#[test]
fn control_plane_flags_appear_in_help_with_their_variables() {
    use clap::CommandFactory;
    let mut command = Cli::command();
    let serve = command.find_subcommand_mut("serve").expect("serve");
    let help = serve.render_long_help().to_string();
    for (flag, variable) in [
        ("--journal-entries", "OTK_MOCK_JOURNAL_ENTRIES"),
        ("--fault-max-wait", "OTK_MOCK_FAULT_MAX_WAIT"),
        ("--watch", "OTK_MOCK_WATCH"),
        ("--watch-interval", "OTK_MOCK_WATCH_INTERVAL"),
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
        assert!(help.contains(variable), "{variable} missing from --help");
    }
}

#[test]
fn connection_budgets_have_documented_defaults_and_reach_the_configuration() {
    let c = config(&[]).unwrap();
    assert_eq!(c.body_read_timeout, Duration::from_secs(10));
    assert_eq!(c.request_timeout, Duration::from_secs(30));
    assert_eq!(c.max_journey_id, 256);
    assert_eq!(
        c.max_connections, None,
        "sized to the open-file limit at start"
    );
    let c = config(&[
        "--max-connections",
        "50",
        "--body-read-timeout",
        "2s",
        "--request-timeout",
        "1m",
        "--max-journey-id",
        "64",
    ])
    .unwrap();
    assert_eq!(c.body_read_timeout, Duration::from_secs(2));
    assert_eq!(c.request_timeout, Duration::from_secs(60));
    assert_eq!(c.max_journey_id, 64);
    assert_eq!(c.max_connections, Some(50));
    for args in [
        &["--max-connections", "0"][..],
        &["--max-journey-id", "0"],
        &["--max-journey-id", "4097"],
        &["--body-read-timeout", "soon"],
    ] {
        let error = config(args).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{args:?}");
        assert!(error.to_string().contains(args[0]), "{args:?}: {error}");
    }
}

//! The real binary: start-up validation, exit codes and messages, the listing and render
//! commands, environment variables, and a served process stopped by SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use hyper::Method;

fn otk_mock() -> Command {
    common::binary()
}

fn run(args: &[&str]) -> Output {
    otk_mock().args(args).output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

const GOOD_SCENARIO: &str = r#"description = "fine"
template = "journey/success.json.tera"
status = "COMPLETED"
step = "COMPLETE"
message = "Journey Completed"
"#;

#[test]
fn validate_accepts_the_bundled_catalogue() {
    let out = run(&["validate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ok: "), "{}", stdout(&out));
    assert!(stdout(&out).contains("success"));
}

#[test]
fn broken_scenario_files_stop_start_up_with_every_error_named() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "success.toml", GOOD_SCENARIO);
    // An unknown key on line 6, and a syntax error on line 2 of another file.
    write(
        dir.path(),
        "typo.toml",
        &format!("{GOOD_SCENARIO}colour = \"red\"\n"),
    );
    write(
        dir.path(),
        "syntax.toml",
        "description = \"x\"\ntemplate = \n",
    );
    let scenarios = dir.path().to_str().unwrap();
    for command in [
        &["validate", "--scenarios", scenarios][..],
        &["serve", "--bind", "127.0.0.1:0", "--scenarios", scenarios],
    ] {
        let out = run(command);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("2 errors"), "{err}");
        assert!(
            err.contains(&format!(
                "{}:6: field `colour`: unknown field `colour`",
                dir.path().join("typo.toml").display()
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!("{}:2", dir.path().join("syntax.toml").display())),
            "{err}"
        );
    }
}

#[test]
fn a_template_that_renders_invalid_json_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = dir.path().join("scenarios");
    let templates = dir.path().join("templates");
    write(
        &scenarios,
        "success.toml",
        &GOOD_SCENARIO.replace("journey/success.json.tera", "journey/broken.json.tera"),
    );
    write(
        &templates,
        "journey/broken.json.tera",
        "{\n  \"journeyId\": \"{{ journey.id }}\",\n  \"x\": [1, 2,]\n}\n",
    );
    let out = run(&[
        "validate",
        "--scenarios",
        scenarios.to_str().unwrap(),
        "--templates",
        templates.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("template `journey/broken.json.tera` rendered invalid JSON at line 3"),
        "{err}"
    );
    assert!(err.contains("success.toml"), "{err}");
}

#[test]
fn template_syntax_errors_and_missing_templates_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = dir.path().join("scenarios");
    let templates = dir.path().join("templates");
    write(
        &scenarios,
        "bad_syntax.toml",
        &GOOD_SCENARIO.replace("journey/success.json.tera", "journey/bad.json.tera"),
    );
    write(
        &scenarios,
        "no_template.toml",
        &GOOD_SCENARIO.replace("journey/success.json.tera", "journey/absent.json.tera"),
    );
    write(
        &scenarios,
        "orphan.toml",
        &GOOD_SCENARIO.replace("journey/success.json.tera", "journey/orphan.json.tera"),
    );
    write(
        &templates,
        "journey/bad.json.tera",
        "{\n\n  \"a\": {{ journey.id \n}\n",
    );
    write(
        &templates,
        "journey/orphan.json.tera",
        "{% extends \"journey/nowhere.json.tera\" %}\n",
    );
    let out = run(&[
        "validate",
        "--scenarios",
        scenarios.to_str().unwrap(),
        "--templates",
        templates.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let bad = templates.join("journey/bad.json.tera");
    // The expression opened on line 3 is found unclosed at line 4's `}`.
    assert!(
        err.contains(&format!("{}:4: syntax error: expected", bad.display())),
        "{err}"
    );
    assert!(
        err.contains("extends \"journey/nowhere.json.tera\""),
        "{err}"
    );
    assert!(
        err.contains("no_template.toml:2: field `template`: template \"journey/absent.json.tera\""),
        "{err}"
    );
}

#[test]
fn a_catalogue_file_over_the_size_limit_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "fine.toml", GOOD_SCENARIO);
    let padding = format!("# {}\n", "x".repeat(2_000));
    write(dir.path(), "big.toml", &format!("{GOOD_SCENARIO}{padding}"));
    let scenarios = dir.path().to_str().unwrap();
    let out = run(&[
        "validate",
        "--scenarios",
        scenarios,
        "--max-catalogue-file-bytes",
        "1KiB",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("big.toml"), "{err}");
    assert!(err.contains("over the limit of 1024 bytes"), "{err}");
    assert!(!err.contains("fine.toml"), "{err}");
    // Under the default limit (1 MiB) the same file loads.
    std::fs::copy("scenarios/success.toml", dir.path().join("success.toml")).unwrap();
    let out = run(&["validate", "--scenarios", scenarios]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_in_the_templates_is_an_error_naming_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    for entry in ["journey", "html"] {
        std::fs::create_dir_all(templates.join(entry)).unwrap();
        for file in std::fs::read_dir(Path::new("templates").join(entry)).unwrap() {
            let file = file.unwrap();
            std::fs::copy(file.path(), templates.join(entry).join(file.file_name())).unwrap();
        }
    }
    std::os::unix::fs::symlink(&templates, templates.join("html/back")).unwrap();
    let out = run(&["validate", "--templates", templates.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("html/back"), "{err}");
    assert!(err.contains("symbolic link loop"), "{err}");
}

#[test]
fn an_empty_or_missing_scenario_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["validate", "--scenarios", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no .toml files here"),
        "{}",
        stderr(&out)
    );
    let missing = dir.path().join("nope");
    let out = run(&["validate", "--scenarios", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read this directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn scenarios_lists_name_aliases_status_and_description() {
    let out = run(&["scenarios"]);
    assert!(out.status.success());
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with("success "))
        .expect("success is listed");
    assert!(line.contains("ok"), "{line}");
    assert!(line.contains("COMPLETED/COMPLETE"), "{line}");
    assert!(line.contains("Every check passes"), "{line}");
}

#[test]
fn render_prints_the_body_get_journey_serves() {
    let out = run(&[
        "render",
        "success",
        "--journey-id",
        "Q7K2M9X4ZA",
        "--compact",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let value: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(value["result"]["journeyId"], "Q7K2M9X4ZA");
    // The same bytes as a server with the same seed.
    let pretty = run(&["render", "ok", "--journey-id", "Q7K2M9X4ZA"]);
    let pretty: serde_json::Value = serde_json::from_slice(&pretty.stdout).unwrap();
    assert_eq!(pretty, value);
}

#[test]
fn render_of_an_unknown_scenario_is_one_helpful_line_and_exit_2() {
    let out = run(&["render", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("no scenario \"nope\"") && err.contains("success"),
        "{err}"
    );
}

#[test]
fn the_seed_comes_from_the_environment_too() {
    let flag = run(&["render", "success", "--compact", "--seed", "9"]);
    let env = otk_mock()
        .args(["render", "success", "--compact"])
        .env("OTK_MOCK_SEED", "9")
        .output()
        .unwrap();
    let default = run(&["render", "success", "--compact"]);
    assert_eq!(flag.stdout, env.stdout);
    assert_ne!(flag.stdout, default.stdout);
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    let out = run(&[
        "serve",
        "--default-scenario",
        "nope",
        "--bind",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("--default-scenario \"nope\""), "{err}");
    let out = run(&["serve", "--header-read-timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("soon"), "{}", stderr(&out));
    let out = run(&["serve", "--bind", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&[
        "record",
        "--upstream",
        "http://127.0.0.1:9",
        "--timeout",
        "0s",
        "X1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is zero; give a duration above zero"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(&["serve", "--bind", &addr]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("cannot listen on {addr}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_documents_every_flag_and_its_variable() {
    let out = run(&["serve", "--help"]);
    let text = stdout(&out);
    for needle in [
        "--bind",
        "OTK_MOCK_BIND",
        "--scenarios",
        "OTK_MOCK_SCENARIOS",
        "--templates",
        "OTK_MOCK_TEMPLATES",
        "--seed",
        "OTK_MOCK_SEED",
        "--token",
        "OTK_MOCK_TOKENS",
        "--default-scenario",
        "OTK_MOCK_DEFAULT_SCENARIO",
        "--strict",
        "OTK_MOCK_STRICT",
        "--log-format",
        "OTK_MOCK_LOG_FORMAT",
        "--max-body-bytes",
        "--header-read-timeout",
    ] {
        assert!(
            text.contains(needle),
            "serve --help lacks {needle}:\n{text}"
        );
    }
}

#[tokio::test]
async fn serve_takes_tokens_from_the_environment_and_stops_on_sigterm() {
    let mut child = otk_mock()
        .args(["serve", "--bind", "127.0.0.1:0", "--log-format", "json"])
        .env("OTK_MOCK_TOKENS", "alpha,beta")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // The first log line says where it listens.
    let (base, lines) = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let value: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
        let address = value["fields"]["address"].as_str().unwrap().to_string();
        (format!("http://{address}"), reader)
    })
    .await
    .unwrap();
    let url = format!("{base}/api/v3/otk-service/get-journey/X1");
    let ok = common::send_url(Method::POST, &url, &[("authorization", "beta")], "").await;
    assert_eq!(ok.status, 200);
    let no = common::send_url(Method::POST, &url, &[("authorization", "gamma")], "").await;
    no.assert_provider_error(401);

    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    drop(lines);
}

/// A user's scenario, in directories of its own, built on the bundled base template.
const MINE: &str = r#"description = "mine"
template = "custom/mine.json.tera"
status = "COMPLETED"
step = "COMPLETE"
message = "Journey Completed"
"#;

const MINE_TEMPLATE: &str = r#"{% extends "journey/base.json.tera" %}
{% block passiveLiveliness %}"passiveLiveliness": {"status": "200", "liveness": false, "score": 0.07}{% endblock passiveLiveliness %}
"#;

#[test]
fn a_user_scenario_extends_the_bundled_base_from_its_own_templates_directory() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = dir.path().join("scenarios");
    let templates = dir.path().join("templates");
    write(&scenarios, "success.toml", GOOD_SCENARIO);
    write(&scenarios, "mine.toml", MINE);
    write(&templates, "custom/mine.json.tera", MINE_TEMPLATE);
    let (s, t) = (scenarios.to_str().unwrap(), templates.to_str().unwrap());
    let out = run(&["validate", "--scenarios", s, "--templates", t]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("all on the fast path"),
        "{}",
        stdout(&out)
    );
    let out = run(&[
        "render",
        "mine",
        "--compact",
        "--scenarios",
        s,
        "--templates",
        t,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let body: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let liveness = &body["result"]["selfieAnalysis"]["passiveLiveliness"];
    assert_eq!(liveness["score"], 0.07, "{liveness}");
    // The rest is the bundled base's.
    assert_eq!(body["result"]["currentStatus"], "COMPLETED");

    // A file of the user's wins over the bundled one of the same name.
    write(
        &templates,
        "journey/success.json.tera",
        r#"{"journeyId": "{{ journey.id }}", "own": true}"#,
    );
    let out = run(&[
        "render",
        "success",
        "--compact",
        "--scenarios",
        s,
        "--templates",
        t,
    ]);
    assert!(stdout(&out).contains(r#""own":true"#), "{}", stdout(&out));

    // --no-bundled: only the user's templates; the base is not there to extend.
    let out = run(&[
        "validate",
        "--scenarios",
        s,
        "--templates",
        t,
        "--no-bundled",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("extends \"journey/base.json.tera\""), "{err}");
    assert!(err.contains("mine.json.tera:1"), "{err}");
    // ...and it needs directories to take the templates from.
    let out = otk_mock()
        .args(["validate"])
        .env("OTK_MOCK_NO_BUNDLED", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--no-bundled: leaves out the bundled templates"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn validate_refuses_what_serve_refuses_with_the_same_message() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "mine.toml", GOOD_SCENARIO);
    let s = dir.path().to_str().unwrap();
    let validate = run(&["validate", "--scenarios", s]);
    let serve = run(&["serve", "--bind", "127.0.0.1:0", "--scenarios", s]);
    for out in [&validate, &serve] {
        assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
        assert!(
            stderr(out).contains(
                "--default-scenario \"success\" is not in the catalogue; known scenarios: mine"
            ),
            "{}",
            stderr(out)
        );
    }
    assert_eq!(stderr(&validate), stderr(&serve));
    // With a default it has, it passes, and says what serve would warn about.
    let out = otk_mock()
        .args(["validate", "--scenarios", s])
        .env("OTK_MOCK_DEFAULT_SCENARIO", "mine")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--in-progress-scenario \"in_progress\" names no scenario"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("--expired-scenario \"link_expired\" names no scenario"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn validate_says_what_keeps_a_scenario_off_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = dir.path().join("scenarios");
    let templates = dir.path().join("templates");
    write(&scenarios, "success.toml", GOOD_SCENARIO);
    for name in ["filtered", "env"] {
        write(
            &scenarios,
            &format!("{name}.toml"),
            &MINE.replace("custom/mine", &format!("custom/{name}")),
        );
    }
    // The issue's template: the name goes through a filter section, so it decides the
    // output, and it differs from journey to journey.
    write(
        &templates,
        "custom/filtered.json.tera",
        r#"{% extends "journey/base.json.tera" %}{% block flow %}"flow": {"n": {% filter replace(from="'", to="") %}"{{ person.lastName }}"{% endfilter %}}{% endblock flow %}"#,
    );
    write(
        &templates,
        "custom/env.json.tera",
        r#"{% extends "journey/base.json.tera" %}{% block flow %}"flow": {"home": "{{ get_env(name="HOME", default="") }}"}{% endblock flow %}"#,
    );
    let (s, t) = (scenarios.to_str().unwrap(), templates.to_str().unwrap());
    let out = run(&["validate", "--scenarios", s, "--templates", t]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("on the fast path: success\n"), "{text}");
    assert!(
        text.contains("filtered: its output depends on `person.lastName` (a print in a `{% filter replace %}` section), which differs from journey to journey"),
        "{text}"
    );
    assert!(
        text.contains("env: the function `get_env()` in `custom/env.json.tera`"),
        "{text}"
    );
    // Off the fast path, the filter is applied: no apostrophe survives in any name.
    for i in 0..40 {
        let id = format!("filtered-{i}");
        let out = run(&[
            "render",
            "filtered",
            "--journey-id",
            &id,
            "--compact",
            "--scenarios",
            s,
            "--templates",
            t,
        ]);
        let body: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert!(
            !body["result"]["flow"]["n"].as_str().unwrap().contains('\''),
            "{id}"
        );
    }
}

#[test]
fn the_same_alias_twice_is_an_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "success.toml",
        &format!("{GOOD_SCENARIO}aliases = [\"x1\", \"x1\"]\n"),
    );
    let out = run(&["validate", "--scenarios", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let file = dir.path().join("success.toml");
    assert!(
        stderr(&out).contains(&format!(
            "{}:6: field `aliases`: alias \"x1\" is listed twice",
            file.display()
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn verify_fast_path_takes_a_positive_count() {
    for bad in ["0", "-1", "often"] {
        let flag = format!("--verify-fast-path={bad}");
        let out = run(&["serve", "--bind", "127.0.0.1:0", &flag]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&out).contains("--verify-fast-path"),
            "{}",
            stderr(&out)
        );
    }
    let out = run(&["serve", "--help"]);
    assert!(stdout(&out).contains("OTK_MOCK_VERIFY_FAST_PATH"));
    assert!(stdout(&out).contains("OTK_MOCK_NO_BUNDLED"));
}

/// A served process and the addresses its first log lines give (the provider's, then the
/// admin listener's when it has one of its own); killed on drop.
struct Served {
    child: std::process::Child,
    provider: String,
    admin: Option<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str], env: &[(&str, &str)]) -> Served {
    let mut child = otk_mock()
        .arg("serve")
        .args(args)
        .args(["--log-format", "json"])
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut address = |wanted: &str| {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let value: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("a JSON log line: {line}"));
        let message = value["fields"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(wanted), "{line}");
        value["fields"]["address"].as_str().unwrap().to_string()
    };
    let provider = address("otk-mock is listening");
    let admin = args
        .contains(&"--admin-bind")
        .then(|| address("the admin API is listening"));
    Served {
        child,
        provider,
        admin,
    }
}

#[tokio::test]
async fn boolean_variables_take_one_and_yes_and_name_the_variable_when_wrong() {
    let served = serve(
        &["--bind", "127.0.0.1:0"],
        &[("OTK_MOCK_STRICT", "1"), ("OTK_MOCK_WATCH", "off")],
    );
    // Strict: an id that selects no scenario is the provider's 404.
    let url = format!(
        "http://{}/api/v3/otk-service/get-journey/Q7K2M9X4ZA",
        served.provider
    );
    let reply = common::send_url(Method::POST, &url, &[("authorization", "t")], "").await;
    reply.assert_provider_error(404);
    drop(served);

    for (value, on) in [("yes", true), ("ON", true), ("0", false), ("no", false)] {
        let out = otk_mock()
            .args(["validate"])
            .env("OTK_MOCK_NO_BUNDLED", value)
            .output()
            .unwrap();
        // --no-bundled without --scenarios/--templates is refused: proof that it was read as on.
        assert_eq!(out.status.success(), !on, "{value}: {}", stderr(&out));
    }
    let out = otk_mock()
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("OTK_MOCK_STRICT", "maybe")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(
            "OTK_MOCK_STRICT=\"maybe\" is not a boolean; use 1/0, true/false, yes/no or on/off"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn bind_takes_a_host_name() {
    let served = serve(&["--bind", "localhost:0"], &[]);
    let address: std::net::SocketAddr = served.provider.parse().unwrap();
    assert!(address.ip().is_loopback(), "{address}");
    let url = format!("http://{address}/api/v3/otk-service/get-journey/success-1");
    let reply = common::send_url(Method::POST, &url, &[("authorization", "t")], "").await;
    assert_eq!(reply.status, 200);

    let out = run(&["serve", "--bind", "localhost"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("has no port; write HOST:PORT"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn health_exits_0_for_a_healthy_server_and_1_otherwise() {
    let served = serve(
        &["--bind", "127.0.0.1:0", "--admin-bind", "127.0.0.1:0"],
        &[],
    );
    let admin = served.admin.clone().unwrap();
    // The variables serve reads are the ones health reads: a container needs nothing more.
    let out = otk_mock()
        .arg("health")
        .env("OTK_MOCK_BIND", &served.provider)
        .env("OTK_MOCK_ADMIN_BIND", &admin)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!("ok: http://{admin}/__admin/health (")),
        "{}",
        stdout(&out)
    );
    // The provider port has no admin API here: not healthy.
    let out = run(&["health", "--bind", &served.provider]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("answered 404"), "{}", stderr(&out));
    // Not a URL: unhealthy too (Docker reserves exit 2).
    let out = run(&["health", "--url", "nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("otk-mock: health: nowhere: invalid_url"),
        "{}",
        stderr(&out)
    );

    drop(served);
    let out = run(&["health", "--url", &format!("http://{admin}/__admin/health")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
}

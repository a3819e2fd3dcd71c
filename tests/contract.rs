//! `otk-mock contract check` against the recorded responses in `tests/contracts/recorded/`,
//! and the command's exit codes and messages, through the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use otk_mock::catalogue::Catalogue;
use otk_mock::contract::check;
use otk_mock::contract::diff::Severity;
use otk_mock::scenario::loader::CatalogueSource;
use pretty_assertions::assert_eq;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn recorded_dir() -> PathBuf {
    root().join("tests/contracts/recorded")
}

/// Run the binary; (exit code, stdout, stderr).
fn otk(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_otk-mock"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the binary runs");
    (
        output.status.code().expect("exited, not killed"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// What each recording gives against the bundled catalogue. Every recording is compatible
/// today; `Drift` and `NoScenario` are how a new recording is committed before the scenario
/// or template change that it waits on.
#[allow(dead_code)]
enum Expect {
    Compatible,
    /// Drift that waits on a scenario or template change; the errors it still gives.
    Drift {
        #[allow(dead_code)] // read by people: what would make this recording compatible
        waits_on: &'static str,
        errors: &'static [&'static str],
    },
    /// No scenario renders its status yet.
    NoScenario {
        #[allow(dead_code)]
        waits_on: &'static str,
    },
}

/// Every file of `tests/contracts/recorded/`. When a scenario makes a pending recording
/// compatible, turn its entry into `Compatible`.
const EXPECTED: &[(&str, Expect)] = &[
    (
        "callback-completed-extracted-field-errors.json",
        Expect::Compatible,
    ),
    (
        "callback-completed-face-gears-glasses.json",
        Expect::Compatible,
    ),
    (
        "callback-completed-image-quality-result-only.json",
        Expect::Compatible,
    ),
    (
        "callback-completed-india-dl-front-only.json",
        Expect::Compatible,
    ),
    (
        "callback-completed-india-dl-split-address.json",
        Expect::Compatible,
    ),
    (
        "callback-completed-ip-check-disabled.json",
        Expect::Compatible,
    ),
    ("callback-completed-obs-fields.json", Expect::Compatible),
    (
        "callback-terminated-ocr-errors-ip-check-off.json",
        Expect::Compatible,
    ),
    (
        "callback-terminated-retries-exceeded.json",
        Expect::Compatible,
    ),
    ("documented-get-journey-response.json", Expect::Compatible),
    ("get-journey-completed-obs-fields.json", Expect::Compatible),
];

fn file_name(file: &str) -> String {
    Path::new(file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn every_recording_is_compatible_or_waits_on_a_named_scenario() {
    let catalogue = Catalogue::load(&CatalogueSource::default(), 0).expect("catalogue loads");
    let outcome = check::run(&catalogue, &[recorded_dir()], None, false);

    let mut actual: Vec<(String, String)> = Vec::new();
    for report in &outcome.reports {
        let mut text = if report.compatible {
            "compatible".to_string()
        } else {
            "drift".to_string()
        };
        for finding in &report.findings {
            if report.severity(finding) == Severity::Error {
                text.push_str(&format!("\n    {finding}"));
            }
        }
        actual.push((file_name(&report.file), text));
    }
    for problem in &outcome.problems {
        let text = problem.to_string();
        let (file, reason) = text.split_once(": ").unwrap_or(("?", &text));
        let verdict = if reason.starts_with("no scenario to compare with") {
            "no scenario".to_string()
        } else {
            format!("bad input: {reason}")
        };
        actual.push((file_name(file), verdict));
    }
    actual.sort();
    let actual: Vec<String> = actual
        .into_iter()
        .map(|(f, t)| format!("{f}: {t}"))
        .collect();

    let expected: Vec<String> = EXPECTED
        .iter()
        .map(|(file, expect)| match expect {
            Expect::Compatible => format!("{file}: compatible"),
            Expect::Drift { errors, .. } => {
                let mut text = format!("{file}: drift");
                for e in *errors {
                    text.push_str(&format!("\n    {e}"));
                }
                text
            }
            Expect::NoScenario { .. } => format!("{file}: no scenario"),
        })
        .collect();

    assert_eq!(
        expected.join("\n"),
        actual.join("\n"),
        "the recordings no longer give what EXPECTED says: a scenario drifted from real traffic \
         (fix the template), or a pending recording now passes (mark it Compatible)"
    );
}

/// A compatible recording with one key renamed and one type changed.
fn drifted_recording(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(recorded_dir().join("callback-completed-obs-fields.json"))
        .expect("the recording reads");
    let mut doc: Value = serde_json::from_str(&text).expect("the recording is JSON");
    let face_match = doc["selfieAnalysis"]["faceMatch"]
        .as_object_mut()
        .expect("faceMatch is an object");
    let value = face_match
        .remove("matchPercentage")
        .expect("matchPercentage is there");
    face_match.insert("matchPercent".into(), value);
    doc["documentIntelligence"]["completeStatus"]["detailsOptical"]["pagesCount"] =
        Value::String("2".into());
    let file = dir.join("drifted.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    file
}

#[test]
fn the_check_reports_a_renamed_key_and_a_changed_type_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = drifted_recording(dir.path());
    // Pinned to `success` so that scenarios added later cannot change the closest one.
    let (code, out, err) = otk(&["contract", "check", "--scenario", "success", path(&file)]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    let f = path(&file);
    for line in [
        format!("{f}: callback body, COMPLETED/COMPLETE: DRIFT against scenario `success`: 2 errors"),
        format!("{f}: error: $.documentIntelligence.completeStatus.detailsOptical.pagesCount: type differs: recorded string, mock number"),
        format!("{f}: error: $.selfieAnalysis.faceMatch.matchPercent: missing from the mock (recorded string)"),
        format!("{f}: warning: $.selfieAnalysis.faceMatch.matchPercentage: present in the mock (string) but not in the recording"),
        "contract check: 1 file: 0 compatible, 1 with drift, 0 not checked".to_string(),
    ] {
        assert!(out.lines().any(|l| l == line), "no line {line:?} in:\n{out}");
    }
    assert!(err.contains("drifted"), "{err}");
}

#[test]
fn a_compatible_recording_exits_0_and_names_its_kind_and_scenario() {
    let file = recorded_dir().join("get-journey-completed-obs-fields.json");
    let (code, out, err) = otk(&["contract", "check", "--scenario", "success", path(&file)]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let first = out.lines().next().unwrap_or_default();
    assert!(
        first.ends_with(
            "get-journey-completed-obs-fields.json: get-journey response, COMPLETED/COMPLETE: \
             compatible with scenario `success`"
        ),
        "{out}"
    );
    // A front-only document's null backCaptureMode is one the mock renders too (since the
    // document families): no warning left.
    assert!(!out.contains("warning:"), "{out}");
}

#[test]
fn strict_makes_warnings_drift() {
    let file = recorded_dir().join("callback-completed-image-quality-result-only.json");
    let (code, out, _) = otk(&["contract", "check", "--scenario", "success", path(&file)]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = otk(&[
        "contract",
        "check",
        "--strict",
        "--scenario",
        "success",
        path(&file),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("error: $.documentIntelligence.imageQuality.frontIdCheck: present in the mock (object) but not in the recording"),
        "{out}"
    );
}

#[test]
fn the_scenario_flag_compares_with_that_scenario_only() {
    let file = recorded_dir().join("callback-completed-obs-fields.json");
    let (code, out, _) = otk(&["contract", "check", "--scenario", "ok", path(&file)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("compatible with scenario `success`"), "{out}");

    let (code, out, err) = otk(&["contract", "check", "--scenario", "nope", path(&file)]);
    assert_eq!(code, 2);
    assert!(
        out.contains("contract check: nothing checked (1 input problem)"),
        "{out}"
    );
    assert!(
        err.contains("--scenario \"nope\" is not in the catalogue; known scenarios: "),
        "{err}"
    );
    assert!(err.contains("success"), "{err}");
}

#[test]
fn invalid_json_is_bad_input_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.json");
    std::fs::write(&file, "{\n  \"result\": {\n    \"flow\": ,\n  }\n}\n").unwrap();
    let (code, out, err) = otk(&["contract", "check", path(&file)]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(&format!(
            "otk-mock: contract check: {}:3:13: invalid JSON: expected value",
            path(&file)
        )),
        "{err}"
    );
    assert!(out.contains("nothing checked (1 input problem)"), "{out}");
}

#[test]
fn unreadable_paths_and_empty_directories_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, out, err) = otk(&["contract", "check", path(&missing), path(&empty)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        out.contains("contract check: nothing checked (2 input problems)"),
        "{out}"
    );
    assert!(
        err.contains(&format!("{}: cannot read:", path(&missing))),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{}: no .json files in this directory",
            path(&empty)
        )),
        "{err}"
    );
    // An empty directory alone checks nothing: exit 2, never a green check.
    let (code, out, err) = otk(&["contract", "check", path(&empty)]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("nothing checked"), "{out}");
}

#[test]
fn a_file_that_is_not_a_journey_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("error.json");
    std::fs::write(
        &file,
        r#"{"error":{"name":"error","message":"Journey not found","statusCode":404}}"#,
    )
    .unwrap();
    let (code, _, err) = otk(&["contract", "check", path(&file)]);
    assert_eq!(code, 2);
    assert!(
        err.contains("error.json: this is an error response"),
        "{err}"
    );
}

#[test]
fn a_status_no_scenario_renders_is_bad_input_that_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("odd.json");
    std::fs::write(
        &file,
        r#"{"journeyId":"X","currentStatus":"PAUSED","step":"SOMEWHERE"}"#,
    )
    .unwrap();
    let (code, _, err) = otk(&["contract", "check", path(&file)]);
    assert_eq!(code, 2);
    assert!(
        err.contains("odd.json: no scenario to compare with: no scenario renders currentStatus \"PAUSED\" with step \"SOMEWHERE\""),
        "{err}"
    );
    assert!(err.contains("name one with --scenario NAME"), "{err}");
}

#[test]
fn check_needs_at_least_one_path() {
    let (code, _, err) = otk(&["contract", "check"]);
    assert_eq!(code, 2);
    assert!(err.contains("FILES_OR_DIRS"), "{err}");
}

/// A catalogue on disk: the bundled one plus `ip_off`, a second COMPLETED/COMPLETE scenario
/// whose IP check is disabled.
fn catalogue_with_two_completed_scenarios(dir: &Path) -> (PathBuf, PathBuf) {
    let scenarios = dir.join("scenarios");
    let templates = dir.join("templates/journey");
    std::fs::create_dir_all(&scenarios).unwrap();
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::copy(
        root().join("scenarios/success.toml"),
        scenarios.join("success.toml"),
    )
    .unwrap();
    for name in ["base.json.tera", "success.json.tera"] {
        std::fs::copy(
            root().join("templates/journey").join(name),
            templates.join(name),
        )
        .unwrap();
    }
    std::fs::write(
        scenarios.join("ip_off.toml"),
        r#"description = "The flow's IP check is off."
template = "journey/ip_off.json.tera"
status = "COMPLETED"
step = "COMPLETE"
message = "Journey Completed"
"#,
    )
    .unwrap();
    std::fs::write(
        templates.join("ip_off.json.tera"),
        r#"{% extends "journey/base.json.tera" %}
{% block ipAddresses %},"ipAddresses": {"{{ person.ip.ip }}": {"message": "IP Check is not Enabled"}}{% endblock ipAddresses %}
"#,
    )
    .unwrap();
    (dir.join("scenarios"), dir.join("templates"))
}

#[test]
fn a_file_is_compatible_when_any_scenario_with_its_status_is_and_the_closest_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (scenarios, templates) = catalogue_with_two_completed_scenarios(dir.path());
    let catalogue_flags = [
        "--scenarios",
        path(&scenarios),
        "--templates",
        path(&templates),
    ];
    let check = |file: &Path| {
        let mut args = vec!["contract", "check"];
        args.extend(catalogue_flags);
        args.push(path(file));
        otk(&args)
    };

    // Each recording finds the scenario it looks like among the two.
    let ip_off = recorded_dir().join("callback-completed-ip-check-disabled.json");
    let (code, out, err) = check(&ip_off);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "compatible with scenario `ip_off` (one of 2 scenarios with this status: ip_off, success)"
        ),
        "{out}"
    );
    let obs = recorded_dir().join("callback-completed-obs-fields.json");
    let (code, out, _) = check(&obs);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("compatible with scenario `success` (one of 2"),
        "{out}"
    );

    // Drift against both: the closest (success: 2 errors; ip_off has the IP errors too) is
    // the one reported.
    let drifted = drifted_recording(dir.path());
    let (code, out, _) = check(&drifted);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "DRIFT against scenario `success`: 2 errors (closest of 2 scenarios with this status: ip_off, success)"
        ),
        "{out}"
    );
}

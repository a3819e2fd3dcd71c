//! `otk-mock contract schema`: the printed JSON Schema is valid draft 2020-12, every scenario's
//! rendered body validates against it (for journey ids the schema was not inferred from), and
//! a body with a wrong type does not.

use std::process::Command;

use otk_mock::catalogue::Catalogue;
use otk_mock::contract::mock;
use otk_mock::scenario::loader::CatalogueSource;
use otk_mock::wire::envelope;
use pretty_assertions::assert_eq;
use serde_json::Value;

fn schema_from_the_binary(extra: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_otk-mock"))
        .args(["contract", "schema"])
        .args(extra)
        .output()
        .expect("the binary runs");
    (
        output.status.code().expect("exited"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn schema() -> Value {
    let (code, out) = schema_from_the_binary(&[]);
    assert_eq!(code, 0, "{out}");
    serde_json::from_str(&out).expect("the schema is JSON")
}

/// Journey ids unlike the `contract-NN` ids the schema is inferred from.
const IDS: &[&str] = &[
    "Q7K2M9X4ZA",
    "R3T8W1N6PB",
    "journey-1",
    "journey-2",
    "journey-3",
    "a",
    "b",
    "zz-top",
    "00000000",
    "ÿ-unicode-ü",
    "X1",
    "X2",
];

fn errors(validator: &jsonschema::Validator, label: &str, body: &Value) -> Vec<String> {
    validator
        .iter_errors(body)
        .map(|e| format!("{label}: {}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn the_schema_is_valid_draft_2020_12() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("not a valid JSON Schema: {e}");
    }
}

#[test]
fn every_scenario_body_validates_against_the_schema() {
    let validator = jsonschema::validator_for(&schema()).expect("the schema compiles");
    let catalogue = Catalogue::load(&CatalogueSource::default(), 0).expect("catalogue loads");
    let mut problems = Vec::new();
    let mut checked = 0;
    for scenario in catalogue.scenarios() {
        for id in IDS {
            let document = catalogue
                .render_stateless(scenario, id)
                .expect("the scenario renders");
            // The bytes get-journey serves, read back.
            let bytes = envelope(&document).expect("the body serializes");
            let body: Value = serde_json::from_slice(&bytes).expect("the body is JSON");
            problems.extend(errors(
                &validator,
                &format!("{} {id}", scenario.name),
                &body,
            ));
            checked += 1;
        }
        // Journeys as an app creates them (a callback, a full pre-fill).
        for i in [1, 3, 5, 7] {
            let document = mock::render(&catalogue, scenario, i).expect("the scenario renders");
            let body = serde_json::json!({ "result": document });
            problems.extend(errors(
                &validator,
                &format!("{} created-{i}", scenario.name),
                &body,
            ));
            checked += 1;
        }
    }
    assert_eq!(problems, Vec::<String>::new());
    assert!(checked >= catalogue.scenarios().len() * IDS.len());
}

/// The matrix: every scenario with every document family, the flow's IP check on and off,
/// read by id alone and as a journey an app created with a full pre-fill, validates against
/// `contract schema`.
#[test]
fn every_scenario_with_every_family_validates_against_the_schema() {
    use otk_mock::catalogue::Choice;
    let validator = jsonschema::validator_for(&schema()).expect("the schema compiles");
    let catalogue = Catalogue::load(&CatalogueSource::default(), 0).expect("catalogue loads");
    let families = ["ae_id", "in_dl", "passport", "us_dl"];
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for scenario in catalogue.scenarios() {
        for family in families {
            for ip_check in [true, false] {
                let choice = Choice {
                    document: Some(family),
                    ip_check: Some(ip_check),
                };
                let label = format!("{} {family} ip_check={ip_check}", scenario.name);
                let document = catalogue
                    .render_stateless_with(scenario, "Q7K2M9X4ZA", choice)
                    .unwrap_or_else(|e| panic!("{label}: {e}"));
                // The family is the one asked for (link_expired captured nothing).
                if scenario.name != "link_expired" {
                    seen.insert((
                        family,
                        document["capturedData"]["country"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                        document["capturedData"]["idType"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    ));
                }
                let body = serde_json::json!({ "result": document });
                problems.extend(errors(&validator, &label, &body));
            }
        }
    }
    assert_eq!(problems, Vec::<String>::new());
    let seen: Vec<_> = seen.into_iter().collect();
    assert_eq!(
        seen,
        [
            ("ae_id", "AE".to_string(), "Resident ID Card".to_string()),
            ("in_dl", "IN".to_string(), "Driving License".to_string()),
            ("passport", "IN".to_string(), "Passport".to_string()),
            ("us_dl", "US".to_string(), "Driving License".to_string()),
        ]
    );
}

#[test]
fn a_body_with_a_wrong_type_or_no_envelope_fails_the_schema() {
    let validator = jsonschema::validator_for(&schema()).expect("the schema compiles");
    let catalogue = Catalogue::load(&CatalogueSource::default(), 0).expect("catalogue loads");
    let success = catalogue.find("success").expect("success is bundled");
    let document = catalogue.render_stateless(success, "journey-1").unwrap();

    let mut body = serde_json::json!({ "result": document.clone() });
    body["result"]["documentIntelligence"]["completeStatus"]["detailsOptical"]["pagesCount"] =
        Value::String("2".into());
    let paths: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| e.instance_path().to_string())
        .collect();
    assert_eq!(
        paths,
        vec!["/result/documentIntelligence/completeStatus/detailsOptical/pagesCount"]
    );

    assert!(
        !validator.is_valid(&document),
        "a bare document is not a get-journey response"
    );
}

#[test]
fn compact_prints_the_same_schema_on_one_line() {
    let (code, out) = schema_from_the_binary(&["--compact"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim_end().lines().count(), 1);
    let compact: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(compact, schema());
}

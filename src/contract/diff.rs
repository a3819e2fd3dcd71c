//! Comparing a recorded shape with the mock's: every difference, by JSON path.
//!
//! The rules, for the recording `R` and the mock `M` (the union of many renders) at one path:
//!
//! - a key in `R` that `M` never has: **missing from the mock** (error). Only the topmost
//!   missing key is reported, not everything under it;
//! - a type in `R` that `M` never has (ignoring `null`): **type differs** (error), and nothing
//!   under that path is compared further unless both sides are objects or both arrays;
//! - `null` only, on either side, is a value of unknown type and conflicts with nothing; but a
//!   path that `R` has as `null` and `M` never does is a **warning**: the app never sees the
//!   `null` the provider sends;
//! - an array that has elements in `R` but is empty in every render of `M`: **empty in the
//!   mock** (error). Without this rule an empty mock array would match anything, and an app
//!   that reads the elements would be tested against nothing. The same holds for a map whose
//!   entries `R` has and `M` never does;
//! - a key that `M` has and `R` lacks: **present in the mock, not in the recording** (a
//!   warning, an error under `--strict`). Only the topmost such key is reported, and none at
//!   or under the [`ECHO_PATHS`], whose keys echo what the app sent rather than what the
//!   provider adds;
//! - an empty array or map in `R` says nothing about its elements, so whatever `M` puts there
//!   is not reported.

use std::fmt;

use serde_json::Value;

use super::schema::{JsonPath, Kinds, Node, Segment};

/// Paths, relative to the journey document, that echo the app's create-journey request: a key
/// there is present when the app sent it, in the mock as in the real provider (spec §3.3,
/// §3.4). So a key the mock has there and a recording lacks says nothing about the provider and
/// is not reported; a key the recording has and the mock lacks still is.
///
/// - `userInfo`: the provider echoes only the fields that were supplied (OBS);
/// - `processingConfig.authKeyForCallback`: omitted when it was never set (OBS).
pub const ECHO_PATHS: &[&str] = &["userInfo", "processingConfig.authKeyForCallback"];

/// Whether `path` is at or under one of the [`ECHO_PATHS`].
pub fn is_echo(path: &JsonPath) -> bool {
    ECHO_PATHS.iter().any(|pattern| {
        let keys: Vec<&str> = pattern.split('.').collect();
        keys.len() <= path.0.len()
            && keys
                .iter()
                .zip(&path.0)
                .all(|(k, s)| matches!(s, Segment::Key(name) if name == k))
    })
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The mock cannot stand in for the recording.
    Error,
    /// The mock differs in a way a single recording cannot prove wrong; an error under
    /// `--strict`.
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One difference between a recording and the mock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The recording has this key; the mock never renders it.
    MissingFromMock { path: JsonPath, recorded: String },
    /// The recording has a type here that the mock never renders.
    TypeDiffers {
        path: JsonPath,
        recorded: String,
        mock: String,
    },
    /// The recording has elements (or map entries) here; the mock's are always empty.
    EmptyInMock { path: JsonPath, recorded: String },
    /// The recording has `null` here; the mock never does.
    NullNeverInMock { path: JsonPath, mock: String },
    /// The mock renders this key; the recording does not have it.
    ExtraInMock { path: JsonPath, mock: String },
}

impl Finding {
    pub fn severity(&self) -> Severity {
        match self {
            Finding::MissingFromMock { .. }
            | Finding::TypeDiffers { .. }
            | Finding::EmptyInMock { .. } => Severity::Error,
            Finding::NullNeverInMock { .. } | Finding::ExtraInMock { .. } => Severity::Warning,
        }
    }

    pub fn path(&self) -> &JsonPath {
        match self {
            Finding::MissingFromMock { path, .. }
            | Finding::TypeDiffers { path, .. }
            | Finding::EmptyInMock { path, .. }
            | Finding::NullNeverInMock { path, .. }
            | Finding::ExtraInMock { path, .. } => path,
        }
    }

    /// The same finding under a path prefix (`$.result...` for a get-journey response).
    pub fn under(self, prefix: &[&str]) -> Finding {
        let moved = |path: JsonPath| JsonPath::under(prefix, &path);
        match self {
            Finding::MissingFromMock { path, recorded } => Finding::MissingFromMock {
                path: moved(path),
                recorded,
            },
            Finding::TypeDiffers {
                path,
                recorded,
                mock,
            } => Finding::TypeDiffers {
                path: moved(path),
                recorded,
                mock,
            },
            Finding::EmptyInMock { path, recorded } => Finding::EmptyInMock {
                path: moved(path),
                recorded,
            },
            Finding::NullNeverInMock { path, mock } => Finding::NullNeverInMock {
                path: moved(path),
                mock,
            },
            Finding::ExtraInMock { path, mock } => Finding::ExtraInMock {
                path: moved(path),
                mock,
            },
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::MissingFromMock { path, recorded } => {
                write!(f, "{path}: missing from the mock (recorded {recorded})")
            }
            Finding::TypeDiffers {
                path,
                recorded,
                mock,
            } => write!(f, "{path}: type differs: recorded {recorded}, mock {mock}"),
            Finding::EmptyInMock { path, recorded } => write!(
                f,
                "{path}: the recording has {recorded} here, the mock is always empty here"
            ),
            Finding::NullNeverInMock { path, mock } => write!(
                f,
                "{path}: recorded null, the mock never renders null here (mock {mock})"
            ),
            Finding::ExtraInMock { path, mock } => write!(
                f,
                "{path}: present in the mock ({mock}) but not in the recording"
            ),
        }
    }
}

/// Every difference between `recorded` and `mock`, in the recording's key order (keys only the
/// mock has come after those of the same object).
pub fn compare(recorded: &Node, mock: &Node) -> Vec<Finding> {
    let mut findings = Vec::new();
    compare_at(recorded, mock, &JsonPath::root(), &mut findings);
    findings
}

fn compare_at(recorded: &Node, mock: &Node, path: &JsonPath, out: &mut Vec<Finding>) {
    if recorded.nullable && !mock.nullable && !mock.kinds.is_empty() {
        out.push(Finding::NullNeverInMock {
            path: path.clone(),
            mock: mock.describe(),
        });
    }
    // Only null on either side: the type is unknown there, nothing more to compare.
    if recorded.kinds.is_empty() || mock.kinds.is_empty() {
        return;
    }
    let unmatched = recorded.kinds.minus(mock.kinds);
    if !unmatched.is_empty() {
        out.push(Finding::TypeDiffers {
            path: path.clone(),
            recorded: recorded.describe(),
            mock: mock.describe(),
        });
    }
    let both = |kind: Kinds| recorded.kinds.contains(kind) && mock.kinds.contains(kind);
    if both(Kinds::ARRAY) {
        let item_path = path.child(Segment::Item);
        match (&recorded.items, &mock.items) {
            (Some(r), Some(m)) => compare_at(r, m, &item_path, out),
            (Some(r), None) => out.push(Finding::EmptyInMock {
                path: item_path,
                recorded: format!("elements ({})", r.describe()),
            }),
            // An empty recorded array says nothing about elements.
            (None, _) => {}
        }
    }
    if both(Kinds::OBJECT) {
        if let (Some(r), Some(m)) = (&recorded.object, &mock.object) {
            compare_objects(r, m, path, out);
        }
    }
}

fn compare_objects(
    recorded: &super::schema::ObjectShape,
    mock: &super::schema::ObjectShape,
    path: &JsonPath,
    out: &mut Vec<Finding>,
) {
    let value_path = path.child(Segment::MapValue);
    match (&recorded.values, &mock.values) {
        (Some(r), Some(m)) => compare_at(r, m, &value_path, out),
        (Some(r), None) => out.push(Finding::EmptyInMock {
            path: value_path,
            recorded: format!("entries ({})", r.describe()),
        }),
        (None, _) => {}
    }
    for (key, field) in &recorded.fields {
        match mock.fields.get(key) {
            Some(m) => compare_at(&field.node, &m.node, &path.key(key), out),
            None => out.push(Finding::MissingFromMock {
                path: path.key(key),
                recorded: field.node.describe(),
            }),
        }
    }
    for (key, field) in &mock.fields {
        if !recorded.fields.contains_key(key) && !is_echo(&path.key(key)) {
            out.push(Finding::ExtraInMock {
                path: path.key(key),
                mock: field.node.describe(),
            });
        }
    }
}

/// How many strings and booleans two documents hold at the same paths (objects by key, arrays
/// by index). Not part of the contract, which is about shape: it only tells which of several
/// scenarios of one shape a recording looks most like.
pub fn agreement(a: &Value, b: &Value) -> usize {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x
            .iter()
            .filter_map(|(k, v)| y.get(k).map(|w| agreement(v, w)))
            .sum(),
        (Value::Array(x), Value::Array(y)) => x.iter().zip(y).map(|(v, w)| agreement(v, w)).sum(),
        (Value::String(_), Value::String(_)) | (Value::Bool(_), Value::Bool(_)) => {
            usize::from(a == b)
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::schema::{MapPaths, Schema};
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn diff(recorded: Value, mock: &[Value]) -> Vec<String> {
        let maps = MapPaths::otk();
        let r = Schema::infer([&recorded], &maps);
        let m = Schema::infer(mock, &maps);
        compare(&r.root, &m.root)
            .iter()
            .map(|f| format!("{}: {f}", f.severity().as_str()))
            .collect()
    }

    #[test]
    fn identical_shapes_have_no_findings() {
        let doc = json!({"a": {"b": [1, 2]}, "c": null, "ipAddresses": {"192.0.2.1": {"x": "1"}}});
        assert_eq!(diff(doc.clone(), &[doc]), Vec::<String>::new());
    }

    #[test]
    fn reports_missing_renamed_retyped_and_extra_keys_by_path() {
        let mock =
            json!({"flow": {"flowId": "f", "version": 1}, "step": "COMPLETE", "extra": {"x": 1}});
        let recorded = json!({"flow": {"flowId": "f", "version": "1"}, "stage": "COMPLETE"});
        assert_eq!(
            diff(recorded, &[mock]),
            vec![
                "error: $.flow.version: type differs: recorded string, mock number",
                "error: $.stage: missing from the mock (recorded string)",
                "warning: $.step: present in the mock (string) but not in the recording",
                "warning: $.extra: present in the mock (object) but not in the recording",
            ]
        );
    }

    #[test]
    fn an_empty_mock_array_does_not_match_recorded_elements() {
        let recorded = json!({"externalApiResponses": [{"api": "x"}], "faceGears": []});
        let mock = json!({"externalApiResponses": [], "faceGears": ["Glasses"]});
        assert_eq!(
            diff(recorded, &[mock]),
            vec!["error: $.externalApiResponses[*]: the recording has elements (object) here, the mock is always empty here"]
        );
    }

    #[test]
    fn null_has_no_type_but_a_null_the_mock_never_renders_is_a_warning() {
        let recorded = json!({"startedAt": null, "deletionTimeLimit": 1576800, "x": null});
        let mocks = [
            json!({"startedAt": 1, "deletionTimeLimit": null, "x": null}),
            json!({"startedAt": 2, "deletionTimeLimit": null, "x": 3}),
        ];
        assert_eq!(
            diff(recorded, &mocks),
            vec!["warning: $.startedAt: recorded null, the mock never renders null here (mock number)"]
        );
    }

    #[test]
    fn map_keys_are_never_drift_but_their_values_are_compared() {
        let recorded = json!({
            "ipAddresses": {"203.0.113.9": {"message": "IP Check is not Enabled"}},
            "documentIntelligence": {"extractedFields": {"Guardian's Name": "X", "Split Address": {"state": [["KA"]]}}}
        });
        let mock = json!({
            "ipAddresses": {"198.51.100.1": {"asn": "1"}},
            "documentIntelligence": {"extractedFields": {"Surname": "Y"}}
        });
        assert_eq!(
            diff(recorded, &[mock]),
            vec![
                "error: $.ipAddresses.*.message: missing from the mock (recorded string)",
                "warning: $.ipAddresses.*.asn: present in the mock (string) but not in the recording",
                "error: $.documentIntelligence.extractedFields.*: type differs: recorded string|object, mock string",
            ]
        );
    }

    #[test]
    fn echoed_request_fields_the_mock_adds_are_not_reported() {
        let recorded =
            json!({"userInfo": {"dateOfBirth": "x"}, "processingConfig": {"language": "en"}});
        let mock = json!({
            "userInfo": {"dateOfBirth": "y", "name": {"firstName": "z"}},
            "processingConfig": {"language": "en", "authKeyForCallback": "k", "callbackUrl": ""}
        });
        assert_eq!(
            diff(recorded, &[mock]),
            vec!["warning: $.processingConfig.callbackUrl: present in the mock (string) but not in the recording"]
        );
        // A key the recording has and the mock lacks is still drift there.
        let recorded = json!({"userInfo": {"nickname": "x"}});
        assert_eq!(
            diff(recorded, &[json!({"userInfo": {}})]),
            vec!["error: $.userInfo.nickname: missing from the mock (recorded string)"]
        );
    }

    #[test]
    fn agreement_counts_equal_strings_and_booleans_at_equal_paths() {
        let a = json!({"v": "True", "ok": true, "n": 1, "l": ["x", "y"], "o": {"m": "z"}});
        let b = json!({"v": "True", "ok": false, "n": 1, "l": ["x", "q"], "o": {"m": "z"}});
        assert_eq!(agreement(&a, &b), 3);
    }

    #[test]
    fn a_type_the_mock_also_renders_is_not_drift() {
        // The mock's union over renders may hold more types than one recording shows.
        let recorded = json!({"v": "a"});
        let mocks = [json!({"v": "b"}), json!({"v": 1})];
        assert_eq!(diff(recorded, &mocks), Vec::<String>::new());
    }
}

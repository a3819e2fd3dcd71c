//! The create-journey-url request: checking its body the way the provider's Joi validation
//! would, and the small pieces of its answer (ids, `ttl`).
//!
//! The first problem found is reported, Joi-style and without quotes, naming the field by its
//! path: `flowId is required`, `userInfo.name.firstName must be a string`,
//! `processingConfig.foo is not allowed`. Fields are checked in the documented order, then
//! unknown fields. `null` is a wrong type, as it is to Joi, and numbers are not accepted as
//! strings or strings as numbers, except `userInfo.phoneNumber`, which takes either (the
//! provider documents a number and its sample sends a string).

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use crate::render::facts::default_processing_config;

/// A checked create-journey-url body.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRequest {
    pub flow_id: String,
    pub user_id: Option<String>,
    /// `userInfo` as sent (only the fields sent).
    pub user_info: Map<String, Value>,
    /// `processingConfig` as sent.
    pub processing_config: Map<String, Value>,
    /// `X-Mock-Document` of the call: the journey's document family (checked by the caller).
    pub document: Option<String>,
    /// `X-Mock-Ip-Check` of the call.
    pub ip_check: Option<bool>,
}

/// Why a body was refused: the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// The prefix of the magic `userInfo.externalReferenceId` that picks a scenario.
pub const SCENARIO_REFERENCE_PREFIX: &str = "scenario:";

#[derive(Clone, Copy)]
enum Kind {
    /// Any string, `""` included.
    Str,
    /// A string that is not empty.
    NonEmptyStr,
    /// A string or a number.
    StrOrNumber,
    /// `""`, or an http(s) URL with a host.
    Url,
    /// A number ≥ 0.
    NonNegative,
    /// A number > 0.
    Positive,
    Object(&'static [(&'static str, Kind)]),
}

const NAME: &[(&str, Kind)] = &[("firstName", Kind::Str), ("lastName", Kind::Str)];
const ADDRESS: &[(&str, Kind)] = &[
    ("street", Kind::Str),
    ("street2", Kind::Str),
    ("city", Kind::Str),
    ("region", Kind::Str),
    ("postalCode", Kind::Str),
    ("country", Kind::Str),
];
const ID: &[(&str, Kind)] = &[("idType", Kind::Str), ("country", Kind::Str)];
const USER_INFO: &[(&str, Kind)] = &[
    ("phoneNumber", Kind::StrOrNumber),
    ("dateOfBirth", Kind::Str),
    ("matchImage", Kind::Str),
    ("emailAddress", Kind::Str),
    ("externalReferenceId", Kind::Str),
    ("name", Kind::Object(NAME)),
    ("address", Kind::Object(ADDRESS)),
    ("id", Kind::Object(ID)),
];
const PROCESSING_CONFIG: &[(&str, Kind)] = &[
    ("callbackUrl", Kind::Url),
    ("authKeyForCallback", Kind::Str),
    ("redirectTime", Kind::NonNegative),
    ("successRedirectUrl", Kind::Str),
    ("failureRedirectUrl", Kind::Str),
    ("journeyLinkValidity", Kind::Positive),
    ("journeySessionExpiry", Kind::Positive),
    ("language", Kind::Str),
];
const BODY: &[(&str, Kind)] = &[
    ("flowId", Kind::NonEmptyStr),
    ("userId", Kind::NonEmptyStr),
    ("userInfo", Kind::Object(USER_INFO)),
    ("processingConfig", Kind::Object(PROCESSING_CONFIG)),
];

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn check(path: &str, value: &Value, kind: Kind) -> Result<(), Invalid> {
    let wrong = |what: &str| Err(Invalid(format!("{path} must be {what}")));
    match kind {
        Kind::Str => match value {
            Value::String(_) => Ok(()),
            _ => wrong("a string"),
        },
        Kind::NonEmptyStr => match value {
            Value::String(s) if s.trim().is_empty() => {
                Err(Invalid(format!("{path} is not allowed to be empty")))
            }
            Value::String(_) => Ok(()),
            _ => wrong("a string"),
        },
        Kind::StrOrNumber => match value {
            Value::String(_) | Value::Number(_) => Ok(()),
            _ => wrong("one of [string, number]"),
        },
        Kind::Url => match value {
            Value::String(s) if s.is_empty() || is_http_url(s) => Ok(()),
            Value::String(_) => wrong("a valid uri"),
            _ => wrong("a string"),
        },
        Kind::NonNegative => match value.as_f64() {
            Some(n) if n >= 0.0 => Ok(()),
            Some(_) => wrong("greater than or equal to 0"),
            None => wrong("a number"),
        },
        Kind::Positive => match value.as_f64() {
            Some(n) if n > 0.0 => Ok(()),
            Some(_) => wrong("a positive number"),
            None => wrong("a number"),
        },
        Kind::Object(fields) => {
            let Value::Object(map) = value else {
                return wrong("of type object");
            };
            check_object(path, map, fields)
        }
    }
}

fn check_object(
    path: &str,
    map: &Map<String, Value>,
    fields: &[(&str, Kind)],
) -> Result<(), Invalid> {
    for (key, kind) in fields {
        if let Some(value) = map.get(*key) {
            check(&join(path, key), value, *kind)?;
        }
    }
    match map.keys().find(|k| !fields.iter().any(|(f, _)| f == k)) {
        Some(unknown) => Err(Invalid(format!("{} is not allowed", join(path, unknown)))),
        None => Ok(()),
    }
}

/// Whether `s` is an http or https URL with a host.
pub fn is_http_url(s: &str) -> bool {
    s.parse::<hyper::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("http") | Some("https"))
            && uri.host().is_some_and(|h| !h.is_empty())
    })
}

/// Check a create-journey-url body. An empty body is read as `{}` (and so lacks `flowId`).
pub fn parse(body: &[u8]) -> Result<CreateRequest, Invalid> {
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body).map_err(|e| {
            Invalid(format!(
                "Request body is not valid JSON: {e}; send a JSON object with at least flowId"
            ))
        })?
    };
    let Value::Object(mut map) = value else {
        return Err(Invalid("value must be of type object".to_string()));
    };
    if !map.contains_key("flowId") {
        return Err(Invalid("flowId is required".to_string()));
    }
    check_object("", &map, BODY)?;
    let text = |v: Option<Value>| match v {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let object = |v: Option<Value>| match v {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    Ok(CreateRequest {
        flow_id: text(map.remove("flowId")).unwrap_or_default(),
        user_id: text(map.remove("userId")),
        user_info: object(map.remove("userInfo")),
        processing_config: object(map.remove("processingConfig")),
        document: None,
        ip_check: None,
    })
}

impl CreateRequest {
    /// The document family `userInfo.id` names (`{"idType": "Driving License", "country":
    /// "IN"}`), if one does.
    pub fn id_family(&self) -> Option<&'static str> {
        let id = self.user_info.get("id")?;
        let id_type = id.get("idType")?.as_str()?;
        let country = id.get("country")?.as_str()?;
        crate::render::family::bundled()
            .for_user_id(id_type, country)
            .map(|f| f.name.as_str())
    }

    /// The scenario named by a magic `userInfo.externalReferenceId` of `scenario:<name>`.
    pub fn scenario_reference(&self) -> Option<&str> {
        self.user_info
            .get("externalReferenceId")
            .and_then(Value::as_str)
            .and_then(|r| r.trim().strip_prefix(SCENARIO_REFERENCE_PREFIX))
            .map(str::trim)
    }

    /// The effective `processingConfig`: the provider's defaults with what the app sent laid
    /// over them, in the documented key order; `authKeyForCallback` (right after
    /// `callbackUrl`) only when sent.
    pub fn effective_processing_config(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, default) in default_processing_config() {
            let value = self.processing_config.get(&key).cloned().unwrap_or(default);
            out.insert(key.clone(), value);
            if key == "callbackUrl" {
                if let Some(auth) = self.processing_config.get("authKeyForCallback") {
                    out.insert("authKeyForCallback".to_string(), auth.clone());
                }
            }
        }
        out
    }
}

/// A provider-like journey id: 10 upper-case letters and digits.
pub fn journey_id(rng: &mut ChaCha8Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..10)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// `ttl` of the create answer: the link's validity in hours, always written `<n> hours`
/// (the provider's own example is "24 hours"; integrators check for "hours"), with up to
/// two decimals when not whole: 3600 → `1 hours`, 86400 → `24 hours`, 5400 → `1.5 hours`.
pub fn ttl(seconds: f64) -> String {
    let hours = (seconds / 3600.0 * 100.0).round() / 100.0;
    let mut text = format!("{hours:.2}");
    while text.ends_with('0') {
        text.pop();
    }
    if text.ends_with('.') {
        text.pop();
    }
    format!("{text} hours")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error(body: &str) -> String {
        parse(body.as_bytes()).unwrap_err().0
    }

    #[test]
    fn accepts_the_documented_sample() {
        let sample: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/documented-create-request.json"
        ))
        .unwrap();
        let request = parse(sample.to_string().as_bytes()).unwrap();
        assert_eq!(request.flow_id, "<flow id>");
        assert_eq!(request.user_info["name"]["firstName"], "string");
        let config = request.effective_processing_config();
        let keys: Vec<&str> = config.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "callbackUrl",
                "authKeyForCallback",
                "redirectTime",
                "language",
                "successRedirectUrl",
                "failureRedirectUrl",
                "journeyLinkValidity",
                "journeySessionExpiry"
            ]
        );
        assert_eq!(config["redirectTime"], 0);
        assert_eq!(config["journeySessionExpiry"], 600);
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(error(""), "flowId is required");
        assert_eq!(error("{}"), "flowId is required");
        assert_eq!(
            error(r#"{"flowId":""}"#),
            "flowId is not allowed to be empty"
        );
        assert_eq!(error(r#"{"flowId":7}"#), "flowId must be a string");
        assert_eq!(error("[1]"), "value must be of type object");
        assert!(error("{").starts_with("Request body is not valid JSON"));
        assert_eq!(
            error(r#"{"flowId":"f","userInfo":{"name":{"firstName":1}}}"#),
            "userInfo.name.firstName must be a string"
        );
        assert_eq!(
            error(r#"{"flowId":"f","userInfo":{"phoneNumber":true}}"#),
            "userInfo.phoneNumber must be one of [string, number]"
        );
        assert_eq!(
            error(r#"{"flowId":"f","processingConfig":{"journeyLinkValidity":"3600"}}"#),
            "processingConfig.journeyLinkValidity must be a number"
        );
        assert_eq!(
            error(r#"{"flowId":"f","processingConfig":{"journeyLinkValidity":0}}"#),
            "processingConfig.journeyLinkValidity must be a positive number"
        );
        assert_eq!(
            error(r#"{"flowId":"f","processingConfig":{"callbackUrl":"not a url"}}"#),
            "processingConfig.callbackUrl must be a valid uri"
        );
        assert_eq!(
            error(r#"{"flowId":"f","colour":"red"}"#),
            "colour is not allowed"
        );
        assert_eq!(
            error(r#"{"flowId":"f","userInfo":{"address":{"zip":"1"}}}"#),
            "userInfo.address.zip is not allowed"
        );
        assert_eq!(
            error(r#"{"flowId":"f","userInfo":null}"#),
            "userInfo must be of type object"
        );
    }

    #[test]
    fn phone_numbers_may_be_numbers_and_the_magic_reference_picks_a_scenario() {
        let request = parse(
            json!({"flowId":"f","userInfo":{"phoneNumber":9876543210u64,
                "externalReferenceId":"scenario: liveness_failed"}})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(request.scenario_reference(), Some("liveness_failed"));
        assert!(request
            .effective_processing_config()
            .get("authKeyForCallback")
            .is_none());
    }

    #[test]
    fn ttl_is_written_in_hours() {
        assert_eq!(ttl(3600.0), "1 hours");
        assert_eq!(ttl(86_400.0), "24 hours");
        assert_eq!(ttl(5400.0), "1.5 hours");
        assert_eq!(ttl(600.0), "0.17 hours");
    }

    #[test]
    fn ids_look_like_the_providers() {
        let mut rng = crate::render::person::journey_rng(0, "x");
        let id = journey_id(&mut rng);
        assert_eq!(id.len(), 10);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
    }
}

//! Printing `person.*` and `journey.*` values straight from a [`Person`] and a [`Journey`],
//! for the fast path.
//!
//! The fast path finds the values a skeleton needs by walking the journey and the person
//! through serde (see `collect.rs`), which works for any value but costs a trie lookup, a few
//! dynamic calls and a copy for every field. A new journey prints about a hundred person
//! fields, and that walk was a third of rendering one. For the fields whose paths are known
//! here, [`printer`] gives a function that writes the value as the template would (`{{ path }}`:
//! JSON-escaped text, numbers as Rust displays them; `json_encode`: JSON) directly into the body.
//!
//! A path missing here is still walked, so this list only has to be right, not complete; tests
//! compare every printer with the walk on many people and journeys.

use std::io::Write as _;

use serde::Serialize;

use super::escape_json_into;
use super::facts::{push_processing_config, Journey};
use super::person::{FileUrl, Identity, Person};

/// Writes one value of a person into a body.
pub type Print = Box<dyn Fn(&Person, &mut Vec<u8>) + Send + Sync>;
/// Writes one value of a journey into a body.
pub type PrintJourney = Box<dyn Fn(&Journey, &mut Vec<u8>) + Send + Sync>;

/// How one hole is printed without the walk.
pub enum Printer {
    Person(Print),
    Journey(PrintJourney),
}

/// What printers print from.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    pub journey: &'a Journey,
    pub person: &'a Person,
}

impl Printer {
    pub fn print(&self, from: Sources<'_>, out: &mut Vec<u8>) {
        match self {
            Printer::Person(print) => print(from.person, out),
            Printer::Journey(print) => print(from.journey, out),
        }
    }
}

/// The printer of a template path (`["person", "firstName"]`), printed plainly (`{{ path }}`)
/// or as JSON (`json_encode`), if there is one.
pub fn printer(path: &[String], json: bool) -> Option<Printer> {
    let (root, rest) = path.split_first()?;
    match (root.as_str(), json) {
        ("person", false) => person(rest).map(Printer::Person),
        ("person", true) => person_json(rest).map(Printer::Person),
        ("journey", _) => journey(rest, json).map(Printer::Journey),
        _ => None,
    }
}

/// Whether the printer of `path` (printed plainly) writes nothing but a JSON number or
/// boolean, or nothing at all (a null, NaN): then a hole printed bare needs only to be
/// non-empty, not scanned. A test holds every path here to it.
pub fn scalar(path: &[String]) -> bool {
    let keys: Vec<&str> = path.iter().map(String::as_str).collect();
    matches!(
        keys.as_slice(),
        ["person", "latitude" | "longitude"]
            | ["person", "document", "dType" | "dFormat"]
            | [
                "person",
                "document",
                "hasBack" | "mrzFront" | "mrzBack" | "hasMrz" | "icpCheck"
            ]
            | [
                "journey",
                "flowVersion"
                    | "createdAt"
                    | "startedAt"
                    | "completedAt"
                    | "callbackSent"
                    | "ipCheck"
            ]
    )
}

/// What the fast path is given as the journey: a [`Journey`] (in a context that adds fields of
/// its own) can be printed from, anything else is walked.
pub trait AsJourney: Serialize {
    fn as_journey(&self) -> Option<&Journey> {
        None
    }
}

impl AsJourney for serde_json::Value {}

/// What the fast path is given as the person: a [`Person`] is printed field by field, anything
/// else (a `Value`, in tests) is walked.
pub trait AsPerson: Serialize {
    fn as_person(&self) -> Option<&Person> {
        None
    }
}

impl AsPerson for Person {
    fn as_person(&self) -> Option<&Person> {
        Some(self)
    }
}

impl AsPerson for serde_json::Value {}

fn text(get: fn(&Person) -> &str) -> Option<Print> {
    Some(Box::new(move |p, out| escape_json_into(get(p), out)))
}

fn url(get: fn(&Person) -> &FileUrl) -> Option<Print> {
    Some(Box::new(move |p, out| get(p).push_to(out)))
}

fn number(get: fn(&Person) -> f64) -> Option<Print> {
    Some(Box::new(move |p, out| {
        // As the walk prints an f64: Rust's shortest form; nothing for NaN or infinity.
        let v = get(p);
        if v.is_finite() {
            let _ = write!(out, "{v}");
        }
    }))
}

fn identity(field: &str, get: fn(&Person) -> &Identity) -> Option<Print> {
    let field: fn(&Identity) -> &str = match field {
        "firstName" => |i| &i.first_name,
        "lastName" => |i| &i.last_name,
        "fullName" => |i| &i.full_name,
        "surnameAndGivenNames" => |i| &i.surname_and_given_names,
        "dateOfBirth" => |i| &i.date_of_birth,
        "dateOfBirthIso" => |i| &i.date_of_birth_iso,
        "age" => |i| &i.age,
        _ => return None,
    };
    Some(Box::new(move |p, out| escape_json_into(field(get(p)), out)))
}

/// The printer of `person.<path> | json_encode()`: the JSON a person holds as text.
fn person_json(path: &[String]) -> Option<Print> {
    let keys: Vec<&str> = path.iter().map(String::as_str).collect();
    match keys.as_slice() {
        ["document", "extractedFields"] => Some(Box::new(|p, out| {
            out.extend_from_slice(p.document.extracted_fields.bytes(b"null"))
        })),
        ["document", "extractedFieldErrors"] => Some(Box::new(|p, out| {
            out.extend_from_slice(p.document.extracted_field_errors.bytes(b"null"))
        })),
        _ => None,
    }
}

/// The printer of `person.<path>`, if it is a field printed here.
fn person(path: &[String]) -> Option<Print> {
    let keys: Vec<&str> = path.iter().map(String::as_str).collect();
    match keys.as_slice() {
        [field] => match *field {
            "guardianName" => text(|p| &p.guardian_name),
            "nationality" => text(|p| p.nationality),
            "nationalityCode" => text(|p| p.nationality_code),
            "email" => text(|p| &p.email),
            "phone" => text(|p| &p.phone),
            "latitude" => number(|p| p.latitude),
            "longitude" => number(|p| p.longitude),
            other => identity(other, |p| &p.identity),
        },
        ["other", field] => identity(field, |p| &p.other),
        ["match", field] => match *field {
            "fullName" => text(|p| &p.match_percentage.full_name),
            "dateOfBirth" => text(|p| &p.match_percentage.date_of_birth),
            "address" => text(|p| &p.match_percentage.address),
            "documentNumber" => text(|p| &p.match_percentage.document_number),
            _ => None,
        },
        ["document", field] => document(field),
        ["address", field] => address(field),
        ["ip", field] => ip(field),
        ["images", "frontDoc"] => url(|p| &p.images.front_doc),
        ["images", "backDoc"] => url(|p| &p.images.back_doc),
        ["images", "selfie"] => url(|p| &p.images.selfie),
        ["images", "files", index] => {
            let i: usize = index.parse().ok()?;
            // Only an index the array has: the walk finds nothing past it, and nor may this.
            (i < Person::FILES)
                .then(|| -> Print { Box::new(move |p, out| p.images.files[i].push_to(out)) })
        }
        _ => None,
    }
}

fn journey_text(get: fn(&Journey) -> &str) -> Option<PrintJourney> {
    Some(Box::new(move |j, out| escape_json_into(get(j), out)))
}

fn journey_int(get: fn(&Journey) -> Option<i64>, json: bool) -> Option<PrintJourney> {
    Some(Box::new(move |j, out| match get(j) {
        Some(v) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
        // `{{ x }}` prints nothing for null, `json_encode` prints `null`.
        None if json => out.extend_from_slice(b"null"),
        None => {}
    }))
}

/// The printer of `journey.<path>`: strings only plainly (JSON strings are walked, so that
/// their escaping stays serde_json's), numbers, flags and the two objects either way.
fn journey(path: &[String], json: bool) -> Option<PrintJourney> {
    let [field] = path else {
        return None;
    };
    match (field.as_str(), json) {
        ("id", false) => journey_text(|j| &j.id),
        ("flowId", false) => journey_text(|j| &j.flow_id),
        ("dbId", false) => journey_text(|j| &j.db_id),
        ("clientId", false) => journey_text(|j| &j.client_id),
        ("userId", false) => journey_text(|j| &j.user_id),
        ("updatedAt", false) => journey_text(|j| &j.updated_at),
        ("documentCompletedAt", false) => journey_text(|j| &j.document_completed_at),
        ("selfieCompletedAt", false) => journey_text(|j| &j.selfie_completed_at),
        ("flowVersion", _) => journey_int(|j| Some(i64::from(j.flow_version)), json),
        ("createdAt", _) => journey_int(|j| Some(j.created_at), json),
        ("startedAt", _) => journey_int(|j| j.started_at, json),
        ("completedAt", _) => journey_int(|j| j.completed_at, json),
        ("callbackSent", _) => Some(Box::new(|j, out| {
            out.extend_from_slice(if j.callback_sent {
                b"true".as_slice()
            } else {
                b"false"
            })
        })),
        ("ipCheck", _) => Some(Box::new(|j, out| {
            out.extend_from_slice(if j.ip_check {
                b"true".as_slice()
            } else {
                b"false"
            })
        })),
        ("processingConfig", true) => Some(Box::new(|j, out| {
            push_processing_config(&j.processing_config, out)
        })),
        ("userInfo", true) => Some(Box::new(|j, out| {
            // Writing a map of JSON values into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, &j.user_info);
        })),
        _ => None,
    }
}

fn flag(get: fn(&Person) -> bool) -> Option<Print> {
    Some(Box::new(move |p, out| {
        out.extend_from_slice(if get(p) { b"true".as_slice() } else { b"false" })
    }))
}

fn document(field: &str) -> Option<Print> {
    match field {
        "family" => text(|p| p.document.family),
        "hasBack" => flag(|p| p.document.has_back),
        "mrzFront" => flag(|p| p.document.mrz_front),
        "mrzBack" => flag(|p| p.document.mrz_back),
        "hasMrz" => flag(|p| p.document.has_mrz),
        "icpCheck" => flag(|p| p.document.icp_check),
        "country" => text(|p| p.document.country),
        "idType" => text(|p| p.document.id_type),
        "nameFront" => text(|p| p.document.name_front),
        "nameBack" => text(|p| p.document.name_back),
        "icaoCode" => text(|p| p.document.icao_code),
        "countryName" => text(|p| p.document.country_name),
        "description" => text(|p| p.document.description),
        "dType" => Some(Box::new(|p, out| {
            out.extend_from_slice(itoa::Buffer::new().format(p.document.d_type).as_bytes())
        })),
        "dYear" => text(|p| p.document.d_year),
        "dFormat" => Some(Box::new(|p, out| {
            out.extend_from_slice(itoa::Buffer::new().format(p.document.d_format).as_bytes())
        })),
        "classCode" => text(|p| p.document.class_code),
        "number" => text(|p| &p.document.number),
        "dateOfIssue" => text(|p| &p.document.date_of_issue),
        "dateOfExpiry" => text(|p| &p.document.date_of_expiry),
        "dateOfExpiryPast" => text(|p| &p.document.date_of_expiry_past),
        "dateOfIssuePast" => text(|p| &p.document.date_of_issue_past),
        "yearsSinceIssuePast" => text(|p| &p.document.years_since_issue_past),
        "ageAtIssuePast" => text(|p| &p.document.age_at_issue_past),
        "cardNumber" => text(|p| &p.document.card_number),
        "yearsSinceIssue" => text(|p| &p.document.years_since_issue),
        "ageAtIssue" => text(|p| &p.document.age_at_issue),
        "remainderTerm" => text(|p| &p.document.remainder_term),
        "placeOfIssue" => text(|p| p.document.place_of_issue),
        "sex" => text(|p| p.document.sex),
        "mrz" => text(|p| &p.document.mrz),
        _ => None,
    }
}

fn address(field: &str) -> Option<Print> {
    match field {
        "street" => text(|p| &p.address.street),
        "street2" => text(|p| &p.address.street2),
        "city" => text(|p| &p.address.city),
        "region" => text(|p| &p.address.region),
        "postalCode" => text(|p| &p.address.postal_code),
        "country" => text(|p| p.address.country),
        "line" => text(|p| &p.address.line),
        "districtUpper" => text(|p| &p.address.district_upper),
        "regionUpper" => text(|p| &p.address.region_upper),
        "regionCode" => text(|p| &p.address.region_code),
        _ => None,
    }
}

fn ip(field: &str) -> Option<Print> {
    match field {
        "ip" => text(|p| &p.ip.ip),
        "asn" => text(|p| &p.ip.asn),
        "isp" => text(|p| p.ip.isp),
        "organization" => text(|p| &p.ip.organization),
        "host" => text(|p| &p.ip.host),
        "countryCode" => text(|p| p.ip.country_code),
        "region" => text(|p| p.ip.region),
        "city" => text(|p| p.ip.city),
        "latitude" => text(|p| p.ip.latitude),
        "longitude" => text(|p| p.ip.longitude),
        "timezone" => text(|p| p.ip.timezone),
        "address" => text(|p| &p.ip.address),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::collect::{Capture, Collected, Trie};
    use crate::render::person::{generate, journey_rng, Person};
    use serde_json::Value;

    /// People of every family, their documents read under every OCR outcome in turn.
    fn people(n: u64) -> Vec<Person> {
        use crate::render::{extract, family, person};
        let families = family::bundled().list();
        (0..n)
            .map(|n| {
                let mut rng = journey_rng(n, &format!("print-{n}"));
                let mut p =
                    person::generate_with(&mut rng, families.get(n as usize % families.len()));
                let journey = Journey::stateless("j", "c", &mut rng, &p);
                let ocr = crate::scenario::Ocr {
                    expired: n % 2 == 0,
                    other_holder: n % 3 == 0,
                    not_extracted: if n % 4 == 1 {
                        vec!["name".into()]
                    } else {
                        Vec::new()
                    },
                    unreadable: n % 7 == 3,
                    mismatch: (n % 5 == 2).then(|| "dateOfBirth".into()),
                };
                extract::settle(&mut p, &ocr, &journey.user_info);
                p
            })
            .collect()
    }

    #[test]
    fn the_json_printers_print_what_the_walk_finds() {
        for person in people(120) {
            for field in ["extractedFields", "extractedFieldErrors"] {
                let path = vec!["document".to_string(), field.to_string()];
                let print = person_json(&path).unwrap();
                let mut trie = Trie::default();
                trie.insert(
                    &["person".into(), "document".into(), field.into()],
                    0,
                    Capture::Json,
                );
                let mut walked = Collected::default();
                trie.collect("person", &person, &mut walked).unwrap();
                let mut direct = Vec::new();
                print(&person, &mut direct);
                assert_eq!(
                    String::from_utf8_lossy(&direct),
                    String::from_utf8_lossy(walked.get(0).unwrap()),
                    "{field}"
                );
            }
        }
    }

    /// Every leaf path of `value`, as keys.
    fn leaves(value: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    path.push(k.clone());
                    leaves(v, path, out);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    path.push(i.to_string());
                    leaves(v, path, out);
                    path.pop();
                }
            }
            _ => out.push(path.clone()),
        }
    }

    #[test]
    fn every_printer_prints_what_the_walk_finds() {
        let mut missing = std::collections::BTreeSet::new();
        let _ = generate;
        for person in people(300) {
            let mut paths = Vec::new();
            leaves(
                &serde_json::to_value(&person).unwrap(),
                &mut Vec::new(),
                &mut paths,
            );
            for path in &paths {
                // JSON held as text: printed whole, by `person_json` (tested above).
                if path.len() > 2
                    && path[0] == "document"
                    && matches!(path[1].as_str(), "extractedFields" | "extractedFieldErrors")
                {
                    continue;
                }
                let Some(print) = super::person(path) else {
                    missing.insert(path.join("."));
                    continue;
                };
                let mut trie = Trie::default();
                let mut full = vec!["person".to_string()];
                full.extend(path.iter().cloned());
                trie.insert(&full, 0, Capture::Plain);
                let mut walked = Collected::default();
                trie.collect("person", &person, &mut walked).unwrap();
                let mut direct = Vec::new();
                print(&person, &mut direct);
                assert_eq!(Some(direct.as_slice()), walked.get(0), "{path:?}");
            }
        }
        // A field added without a printer is walked, which is right but slower: add it above.
        assert!(missing.is_empty(), "no printer for {missing:?}");
    }

    fn journeys() -> Vec<Journey> {
        (0..120)
            .map(|n| {
                let mut rng = journey_rng(n, "print");
                let person = generate(&mut rng);
                let id = format!("j-\"{n}\\\u{7}");
                let mut journey = Journey::stateless(&id, "client \"1\"", &mut rng, &person);
                if n % 3 == 0 {
                    // A created journey's shapes: not started, callback sent, its own config
                    // and pre-fill, with characters that need escaping.
                    journey.started_at = None;
                    journey.completed_at = None;
                    journey.callback_sent = true;
                    let mut config = crate::render::facts::default_processing_config();
                    config.insert("callbackUrl".into(), "https://app/\"cb\"\u{8}".into());
                    journey.processing_config = std::sync::Arc::new(config);
                    journey.user_info = crate::render::facts::UserInfo::Supplied(
                        serde_json::json!({"name": {"firstName": "Zoë\n\u{c}"}})
                            .as_object()
                            .cloned()
                            .unwrap(),
                    );
                }
                journey
            })
            .collect()
    }

    #[test]
    fn every_journey_printer_prints_what_the_walk_finds() {
        let mut printed = std::collections::BTreeSet::new();
        // What must have a printer, from the fields themselves: strings print plainly (their
        // JSON form is left to the walk, for serde_json's escaping), numbers, flags and nulls
        // both ways, objects as JSON. A field added to `Journey` lands here by itself.
        let mut wanted = std::collections::BTreeSet::new();
        for journey in journeys() {
            let value = serde_json::to_value(&journey).unwrap();
            for (field, v) in value.as_object().unwrap() {
                match v {
                    Value::String(_) => {
                        wanted.insert((field.clone(), false));
                    }
                    Value::Object(_) => {
                        wanted.insert((field.clone(), true));
                    }
                    _ => {
                        wanted.insert((field.clone(), false));
                        wanted.insert((field.clone(), true));
                    }
                }
            }
            for field in value.as_object().unwrap().keys() {
                for (json, capture) in [(false, Capture::Plain), (true, Capture::Json)] {
                    let path = vec![field.clone()];
                    let Some(print) = super::journey(&path, json) else {
                        continue;
                    };
                    let mut trie = Trie::default();
                    trie.insert(&["journey".into(), field.clone()], 0, capture);
                    let mut walked = Collected::default();
                    trie.collect("journey", &journey, &mut walked).unwrap();
                    let mut direct = Vec::new();
                    print(&journey, &mut direct);
                    assert_eq!(
                        String::from_utf8_lossy(&direct),
                        String::from_utf8_lossy(walked.get(0).unwrap()),
                        "{field} (json: {json})"
                    );
                    printed.insert((field.clone(), json));
                }
            }
        }
        // Every field has its printers, so the comparison cannot pass by printing nothing.
        assert_eq!(printed, wanted);
    }

    #[test]
    fn paths_that_are_not_fields_have_no_printer() {
        for path in [
            "images.files.12",
            "images.files.x",
            "images",
            "document",
            "other.nickname",
            "document.number.0",
            "",
        ] {
            let keys: Vec<String> = path.split('.').map(str::to_string).collect();
            assert!(person(&keys).is_none(), "{path}");
        }
    }
}

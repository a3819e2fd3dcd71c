//! Sanitizing a real journey document before it is written to disk: every personal value
//! replaced by a fake one of the same shape and JSON type, every key and type kept.
//!
//! What is replaced:
//!
//! - any string that is a URL (captured images, Regula crops, `matchImage`, callback and
//!   redirect URLs): the scheme and host stay, every path segment holding a digit and every
//!   query value is scrambled;
//! - any string that is an IP address, and every key of `ipAddresses`: a documentation
//!   address (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32);
//! - the values of personal keys wherever they appear ([`PERSONAL_KEYS`]: names, dates of
//!   birth, phone, e-mail, address parts, IP host and organisation, coordinates, the journey's
//!   ids and `authKeyForCallback`), and everything below such a key when it holds an object;
//! - every value under `documentIntelligence.extractedFields` (names, numbers, dates, MRZ,
//!   address...) except a few that describe the document type ([`KEPT_EXTRACTED_FIELDS`]), and
//!   every value under `externalApiResponses[*].input` and `.response`; country codes and id
//!   types ([`KEPT_KEYS`]) stay everywhere;
//! - then, as a safety net, any other string value that still contains a value replaced
//!   above.
//!
//! Vocabulary values (`""`, `"NA"`, `"None"`, `"True"`, `"false"`...) are kept, so that the
//! recording still says what the provider said. A fake has the shape of its original: digits
//! stay digits, letters letters of the same case and script, hex stays hex, punctuation and
//! spaces stay, dates stay valid dates in the same format, e-mails stay e-mails.
//!
//! Fakes are deterministic for one key: the same input gives the same fake within a run (so
//! an IP used as a key and as a value stays consistent), and across runs given the same
//! `--salt`. Without a salt, the key is random per run. A fixed unkeyed hash would let anyone
//! recover small inputs such as dates of birth by trying every candidate.

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Number, Value};

/// Keys whose values are personal wherever they appear.
pub const PERSONAL_KEYS: &[&str] = &[
    // names
    "firstName",
    "lastName",
    "names",
    "name",
    "fullName",
    // contact and dates
    "phoneNumber",
    "dateOfBirth",
    "emailAddress",
    "externalReferenceId",
    // address parts (userInfo.address, ipAddresses.<ip>)
    "address",
    "street",
    "street2",
    "city",
    "region",
    "postalCode",
    "host",
    "organization",
    "latitude",
    "longitude",
    // the journey's own identifiers and the callback secret
    "_id",
    "clientId",
    "userId",
    "journeyId",
    "authKeyForCallback",
];

/// Extracted fields that describe the document type, not the person: kept as recorded.
pub const KEPT_EXTRACTED_FIELDS: &[&str] = &[
    "Side1",
    "MRZ Type",
    "Document Class Code",
    "Issuing State Code",
    "Issuing State Name",
    "DL Endorsed",
];

/// Keys kept as recorded even inside a personal object (a country code says little about
/// who someone is, and `userInfo.address.country` is what selects the document flow).
pub const KEPT_KEYS: &[&str] = &["country", "idType"];

/// Values that say what the provider said, not who the person is.
const VOCABULARY: &[&str] = &[
    "", "NA", "None", "none", "True", "False", "true", "false", "null", "NONE", "N/A",
];

/// Replaces personal values by deterministic fakes.
pub struct Sanitizer {
    key: [u8; 32],
    /// `(original, fake)` of every string replaced, for the safety-net pass.
    replaced: Vec<(String, String)>,
}

impl std::fmt::Debug for Sanitizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sanitizer")
    }
}

fn fnv64(seed: u64, bytes: &[u8]) -> u64 {
    crate::hash::Fnv64::seeded(seed).write(bytes).finish()
}

/// Where in the document a value is, as far as the rules care.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Only URLs and IP addresses are replaced here.
    Plain,
    /// Every value here is personal.
    Personal,
}

impl Sanitizer {
    /// A sanitizer whose fakes depend on `salt`: the same salt gives the same fakes.
    pub fn with_salt(salt: &str) -> Self {
        let mut key = [0u8; 32];
        for (i, chunk) in key.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&fnv64(i as u64, salt.as_bytes()).to_le_bytes());
        }
        Sanitizer {
            key,
            replaced: Vec::new(),
        }
    }

    /// A sanitizer with a random key (from the OS, through std's randomly keyed hasher).
    pub fn random() -> Self {
        let state = std::collections::hash_map::RandomState::new();
        let mut key = [0u8; 32];
        for (i, chunk) in key.chunks_mut(8).enumerate() {
            let mut hasher = state.build_hasher();
            hasher.write_usize(i);
            chunk.copy_from_slice(&hasher.finish().to_le_bytes());
        }
        Sanitizer {
            key,
            replaced: Vec::new(),
        }
    }

    fn rng(&self, input: &str) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::from_seed(self.key);
        rng.set_stream(fnv64(0, input.as_bytes()));
        rng
    }

    /// A sanitized copy of a journey document (without the `result` envelope).
    pub fn document(&mut self, document: &Value) -> Value {
        let first = self.walk(document, &[], Scope::Plain);
        self.safety_net(first)
    }

    /// A fake of the same shape for an identifier (a journey id for a file name).
    pub fn identifier(&mut self, input: &str) -> String {
        self.string(input)
    }

    fn walk(&mut self, value: &Value, path: &[&str], scope: Scope) -> Value {
        match value {
            Value::Object(object) => {
                let mut out = Map::with_capacity(object.len());
                for (key, child) in object {
                    let mut child_path = path.to_vec();
                    child_path.push(key);
                    let child_scope = self.scope_of(path, key, scope);
                    let new_key = if path == ["ipAddresses"] {
                        self.ip_or_string(key)
                    } else {
                        key.clone()
                    };
                    out.insert(new_key, self.walk(child, &child_path, child_scope));
                }
                Value::Object(out)
            }
            Value::Array(items) => {
                let mut child_path = path.to_vec();
                child_path.push("[]");
                Value::Array(
                    items
                        .iter()
                        .map(|v| self.walk(v, &child_path, scope))
                        .collect(),
                )
            }
            Value::String(s) => {
                if let Some(url) = self.url(s) {
                    Value::String(url)
                } else if s.parse::<IpAddr>().is_ok() {
                    Value::String(self.ip_or_string(s))
                } else if scope == Scope::Personal {
                    Value::String(self.string(s))
                } else {
                    value.clone()
                }
            }
            Value::Number(n) if scope == Scope::Personal => {
                let key = path.last().copied().unwrap_or("");
                Value::Number(self.number(n, key))
            }
            _ => value.clone(),
        }
    }

    /// The scope of `key`'s value, inside an object at `path` whose own scope is `scope`.
    fn scope_of(&self, path: &[&str], key: &str, scope: Scope) -> Scope {
        if KEPT_KEYS.contains(&key) {
            return Scope::Plain;
        }
        if scope == Scope::Personal {
            return Scope::Personal;
        }
        if path == ["documentIntelligence", "extractedFields"] {
            return if KEPT_EXTRACTED_FIELDS.contains(&key) {
                Scope::Plain
            } else {
                Scope::Personal
            };
        }
        if path == ["externalApiResponses", "[]"] && (key == "input" || key == "response") {
            return Scope::Personal;
        }
        if PERSONAL_KEYS.contains(&key) {
            return Scope::Personal;
        }
        Scope::Plain
    }

    fn remember(&mut self, original: &str, fake: &str) {
        if original != fake
            && original.chars().count() >= 4
            && !self.replaced.iter().any(|(o, _)| o == original)
        {
            self.replaced.push((original.to_string(), fake.to_string()));
        }
    }

    /// A fake string of the same shape.
    fn string(&mut self, original: &str) -> String {
        if VOCABULARY.contains(&original) {
            return original.to_string();
        }
        if let Some(url) = self.url(original) {
            return url;
        }
        if original.parse::<IpAddr>().is_ok() {
            return self.ip_or_string(original);
        }
        let mut rng = self.rng(original);
        let fake = if let Some(date) = fake_date(original, &mut rng) {
            date
        } else if let Some(local) = email_local_part(original) {
            format!("{}@example.com", scramble(local, &mut rng))
        } else {
            scramble(original, &mut rng)
        };
        self.remember(original, &fake);
        fake
    }

    fn ip_or_string(&mut self, original: &str) -> String {
        let fake = match original.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => {
                let mut rng = self.rng(original);
                let net = ["192.0.2", "198.51.100", "203.0.113"][rng.random_range(0..3usize)];
                format!("{net}.{}", rng.random_range(1..255u8))
            }
            Ok(IpAddr::V6(_)) => {
                let mut rng = self.rng(original);
                format!(
                    "2001:db8::{:x}:{:x}",
                    rng.random_range(1..0xffffu32),
                    rng.random_range(1..0xffffu32)
                )
            }
            Err(_) => return self.string(original),
        };
        self.remember(original, &fake);
        fake
    }

    /// A fake URL, or `None` when `s` is not an http(s) URL.
    fn url(&mut self, s: &str) -> Option<String> {
        let (scheme, rest) = s.split_once("://")?;
        if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
            return None;
        }
        let mut rng = self.rng(s);
        let (authority, tail) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let host = match authority.rsplit_once('@') {
            // Credentials in a URL are never kept.
            Some((_, host)) => host,
            None => authority,
        };
        let host = match host.parse::<IpAddr>() {
            Ok(_) => self.ip_or_string(host),
            Err(_) => host.to_string(),
        };
        let (before_fragment, fragment) = match tail.split_once('#') {
            Some((a, f)) => (a, Some(f)),
            None => (tail, None),
        };
        let (path, query) = match before_fragment.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (before_fragment, None),
        };
        let path: Vec<String> = path
            .split('/')
            .map(|segment| {
                if segment.chars().any(|c| c.is_ascii_digit()) {
                    let (stem, ext) = match segment.rsplit_once('.') {
                        Some((stem, ext)) if ext.chars().all(|c| c.is_ascii_alphabetic()) => {
                            (stem, Some(ext))
                        }
                        _ => (segment, None),
                    };
                    let stem = scramble(stem, &mut rng);
                    match ext {
                        Some(ext) => format!("{stem}.{ext}"),
                        None => stem,
                    }
                } else {
                    segment.to_string()
                }
            })
            .collect();
        let mut out = format!("{scheme}://{host}{}", path.join("/"));
        if let Some(query) = query {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, v)) => format!("{k}={}", scramble(v, &mut rng)),
                    None => pair.to_string(),
                })
                .collect();
            out.push('?');
            out.push_str(&pairs.join("&"));
        }
        if let Some(fragment) = fragment {
            out.push('#');
            out.push_str(&scramble(fragment, &mut rng));
        }
        self.remember(s, &out);
        Some(out)
    }

    /// A fake number of the same kind: an integer with as many digits, or a coordinate with
    /// as many decimals.
    fn number(&mut self, original: &Number, key: &str) -> Number {
        let text = original.to_string();
        let mut rng = self.rng(&text);
        if original.is_f64() {
            let decimals = text.split_once('.').map(|(_, d)| d.len()).unwrap_or(1);
            let bound = if key == "longitude" { 180.0 } else { 90.0 };
            let value = rng.random_range(-bound..bound);
            let factor = 10f64.powi(decimals.min(15) as i32);
            let rounded = (value * factor).round() / factor;
            Number::from_f64(rounded).unwrap_or_else(|| Number::from(0))
        } else {
            let digits = text.trim_start_matches('-').len().clamp(1, 18) as u32;
            let low = if digits == 1 {
                0
            } else {
                10u64.pow(digits - 1)
            };
            let high = 10u64.pow(digits);
            Number::from(rng.random_range(low..high))
        }
    }

    /// Replace whatever string value still contains a replaced value. Keys are left alone:
    /// they are names (the keys of `ipAddresses`, the only data keys, are already replaced),
    /// and a key must stay exactly as recorded.
    fn safety_net(&self, value: Value) -> Value {
        match value {
            Value::Object(object) => Value::Object(
                object
                    .into_iter()
                    .map(|(k, v)| (k, self.safety_net(v)))
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| self.safety_net(v)).collect())
            }
            Value::String(s) => Value::String(self.scrub(s)),
            other => other,
        }
    }

    fn scrub(&self, mut s: String) -> String {
        for (original, fake) in &self.replaced {
            if s.contains(original.as_str()) {
                s = s.replace(original.as_str(), fake);
            }
        }
        s
    }
}

/// The part before `@` when `s` looks like an e-mail address.
fn email_local_part(s: &str) -> Option<&str> {
    let (local, domain) = s.split_once('@')?;
    (!local.is_empty() && domain.contains('.') && !s.contains(char::is_whitespace)).then_some(local)
}

/// A valid fake date in the format of `s`, when `s` is one of `dd/mm/yyyy`, `dd-mm-yyyy`,
/// `dd.mm.yyyy`, `yyyy-mm-dd`, `yyyy/mm/dd`.
fn fake_date(s: &str, rng: &mut ChaCha8Rng) -> Option<String> {
    let bytes = s.as_bytes();
    let sep = |i: usize| bytes.get(i).copied();
    let digits = |range: std::ops::Range<usize>| {
        s.get(range)
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
    };
    let year = rng.random_range(1950..2040u32);
    let month = rng.random_range(1..13u32);
    let day = rng.random_range(1..29u32);
    if s.len() == 10 && digits(0..2) && digits(3..5) && digits(6..10) {
        let (a, b) = (sep(2)?, sep(5)?);
        if a == b && matches!(a, b'/' | b'-' | b'.') {
            let a = char::from(a);
            return Some(format!("{day:02}{a}{month:02}{a}{year:04}"));
        }
    }
    if s.len() == 10 && digits(0..4) && digits(5..7) && digits(8..10) {
        let (a, b) = (sep(4)?, sep(7)?);
        if a == b && matches!(a, b'/' | b'-') {
            let a = char::from(a);
            return Some(format!("{year:04}{a}{month:02}{a}{day:02}"));
        }
    }
    None
}

/// The same shape with other characters: digits for digits (a non-zero lead stays non-zero),
/// letters for letters of the same case and script, hex for hex in hex strings; everything
/// else kept.
pub fn scramble(s: &str, rng: &mut ChaCha8Rng) -> String {
    let hex = s.chars().any(|c| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let mut previous_digit = false;
    s.chars()
        .map(|c| {
            let out = if c.is_ascii_digit() {
                if !previous_digit && c != '0' {
                    char::from(b'1' + rng.random_range(0..9u8))
                } else {
                    char::from(b'0' + rng.random_range(0..10u8))
                }
            } else if hex && c.is_ascii_hexdigit() {
                let pool: &[u8] = if c.is_ascii_uppercase() {
                    b"0123456789ABCDEF"
                } else {
                    b"0123456789abcdef"
                };
                char::from(pool[rng.random_range(0..16usize)])
            } else if c.is_ascii_lowercase() {
                char::from(b'a' + rng.random_range(0..26u8))
            } else if c.is_ascii_uppercase() {
                char::from(b'A' + rng.random_range(0..26u8))
            } else if c.is_alphabetic() {
                same_script_letter(c, rng)
            } else {
                c
            };
            previous_digit = c.is_ascii_digit();
            out
        })
        .collect()
}

/// Another letter from the same 128-character block as `c` (Arabic for Arabic, Cyrillic for
/// Cyrillic...), or `x` when a few draws find none.
fn same_script_letter(c: char, rng: &mut ChaCha8Rng) -> char {
    let base = u32::from(c) & !0x7f;
    for _ in 0..16 {
        if let Some(candidate) = char::from_u32(base + rng.random_range(0..0x80u32)) {
            if candidate.is_alphabetic() {
                return candidate;
            }
        }
    }
    'x'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::schema::{MapPaths, Schema};
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "processingConfig": {"callbackUrl": "https://hooks.acme.test/kyc/cb?secret=s3cr3t", "authKeyForCallback": "k-9f8e7d6c", "redirectTime": 10},
            "capturedData": {
                "images": {"frontDoc": "https://persist.signzy.tech/api/files/979758139/download/74e88976d2f34f31af205db4a14ec8d5f65cf348df5147a18e2a4bfa2ef27427.png", "backDoc": ""},
                "location": {"latitude": 12.9716123, "longitude": 77.5946456},
                "country": "IN"
            },
            "documentIntelligence": {"extractedFields": {
                "Date of Birth": "14/03/1987", "names": "Ravi Kumar", "Side1": "front",
                "Document Number": "KA0120190001234", "Sex": "ذكر",
                "Split Address": {"state": [["KARNATAKA", "KA"]], "pin": ["560001"]}
            }},
            "_id": "65a1f0c2e4b0d1a2b3c4d5e6",
            "userInfo": {"phoneNumber": "+919876543210", "emailAddress": "ravi.kumar@mail.test", "dateOfBirth": "", "name": {"firstName": "Ravi", "lastName": "Kumar"}, "address": {"street": "12 MG Road", "country": "IN"}},
            "externalApiResponses": [{"api": "resident id card verification", "input": {"emirates id number": "784198712345671"}, "response": {"overallStatus": "true"}}],
            "ipAddresses": {"49.205.33.17": {"host": "49-205-33-17.broadband.test", "vpn": "false", "latitude": "12.97"}},
            "deletionTimeLimit": null
        })
    }

    #[test]
    fn keeps_keys_and_types_and_replaces_personal_values() {
        let original = sample();
        let out = Sanitizer::with_salt("t").document(&original);
        let maps = MapPaths::otk();
        assert_eq!(
            Schema::infer([&original], &maps),
            Schema::infer([&out], &maps)
        );
        let text = out.to_string();
        for secret in [
            "s3cr3t",
            "k-9f8e7d6c",
            "979758139",
            "74e88976d2f3",
            "12.9716123",
            "14/03/1987",
            "Ravi",
            "Kumar",
            "KA0120190001234",
            "ذكر",
            "KARNATAKA",
            "560001",
            "65a1f0c2e4b0d1a2b3c4d5e6",
            "9876543210",
            "ravi.kumar",
            "784198712345671",
            "49.205.33.17",
            "49-205-33-17",
        ] {
            assert!(!text.contains(secret), "{secret} survived in {text}");
        }
        // What is not personal stays as recorded.
        assert_eq!(
            out["documentIntelligence"]["extractedFields"]["Side1"],
            "front"
        );
        assert_eq!(out["capturedData"]["country"], "IN");
        assert_eq!(out["userInfo"]["address"]["country"], "IN");
        assert_ne!(out["userInfo"]["address"]["street"], "12 MG Road");
        assert_eq!(out["capturedData"]["images"]["backDoc"], "");
        assert_eq!(
            out["externalApiResponses"][0]["response"]["overallStatus"],
            "true"
        );
        assert_eq!(
            out["ipAddresses"]
                .as_object()
                .unwrap()
                .values()
                .next()
                .unwrap()["vpn"],
            "false"
        );
        assert_eq!(out["processingConfig"]["redirectTime"], 10);
    }

    #[test]
    fn fakes_keep_their_shape() {
        let out = Sanitizer::with_salt("t").document(&sample());
        let fields = &out["documentIntelligence"]["extractedFields"];
        let dob = fields["Date of Birth"].as_str().unwrap();
        assert_eq!(dob.len(), 10);
        assert_eq!(&dob[2..3], "/");
        assert!(fields["Sex"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| ('\u{600}'..'\u{680}').contains(&c)));
        let id = out["_id"].as_str().unwrap();
        assert!(
            id.len() == 24 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
        let image = out["capturedData"]["images"]["frontDoc"].as_str().unwrap();
        assert!(
            image.starts_with("https://persist.signzy.tech/api/files/"),
            "{image}"
        );
        assert!(image.ends_with(".png"));
        let ip = out["ipAddresses"]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap();
        assert!(ip.parse::<IpAddr>().is_ok(), "{ip}");
        assert!(out["userInfo"]["emailAddress"]
            .as_str()
            .unwrap()
            .ends_with("@example.com"));
        assert!(out["capturedData"]["location"]["latitude"].is_f64());
        assert!(out["userInfo"]["phoneNumber"]
            .as_str()
            .unwrap()
            .starts_with('+'));
    }

    #[test]
    fn the_safety_net_reaches_other_strings_but_never_keys() {
        let doc = json!({
            "userInfo": {"name": {"lastName": "Surname"}, "emailAddress": "zed.q@mail.test"},
            "documentIntelligence": {"extractedFields": {"Surname": "Surname"}},
            "message": "Journey of Surname completed",
            "userId": "zed.q@mail.test"
        });
        let out = Sanitizer::with_salt("t").document(&doc);
        assert_eq!(
            Schema::infer([&doc], &MapPaths::none()).paths(),
            Schema::infer([&out], &MapPaths::none()).paths()
        );
        let text = out.to_string();
        assert!(!text.contains("zed.q"), "{text}");
        assert!(
            !out["message"].as_str().unwrap().contains("Surname"),
            "{text}"
        );
        assert_ne!(
            out["documentIntelligence"]["extractedFields"]["Surname"],
            "Surname"
        );
    }

    #[test]
    fn the_same_salt_gives_the_same_fakes() {
        let a = Sanitizer::with_salt("one").document(&sample());
        let b = Sanitizer::with_salt("one").document(&sample());
        let c = Sanitizer::with_salt("two").document(&sample());
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}

//! The journey facts a template sees under `journey`: ids, flow, `processingConfig`,
//! `userInfo` and timestamps, whether the journey was created here or is known only by its id.
//!
//! A journey read by id alone is *stateless*: everything is drawn from the journey's RNG
//! ([`Journey::stateless`]), with timestamps in January 2026 that never change with the clock.
//! A created journey's facts come from its record (`crate::journey::record`). Both render the
//! same way from here.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::sync::{Arc, LazyLock};

use super::person::Person;
use crate::text::{ascii_string, hex16};
use crate::time::iso_from_millis;

/// The journey facts a template can use, under `journey` in its context.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Journey {
    pub id: String,
    pub flow_id: String,
    pub flow_version: u32,
    /// Mongo-style 24-hex `_id`.
    pub db_id: String,
    pub client_id: String,
    pub user_id: String,
    /// The effective `processingConfig`, in the provider's key order. Shared: every stateless
    /// journey has the defaults, and copying a map per new journey was a visible cost.
    #[serde(serialize_with = "serialize_shared")]
    pub processing_config: Arc<Map<String, Value>>,
    /// `userInfo` as the app supplied it (only the supplied fields).
    pub user_info: UserInfo,
    /// Epoch milliseconds.
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    /// ISO-8601, the one timestamp the provider writes as a string.
    pub updated_at: String,
    /// ISO-8601 completion times of the document and selfie analyses.
    pub document_completed_at: String,
    pub selfie_completed_at: String,
    pub callback_sent: bool,
    /// Whether the flow's IP check is on for this journey (`ipAddresses` holds the IP's record,
    /// else only the provider's message): the scenario's setting unless the journey has its own.
    pub ip_check: bool,
}

/// A journey's `userInfo`: what the app sent to create-journey-url, or, for a journey read by
/// id alone, the person's phone, date of birth, e-mail and name as an app would have sent them.
/// The second is kept as those five strings and serialized as the map they make, in that key
/// order; building the map (SipHash on every key) was a visible share of a new journey.
#[derive(Debug, Clone)]
pub enum UserInfo {
    Supplied(Map<String, Value>),
    Drawn {
        phone_number: String,
        date_of_birth: String,
        email_address: String,
        first_name: String,
        last_name: String,
    },
}

impl UserInfo {
    /// As a JSON map (a record keeps it so).
    pub fn into_map(self) -> Map<String, Value> {
        match self {
            UserInfo::Supplied(map) => map,
            drawn => match serde_json::to_value(&drawn) {
                Ok(Value::Object(map)) => map,
                _ => Map::new(),
            },
        }
    }

    /// Each top-level field present, with whether it is `null`.
    pub fn each_field(&self, mut f: impl FnMut(&str, bool)) {
        match self {
            UserInfo::Supplied(map) => map.iter().for_each(|(k, v)| f(k, v.is_null())),
            UserInfo::Drawn { .. } => ["phoneNumber", "dateOfBirth", "emailAddress", "name"]
                .into_iter()
                .for_each(|k| f(k, false)),
        }
    }
}

impl Serialize for UserInfo {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            UserInfo::Supplied(map) => map.serialize(serializer),
            UserInfo::Drawn {
                phone_number,
                date_of_birth,
                email_address,
                first_name,
                last_name,
            } => {
                #[derive(Serialize)]
                #[serde(rename_all = "camelCase")]
                struct Name<'a> {
                    first_name: &'a str,
                    last_name: &'a str,
                }
                let mut map = serializer.serialize_map(Some(4))?;
                map.serialize_entry("phoneNumber", phone_number)?;
                map.serialize_entry("dateOfBirth", date_of_birth)?;
                map.serialize_entry("emailAddress", email_address)?;
                map.serialize_entry(
                    "name",
                    &Name {
                        first_name,
                        last_name,
                    },
                )?;
                map.end()
            }
        }
    }
}

/// The instant stateless journeys are created around: fixed, so that bodies never change with
/// the clock (2026-01-01T00:00:00Z).
const STATELESS_EPOCH_MS: i64 = 1_767_225_600_000;

/// A UUID (version 4 layout) from the journey's RNG.
pub fn uuid(rng: &mut ChaCha8Rng) -> String {
    let a: u32 = rng.random();
    let b: u16 = rng.random();
    let c: u16 = (rng.random::<u16>() & 0x0fff) | 0x4000;
    let d: u16 = (rng.random::<u16>() & 0x3fff) | 0x8000;
    let e: u64 = rng.random::<u64>() & 0xffff_ffff_ffff;
    let mut text = [b'-'; 36];
    text[0..8].copy_from_slice(&hex16(u64::from(a))[8..]);
    text[9..13].copy_from_slice(&hex16(u64::from(b))[12..]);
    text[14..18].copy_from_slice(&hex16(u64::from(c))[12..]);
    text[19..23].copy_from_slice(&hex16(u64::from(d))[12..]);
    text[24..36].copy_from_slice(&hex16(e)[4..]);
    ascii_string(&text)
}

/// A Mongo ObjectId-like 24-hex id.
pub fn object_id(rng: &mut ChaCha8Rng) -> String {
    let a: u64 = rng.random();
    let b: u32 = rng.random();
    let mut text = [0u8; 24];
    text[0..16].copy_from_slice(&hex16(a));
    text[16..24].copy_from_slice(&hex16(u64::from(b))[8..]);
    ascii_string(&text)
}

/// The provider's defaults for `processingConfig` (the documented sample's values), with the
/// keys in the documented order. `authKeyForCallback` is left out: the provider omits it when
/// it was never set.
pub fn default_processing_config() -> Map<String, Value> {
    shared_default_processing_config().as_ref().clone()
}

/// [`default_processing_config`], built once and shared by every stateless journey.
static DEFAULTS: LazyLock<Arc<Map<String, Value>>> = LazyLock::new(|| {
    Arc::new(
        match json!({
            "callbackUrl": "",
            "redirectTime": 10,
            "language": "en",
            "successRedirectUrl": "",
            "failureRedirectUrl": "",
            "journeyLinkValidity": 3600,
            "journeySessionExpiry": 600
        }) {
            Value::Object(map) => map,
            _ => Map::new(),
        },
    )
});

fn shared_default_processing_config() -> Arc<Map<String, Value>> {
    DEFAULTS.clone()
}

/// `processing_config` as JSON: written once for the shared defaults of stateless journeys,
/// serialized for the others.
pub fn push_processing_config(config: &Arc<Map<String, Value>>, out: &mut Vec<u8>) {
    static DEFAULTS_JSON: LazyLock<Vec<u8>> =
        LazyLock::new(|| serde_json::to_vec(&**DEFAULTS).unwrap_or_default());
    if Arc::ptr_eq(config, &DEFAULTS) && !DEFAULTS_JSON.is_empty() {
        out.extend_from_slice(&DEFAULTS_JSON);
    } else {
        // Writing a map of JSON values into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &**config);
    }
}

fn serialize_shared<S: serde::Serializer>(
    map: &Arc<Map<String, Value>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    map.as_ref().serialize(serializer)
}

impl Journey {
    /// A journey known only by its id, everything else drawn from `rng` (which has already
    /// drawn `person`). The pre-fill names the person as the app would have sent them.
    pub fn stateless(id: &str, client_id: &str, rng: &mut ChaCha8Rng, person: &Person) -> Self {
        let created_at = STATELESS_EPOCH_MS + rng.random_range(0..30 * 86_400_000i64);
        let started_at = created_at + rng.random_range(2_000..60_000i64);
        let completed_at = started_at + rng.random_range(30_000..300_000i64);
        let updated_at = completed_at + rng.random_range(1..50i64);
        let document_done = completed_at - rng.random_range(15_000..25_000i64);
        let selfie_done = completed_at - rng.random_range(1_000..10_000i64);
        let user_info = UserInfo::Drawn {
            phone_number: person.phone.clone(),
            date_of_birth: person.identity.date_of_birth.clone(),
            email_address: person.email.clone(),
            first_name: person.identity.first_name.clone(),
            last_name: person.identity.last_name.clone(),
        };
        Journey {
            id: id.to_string(),
            flow_id: uuid(rng),
            flow_version: 1,
            db_id: object_id(rng),
            client_id: client_id.to_string(),
            user_id: uuid(rng),
            processing_config: shared_default_processing_config(),
            user_info,
            created_at,
            started_at: Some(started_at),
            completed_at: Some(completed_at),
            updated_at: iso_from_millis(updated_at),
            document_completed_at: iso_from_millis(document_done),
            selfie_completed_at: iso_from_millis(selfie_done),
            callback_sent: false,
            ip_check: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_drawn_user_info_is_the_map_an_app_would_have_sent() {
        let drawn = UserInfo::Drawn {
            phone_number: "+9715\"1".into(),
            date_of_birth: "01/02/1990".into(),
            email_address: "a.b1@example.com".into(),
            first_name: "Zoë".into(),
            last_name: "O'Neil".into(),
        };
        let expected = serde_json::json!({
            "phoneNumber": "+9715\"1",
            "dateOfBirth": "01/02/1990",
            "emailAddress": "a.b1@example.com",
            "name": {"firstName": "Zoë", "lastName": "O'Neil"}
        });
        // Same text (key order included) as the map it stands for.
        assert_eq!(
            serde_json::to_string(&drawn).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
        let mut fields = Vec::new();
        drawn.each_field(|k, null| fields.push((k.to_string(), null)));
        let map = drawn.into_map();
        assert_eq!(Value::Object(map.clone()), expected);
        let supplied: Vec<(String, bool)> =
            map.iter().map(|(k, v)| (k.clone(), v.is_null())).collect();
        assert_eq!(fields, supplied);
    }

    #[test]
    fn ids_read_as_format_writes_them() {
        for seed in 0..64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut same = rng.clone();
            let a: u32 = same.random();
            let b: u16 = same.random();
            let c: u16 = (same.random::<u16>() & 0x0fff) | 0x4000;
            let d: u16 = (same.random::<u16>() & 0x3fff) | 0x8000;
            let e: u64 = same.random::<u64>() & 0xffff_ffff_ffff;
            assert_eq!(
                uuid(&mut rng),
                format!("{a:08x}-{b:04x}-{c:04x}-{d:04x}-{e:012x}")
            );
            let x: u64 = same.random();
            let y: u32 = same.random();
            assert_eq!(object_id(&mut rng), format!("{x:016x}{y:08x}"));
        }
    }
}

//! The fake person behind a journey: names, dates, document, address, IP and its record.
//!
//! Everything is drawn from one ChaCha RNG seeded by [`stable_seed`] of (global seed, journey
//! id), in a fixed order, so a journey id always yields the same person on every run and
//! machine (for one build: a new `fake` release may change its word lists). The values take
//! the forms the provider uses on the wire: `dd/mm/yyyy` dates, Regula document descriptors,
//! IPQualityScore-style records in which every value is a string.

use fake::locales::{Data, EN};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use serde::Serialize;
use std::borrow::Cow;
use std::sync::LazyLock;

use super::collect::verbatim;
use super::family::{self, fill_pattern, Family, MrzKind, Place as FamilyPlace};
use crate::hash::stable_seed;
use crate::text::{
    ascii_string, fill_digits, finish, hex16, push_all, push_hex, push_lower, push_padded,
    push_uint, push_upper,
};
use crate::time::civil_from_days;

/// The RNG for one journey.
pub fn journey_rng(seed: u64, journey_id: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(stable_seed(seed, journey_id))
}

/// A name and a date of birth, the part of a person that `userInfo` pre-fills.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub first_name: String,
    pub last_name: String,
    pub full_name: String,
    /// `SURNAME GIVEN`, as Regula's "Surname And Given Names" field.
    pub surname_and_given_names: String,
    /// `dd/mm/yyyy`, the form extracted fields use.
    pub date_of_birth: String,
    /// `yyyy-mm-dd`.
    pub date_of_birth_iso: String,
    /// Whole years on the reference day, as Regula's "Age" string.
    pub age: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// The document family's name (`in_dl`, `passport`...): templates branch on it and on
    /// the flags below, which a family decides.
    pub family: &'static str,
    /// Whether the document has a back side that was captured and analysed.
    pub has_back: bool,
    /// Whether Regula finds an MRZ on the front / on the back (`dMRZ`).
    pub mrz_front: bool,
    pub mrz_back: bool,
    /// Whether the family prints an MRZ at all (`detailsOptical.mrz`).
    pub has_mrz: bool,
    /// Regula's `dFormat` (0 ID-1 cards, 2 passport booklets).
    pub d_format: u32,
    /// Whether the flow verifies the card with the issuing authority (the UAE's ICP).
    pub icp_check: bool,
    /// `extractedFields` as JSON, written by `extract::settle` for the scenario and pre-fill.
    pub extracted_fields: JsonText,
    /// `extractedFieldErrors` as JSON, written with it.
    pub extracted_field_errors: JsonText,
    /// The family itself.
    #[serde(skip)]
    pub spec: &'static Family,
    #[serde(skip)]
    pub issue_day: i64,
    #[serde(skip)]
    pub male: bool,
    /// ISO 3166 alpha-2 country the user chose (`capturedData.country`).
    pub country: &'static str,
    pub id_type: &'static str,
    /// Regula `DocumentName` for the front and back side.
    pub name_front: &'static str,
    pub name_back: &'static str,
    pub icao_code: &'static str,
    pub country_name: &'static str,
    pub description: &'static str,
    pub d_type: u32,
    pub d_year: &'static str,
    pub class_code: &'static str,
    pub number: String,
    pub date_of_issue: String,
    pub date_of_expiry: String,
    /// A date of expiry already in the past, for expired-document scenarios.
    pub date_of_expiry_past: String,
    /// The issue date of that expired document (the same ten-year validity), with its years
    /// since issue and age at issue, so an expired document is never issued after it expired.
    pub date_of_issue_past: String,
    pub years_since_issue_past: String,
    pub age_at_issue_past: String,
    /// The card's own number, beside the identity number in `number` (the UAE card's nine
    /// digits, which the resident-ID verification returns as `eidCardNumber`).
    pub card_number: String,
    pub years_since_issue: String,
    pub age_at_issue: String,
    /// Days left until expiry, as Regula's `RemainderTerm` string.
    pub remainder_term: String,
    pub place_of_issue: &'static str,
    pub sex: &'static str,
    pub mrz: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub street: String,
    pub street2: String,
    pub city: Cow<'static, str>,
    pub region: Cow<'static, str>,
    pub postal_code: String,
    pub country: &'static str,
    /// One line, as the IP record's `address` holds it.
    pub line: String,
    /// Upper case, as Regula's "Split Address" of Indian licences holds them.
    pub district_upper: Cow<'static, str>,
    pub region_upper: Cow<'static, str>,
    pub region_code: Cow<'static, str>,
}

/// The IP the journey was opened from, and the record an IP-reputation service gives for it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpRecord {
    pub ip: String,
    pub asn: String,
    pub isp: &'static str,
    pub organization: String,
    pub host: String,
    pub country_code: &'static str,
    pub region: &'static str,
    pub city: &'static str,
    /// Strings, as the provider sends them ("19.76").
    pub latitude: &'static str,
    pub longitude: &'static str,
    pub timezone: &'static str,
    pub address: String,
}

/// Everything a template may say about the person behind a journey.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    #[serde(flatten)]
    pub identity: Identity,
    /// A different name and date of birth, for scenarios where the pre-fill disagrees.
    pub other: Identity,
    /// Father's or guardian's name, upper case, as Indian licences print it.
    pub guardian_name: String,
    pub nationality: &'static str,
    pub nationality_code: &'static str,
    pub email: String,
    pub phone: String,
    pub document: Document,
    pub address: Address,
    pub ip: IpRecord,
    /// Where the device was when the document was captured (numbers, as on the wire).
    pub latitude: f64,
    pub longitude: f64,
    /// Captured images and Regula crops, in the provider's file-host URL layout.
    pub images: Images,
    /// `matchPercentage`: the document against the pre-fill, set by `extract::settle`.
    #[serde(rename = "match")]
    pub match_percentage: Match,
}

/// JSON text made once per journey and printed whole (`{{ x | json_encode() | safe }}`). It is
/// written in serde_json's compact form, so that parsing it and writing it again (what Tera's
/// context and the fast path's walk do) gives the same bytes the printer copies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonText(pub Vec<u8>);

impl JsonText {
    /// The JSON, or `empty` before the person was settled. Kept as bytes: everything written
    /// into it came from `&str`s, and checking a kilobyte of UTF-8 per journey was a visible
    /// cost where only the slow paths need a `str`.
    pub fn bytes<'a>(&'a self, empty: &'a [u8]) -> &'a [u8] {
        if self.0.is_empty() {
            empty
        } else {
            &self.0
        }
    }
}

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Only Tera's context and the walk get here; the fast path prints the bytes itself.
        let value: serde_json::Value =
            serde_json::from_slice(self.bytes(b"null")).unwrap_or(serde_json::Value::Null);
        value.serialize(serializer)
    }
}

/// `matchPercentage`'s four strings (spec §3.6): `"NA"` where nothing was sent to compare,
/// else a percentage.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    pub full_name: Cow<'static, str>,
    pub date_of_birth: Cow<'static, str>,
    pub address: Cow<'static, str>,
    pub document_number: Cow<'static, str>,
}

impl Default for Match {
    fn default() -> Self {
        Match {
            full_name: Cow::Borrowed("NA"),
            date_of_birth: Cow::Borrowed("NA"),
            address: Cow::Borrowed("NA"),
            document_number: Cow::Borrowed("NA"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Images {
    pub front_doc: FileUrl,
    pub back_doc: FileUrl,
    pub selfie: FileUrl,
    /// Further file URLs, for authenticity and graphic-field crops.
    pub files: [FileUrl; Person::FILES],
}

/// A URL on the provider's file host (`https://persist.signzy.tech/api/files/{folder}/download/
/// {64 hex}.png`), kept as the numbers it is made of and written out only when serialized.
/// A new journey has fifteen; as `String`s each cost an allocation, a UTF-8 check, a JSON
/// escape scan and a second copy, a tenth of drawing and rendering the journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileUrl {
    folder: u32,
    digest: [u64; 4],
}

impl FileUrl {
    const PREFIX: &str = "https://persist.signzy.tech/api/files/";
    const LEN: usize = Self::PREFIX.len() + 9 + "/download/".len() + 64 + ".png".len();

    fn draw(rng: &mut ChaCha8Rng) -> Self {
        // The draws (and so the URLs) are the ones the String form made: the folder, then the
        // digest sixteen hex digits at a time.
        let folder = rng.random_range(900_000_000..999_999_999u32);
        FileUrl {
            folder,
            digest: [rng.random(), rng.random(), rng.random(), rng.random()],
        }
    }

    /// The URL, appended to `out`.
    pub fn push_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(Self::PREFIX.as_bytes());
        out.extend_from_slice(itoa::Buffer::new().format(self.folder).as_bytes());
        out.extend_from_slice(b"/download/");
        for part in self.digest {
            out.extend_from_slice(&hex16(part));
        }
        out.extend_from_slice(b".png");
    }

    /// The URL, written into `buf`.
    fn write<'b>(&self, buf: &'b mut [u8; Self::LEN]) -> &'b str {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            buf[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(Self::PREFIX.as_bytes());
        put(itoa::Buffer::new().format(self.folder).as_bytes());
        put(b"/download/");
        for part in self.digest {
            put(&hex16(part));
        }
        put(b".png");
        std::str::from_utf8(&buf[..at]).unwrap_or_default()
    }
}

impl std::fmt::Display for FileUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.write(&mut [0; Self::LEN]))
    }
}

impl Serialize for FileUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Digits, hex and fixed ASCII: nothing in it that JSON escapes.
        verbatim(self.write(&mut [0; Self::LEN]), serializer)
    }
}

impl Person {
    /// How many further file URLs (`images.files`) a person has.
    pub const FILES: usize = 12;
}

/// The day (days since 1970-01-01) that ages and expiry dates are counted from. A fixed day,
/// not today, so that a body never changes with the calendar.
const REFERENCE_DAY: i64 = 20_454; // 2026-01-01

fn ddmmyyyy(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    let mut text = *b"00/00/0000";
    fill_digits(&mut text[0..2], u64::from(d));
    fill_digits(&mut text[3..5], u64::from(m));
    // Every date drawn here is within a century of the reference day.
    fill_digits(&mut text[6..10], y.unsigned_abs());
    ascii_string(&text)
}

fn iso_date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    let mut text = *b"0000-00-00";
    fill_digits(&mut text[0..4], y.unsigned_abs());
    fill_digits(&mut text[5..7], u64::from(m));
    fill_digits(&mut text[8..10], u64::from(d));
    ascii_string(&text)
}

fn int_string(value: i64) -> String {
    itoa::Buffer::new().format(value).to_owned()
}

/// One of `words`, drawn from `rng`.
fn pick(rng: &mut ChaCha8Rng, words: &[&'static str]) -> &'static str {
    words
        .get(rng.random_range(0..words.len().max(1)))
        .copied()
        .unwrap_or("")
}

/// `n` random decimal digits, up to eighteen per draw (one draw per number, not per digit).
fn push_digits(rng: &mut ChaCha8Rng, n: usize, out: &mut Vec<u8>) {
    let mut left = n;
    while left > 0 {
        let k = left.min(18);
        let value = rng.random_range(0..10u64.pow(k as u32));
        push_padded(out, value, k);
        left -= k;
    }
}

fn digits(rng: &mut ChaCha8Rng, n: usize) -> String {
    let mut out = Vec::with_capacity(n);
    push_digits(rng, n, &mut out);
    finish(out)
}

/// `n` lowercase hex digits, sixteen per draw (image URLs need 64 each, on the hot path).
fn push_random_hex(rng: &mut ChaCha8Rng, n: usize, out: &mut Vec<u8>) {
    let mut left = n;
    while left > 0 {
        let k = left.min(16);
        push_hex(out, rng.random(), k);
        left -= k;
    }
}

/// A name and a date of birth, and that date as a day number (for the dates derived from it).
fn identity(rng: &mut ChaCha8Rng) -> (Identity, i64) {
    let first_name = pick(rng, EN::NAME_FIRST_NAME);
    let last_name = pick(rng, EN::NAME_LAST_NAME);
    // Adults between 19 and 70 on the reference day.
    let birth = REFERENCE_DAY - rng.random_range(19 * 365..70 * 365);
    let mut full_name = Vec::with_capacity(first_name.len() + 1 + last_name.len());
    full_name.extend_from_slice(first_name.as_bytes());
    full_name.push(b' ');
    full_name.extend_from_slice(last_name.as_bytes());
    let mut surname_and_given_names = Vec::with_capacity(full_name.len());
    push_upper(&mut surname_and_given_names, last_name);
    surname_and_given_names.push(b' ');
    push_upper(&mut surname_and_given_names, first_name);
    let identity = Identity {
        full_name: finish(full_name),
        surname_and_given_names: finish(surname_and_given_names),
        first_name: first_name.to_string(),
        last_name: last_name.to_string(),
        date_of_birth: ddmmyyyy(birth),
        date_of_birth_iso: iso_date(birth),
        age: int_string((REFERENCE_DAY - birth) / 365),
    };
    (identity, birth)
}

/// A company name in the forms `fake`'s English `CompanyName` gives ("Kub LLC", "Kub and Hane
/// Group"), from the same word lists, without its three `replace` passes.
fn company_name(rng: &mut ChaCha8Rng) -> String {
    let first = pick(rng, EN::NAME_LAST_NAME);
    let suffix = pick(rng, EN::COMPANY_SUFFIX);
    let mut out = Vec::with_capacity(40);
    out.extend_from_slice(first.as_bytes());
    if rng.random_bool(0.5) {
        out.extend_from_slice(" and ".as_bytes());
        out.extend_from_slice(pick(rng, EN::NAME_LAST_NAME).as_bytes());
    }
    out.push(b' ');
    out.extend_from_slice(suffix.as_bytes());
    finish(out)
}

/// Draw the person for a journey from its RNG, with a document of `family` where one is
/// chosen, else of a family the RNG draws (the draw is made either way, so that the rest of
/// the person is the same whichever family a journey is given).
pub fn generate_with(rng: &mut ChaCha8Rng, family: Option<&'static Family>) -> Person {
    let families = family::bundled().list();
    let drawn = rng.random_range(0..families.len().max(1));
    let family: &'static Family = match family.or_else(|| families.get(drawn)) {
        Some(f) => f,
        None => fallback_family(),
    };
    let place: &'static FamilyPlace = &family.places[rng.random_range(0..family.places.len())];
    let (identity, birth) = identity(rng);
    let other = identity_unlike(rng, &identity);

    let years_since_issue = rng.random_range(1..8i64);
    let issue = REFERENCE_DAY - years_since_issue * 365 - rng.random_range(0..365);
    let expiry = issue + 10 * 365;
    let expired = REFERENCE_DAY - rng.random_range(30..700);
    // Ten years' validity, as above, but not issued to a child: never before 18, and at least
    // a year before it expired.
    let issued_before_expired = (expired - 10 * 365)
        .max(birth + 18 * 365)
        .min(expired - 365);
    let male = rng.random_bool(0.5);

    // "{building} {name} {suffix}", the form of fake's English street names.
    let mut street = Vec::with_capacity(32);
    push_uint(&mut street, rng.random_range(100..100_000u64));
    let name = if rng.random_bool(0.5) {
        pick(rng, EN::NAME_FIRST_NAME)
    } else {
        pick(rng, EN::NAME_LAST_NAME)
    };
    push_all(
        &mut street,
        &[" ", name, " ", pick(rng, EN::ADDRESS_STREET_SUFFIX)],
    );
    let street = finish(street);
    let mut draw = |n: u32| rng.random_range(0..n);
    let postal_code = fill_pattern(&family.postal_code, &place.code, &mut draw);
    let document_number = fill_pattern(&family.number, &place.code, &mut draw);
    let phone = fill_pattern(&family.phone, &place.code, &mut draw);
    let mut line = Vec::with_capacity(96);
    push_all(
        &mut line,
        &[
            &street,
            ", ",
            &place.city,
            ", ",
            &place.region,
            " ",
            &postal_code,
            ", ",
            &family.country_name,
        ],
    );
    let mut mrz = Vec::with_capacity(2 + 3 + document_number.len() + 15);
    push_all(&mut mrz, &["ID", &family.icao]);
    mrz.extend(document_number.bytes().filter(|&b| b != b' '));
    mrz.extend_from_slice(b"<<<<<<<<<<<<<<<");

    let mut ip = Vec::with_capacity(16);
    push_all(
        &mut ip,
        &[pick(rng, &["203.0.113", "198.51.100", "192.0.2"]), "."],
    );
    push_uint(&mut ip, u64::from(rng.random_range(1..255u8)));
    let isp: &'static str = &family.isps[rng.random_range(0..family.isps.len())];
    let organization = company_name(rng);
    let asn = int_string(i64::from(rng.random_range(1_000..65_000u32)));
    let mut host = Vec::with_capacity(ip.len() + 8 + 6 + 4);
    host.extend(ip.iter().map(|&b| if b == b'.' { b'-' } else { b }));
    host.extend_from_slice(b".static.");
    push_random_hex(rng, 6, &mut host);
    host.extend_from_slice(b".net");

    let mut email = Vec::with_capacity(identity.full_name.len() + 16);
    push_lower(&mut email, &identity.first_name);
    email.push(b'.');
    push_lower(&mut email, &identity.last_name);
    push_uint(&mut email, u64::from(rng.random_range(1..100u8)));
    email.extend_from_slice(b"@example.com");

    let images = Images {
        front_doc: FileUrl::draw(rng),
        back_doc: FileUrl::draw(rng),
        selfie: FileUrl::draw(rng),
        files: std::array::from_fn(|_| FileUrl::draw(rng)),
    };
    let jitter = |rng: &mut ChaCha8Rng| f64::from(rng.random_range(-500..500i32)) / 10_000.0;
    let latitude = round(place.latitude + jitter(rng), 7);
    let longitude = round(place.longitude + jitter(rng), 7);
    let card_number = digits(rng, 9);
    let mut guardian_name = Vec::with_capacity(32);
    push_upper(&mut guardian_name, pick(rng, EN::NAME_FIRST_NAME));
    guardian_name.push(b' ');
    push_upper(&mut guardian_name, &identity.last_name);

    let mut ip_address = Vec::with_capacity(48);
    push_all(
        &mut ip_address,
        &[&place.city, ", ", &place.region, ", ", &family.country_name],
    );

    Person {
        guardian_name: finish(guardian_name),
        nationality: &family.nationality,
        nationality_code: &family.nationality_code,
        email: finish(email),
        phone,
        document: Document {
            family: &family.name,
            has_back: family.back,
            mrz_front: family.mrz_front,
            mrz_back: family.mrz_back,
            has_mrz: family.mrz != MrzKind::None,
            d_format: family.d_format,
            icp_check: family.icp_check,
            country: &family.country,
            id_type: &family.id_type,
            name_front: &family.name_front,
            name_back: &family.name_back,
            icao_code: &family.icao,
            country_name: &family.country_name,
            description: &family.regula_description,
            d_type: family.d_type,
            d_year: &family.d_year,
            class_code: &family.class_code,
            number: document_number,
            date_of_issue: ddmmyyyy(issue),
            date_of_expiry: ddmmyyyy(expiry),
            date_of_expiry_past: ddmmyyyy(expired),
            date_of_issue_past: ddmmyyyy(issued_before_expired),
            years_since_issue_past: int_string((REFERENCE_DAY - issued_before_expired) / 365),
            age_at_issue_past: int_string((issued_before_expired - birth) / 365),
            card_number,
            years_since_issue: int_string(years_since_issue),
            age_at_issue: int_string((issue - birth) / 365),
            remainder_term: int_string(expiry - REFERENCE_DAY),
            place_of_issue: &family.place_of_issue,
            sex: if male { &family.sex[0] } else { &family.sex[1] },
            male,
            mrz: finish(mrz),
            extracted_fields: JsonText::default(),
            extracted_field_errors: JsonText::default(),
            spec: family,
            issue_day: issue,
        },
        address: Address {
            street,
            street2: String::new(),
            city: Cow::Borrowed(&place.city),
            region: Cow::Borrowed(&place.region),
            postal_code,
            country: &family.country,
            line: finish(line),
            district_upper: Cow::Borrowed(&place.city_upper),
            region_upper: Cow::Borrowed(&place.region_upper),
            region_code: Cow::Borrowed(&place.code),
        },
        ip: IpRecord {
            ip: finish(ip),
            asn,
            isp,
            organization,
            host: finish(host),
            country_code: &family.icao,
            region: &place.region,
            city: &place.city,
            latitude: &place.latitude_text,
            longitude: &place.longitude_text,
            timezone: &place.timezone,
            address: finish(ip_address),
        },
        latitude,
        longitude,
        images,
        identity,
        other,
        match_percentage: Match::default(),
    }
}

/// Draw the person for a journey, with a document of the family its RNG draws.
pub fn generate(rng: &mut ChaCha8Rng) -> Person {
    generate_with(rng, None)
}

/// A family for the impossible case of a build without any (its tests fail first): one
/// place, no fields.
fn fallback_family() -> &'static Family {
    static EMPTY: LazyLock<Family> = LazyLock::new(empty_family);
    &EMPTY
}

#[cold]
fn empty_family() -> Family {
    Family {
        name: String::new(),
        description: String::new(),
        aliases: Vec::new(),
        country: String::new(),
        id_type: String::new(),
        user_info_id_types: Vec::new(),
        user_info_countries: Vec::new(),
        back: false,
        country_name: String::new(),
        country_name_upper: String::new(),
        icao: String::new(),
        nationality: String::new(),
        nationality_code: String::new(),
        regula_description: String::new(),
        name_front: String::new(),
        name_back: String::new(),
        d_type: 0,
        d_year: String::new(),
        d_format: 0,
        class_code: String::new(),
        sex: [String::new(), String::new()],
        place_of_issue: String::new(),
        number: String::new(),
        postal_code: String::new(),
        phone: String::new(),
        mrz: MrzKind::None,
        mrz_front: false,
        mrz_back: false,
        cross_check: String::new(),
        icp_check: false,
        isps: vec![String::new()],
        places: vec![FamilyPlace {
            city: String::new(),
            region: String::new(),
            code: String::new(),
            latitude: 0.0,
            longitude: 0.0,
            timezone: String::new(),
            city_upper: String::new(),
            region_upper: String::new(),
            latitude_text: String::new(),
            longitude_text: String::new(),
        }],
        fields: Vec::new(),
        source: String::new(),
    }
}

/// A second identity whose name and date of birth both differ from `first`.
fn identity_unlike(rng: &mut ChaCha8Rng, first: &Identity) -> Identity {
    let (mut other, _) = identity(rng);
    // A handful of tries is plenty with fake's word lists; give up gracefully after that.
    for _ in 0..8 {
        if other.first_name != first.first_name
            && other.last_name != first.last_name
            && other.date_of_birth != first.date_of_birth
        {
            break;
        }
        other = identity(rng).0;
    }
    other
}

fn round(value: f64, places: i32) -> f64 {
    let factor = 10f64.powi(places);
    (value * factor).round() / factor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_journey_same_person_and_different_journeys_differ() {
        let a = serde_json::to_string(&generate(&mut journey_rng(1, "j-1"))).unwrap();
        let b = serde_json::to_string(&generate(&mut journey_rng(1, "j-1"))).unwrap();
        let c = serde_json::to_string(&generate(&mut journey_rng(1, "j-2"))).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn the_fallback_family_has_a_place_to_draw() {
        assert!(fallback_family().places.len() == 1);
    }

    #[test]
    fn file_urls_have_the_file_hosts_form_in_every_serialization() {
        let person = generate(&mut journey_rng(3, "urls"));
        let urls: Vec<&FileUrl> = [
            &person.images.front_doc,
            &person.images.back_doc,
            &person.images.selfie,
        ]
        .into_iter()
        .chain(&person.images.files)
        .collect();
        for url in &urls {
            let text = url.to_string();
            let rest = text
                .strip_prefix("https://persist.signzy.tech/api/files/")
                .unwrap();
            let (folder, rest) = rest.split_once("/download/").unwrap();
            let digest = rest.strip_suffix(".png").unwrap();
            assert_eq!(folder.len(), 9, "{text}");
            assert!(folder.bytes().all(|b| b.is_ascii_digit()), "{text}");
            assert_eq!(digest.len(), 64, "{text}");
            assert!(
                digest
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{text}"
            );
            assert_eq!(serde_json::to_value(url).unwrap(), text.as_str());
        }
        let distinct: std::collections::BTreeSet<String> =
            urls.iter().map(|u| u.to_string()).collect();
        assert_eq!(distinct.len(), 15);
    }

    #[test]
    fn dates_and_numbers_read_as_format_writes_them() {
        for day in (-30_000..40_000).step_by(37) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(ddmmyyyy(day), format!("{d:02}/{m:02}/{y:04}"));
            assert_eq!(iso_date(day), format!("{y:04}-{m:02}-{d:02}"));
            assert_eq!(int_string(day), day.to_string());
        }
    }

    #[test]
    fn other_identity_differs_from_the_person() {
        for i in 0..200 {
            let p = generate(&mut journey_rng(7, &format!("x-{i}")));
            assert_ne!(p.identity.full_name, p.other.full_name);
            assert_ne!(p.identity.date_of_birth, p.other.date_of_birth);
        }
    }
}

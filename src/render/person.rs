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

use super::collect::verbatim;
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
    pub city: &'static str,
    pub region: &'static str,
    pub postal_code: String,
    pub country: &'static str,
    /// One line, as the IP record's `address` holds it.
    pub line: String,
    /// Upper case, as Regula's "Split Address" of Indian licences holds them.
    pub district_upper: &'static str,
    pub region_upper: &'static str,
    pub region_code: &'static str,
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

struct Place {
    city: &'static str,
    region: &'static str,
    /// `city` and `region` upper-cased, and the coordinates as `{:.2}` prints them: fixed
    /// text, kept here rather than made per journey (a test checks they agree).
    city_upper: &'static str,
    region_upper: &'static str,
    latitude_text: &'static str,
    longitude_text: &'static str,
    /// The region's short code, as Indian licences print it beside the state's name.
    code: &'static str,
    latitude: f64,
    longitude: f64,
    timezone: &'static str,
}

struct Profile {
    country: &'static str,
    country_name: &'static str,
    icao: &'static str,
    nationality: &'static str,
    description: &'static str,
    name_front: &'static str,
    name_back: &'static str,
    id_type: &'static str,
    d_type: u32,
    d_year: &'static str,
    class_code: &'static str,
    sex_male: &'static str,
    sex_female: &'static str,
    place_of_issue: &'static str,
    isps: &'static [&'static str],
    places: &'static [Place],
}

const PROFILES: &[Profile] = &[
    Profile {
        country: "IN",
        country_name: "India",
        icao: "IND",
        nationality: "India",
        description: "Driving License",
        name_front: "India - Driving License (2019) #1",
        name_back: "India - Driving License (2019) #1 Side B",
        id_type: "Driving License",
        d_type: 49,
        d_year: "2019",
        class_code: "DL",
        sex_male: "M",
        sex_female: "F",
        place_of_issue: "RTO",
        isps: &[
            "Reliance Jio Infocomm Limited",
            "Bharti Airtel",
            "ACT Fibernet",
        ],
        places: &[
            Place {
                city: "Mumbai",
                region: "Maharashtra",
                city_upper: "MUMBAI",
                region_upper: "MAHARASHTRA",
                latitude_text: "19.07",
                longitude_text: "72.87",
                code: "MH",
                latitude: 19.07,
                longitude: 72.87,
                timezone: "IST, Asia/Kolkata",
            },
            Place {
                city: "Bengaluru",
                region: "Karnataka",
                city_upper: "BENGALURU",
                region_upper: "KARNATAKA",
                latitude_text: "12.97",
                longitude_text: "77.59",
                code: "KA",
                latitude: 12.97,
                longitude: 77.59,
                timezone: "IST, Asia/Kolkata",
            },
            Place {
                city: "New Delhi",
                region: "Delhi",
                city_upper: "NEW DELHI",
                region_upper: "DELHI",
                latitude_text: "28.61",
                longitude_text: "77.20",
                code: "DL",
                latitude: 28.61,
                longitude: 77.2,
                timezone: "IST, Asia/Kolkata",
            },
        ],
    },
    Profile {
        country: "US",
        country_name: "United States",
        icao: "USA",
        nationality: "United States",
        description: "Driving License",
        name_front: "USA - Driving License (2018) #1",
        name_back: "USA - Driving License (2018) #1 Side B",
        id_type: "Driving License",
        d_type: 49,
        d_year: "2018",
        class_code: "D",
        sex_male: "M",
        sex_female: "F",
        place_of_issue: "DMV",
        isps: &["Comcast Cable", "AT&T Services", "Verizon Business"],
        places: &[
            Place {
                city: "Austin",
                region: "Texas",
                city_upper: "AUSTIN",
                region_upper: "TEXAS",
                latitude_text: "30.27",
                longitude_text: "-97.74",
                code: "TX",
                latitude: 30.27,
                longitude: -97.74,
                timezone: "CST, America/Chicago",
            },
            Place {
                city: "San Jose",
                region: "California",
                city_upper: "SAN JOSE",
                region_upper: "CALIFORNIA",
                latitude_text: "37.34",
                longitude_text: "-121.89",
                code: "CA",
                latitude: 37.34,
                longitude: -121.89,
                timezone: "PST, America/Los_Angeles",
            },
            Place {
                city: "Brooklyn",
                region: "New York",
                city_upper: "BROOKLYN",
                region_upper: "NEW YORK",
                latitude_text: "40.68",
                longitude_text: "-73.94",
                code: "NY",
                latitude: 40.68,
                longitude: -73.94,
                timezone: "EST, America/New_York",
            },
        ],
    },
    Profile {
        country: "AE",
        country_name: "United Arab Emirates",
        icao: "ARE",
        nationality: "India",
        description: "Resident Identity Card",
        name_front: "United Arab Emirates Resident ID Card (2021) (Golden Card) #2",
        name_back: "United Arab Emirates Resident ID Card (2021) (Golden Card) Side B",
        id_type: "Resident ID Card",
        d_type: 224,
        d_year: "2021",
        class_code: "IL",
        sex_male: "ذكر",
        sex_female: "أنثى",
        place_of_issue: "دبي",
        isps: &[
            "Emirates Telecommunications Corporation",
            "Emirates Integrated Telecommunications",
        ],
        places: &[
            Place {
                city: "Dubai",
                region: "Dubai",
                city_upper: "DUBAI",
                region_upper: "DUBAI",
                latitude_text: "25.20",
                longitude_text: "55.27",
                code: "DU",
                latitude: 25.2,
                longitude: 55.27,
                timezone: "GST, Asia/Dubai",
            },
            Place {
                city: "Abu Dhabi",
                region: "Abu Dhabi",
                city_upper: "ABU DHABI",
                region_upper: "ABU DHABI",
                latitude_text: "24.45",
                longitude_text: "54.38",
                code: "AZ",
                latitude: 24.45,
                longitude: 54.38,
                timezone: "GST, Asia/Dubai",
            },
        ],
    },
];

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

/// Draw the person for a journey from its RNG.
pub fn generate(rng: &mut ChaCha8Rng) -> Person {
    let profile = &PROFILES[rng.random_range(0..PROFILES.len())];
    let place = &profile.places[rng.random_range(0..profile.places.len())];
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
    let mut postal_code = Vec::with_capacity(14);
    match profile.country {
        "IN" => push_digits(rng, 6, &mut postal_code),
        "US" => push_digits(rng, 5, &mut postal_code),
        _ => {
            postal_code.extend_from_slice(b"P.O. Box ");
            push_digits(rng, 5, &mut postal_code);
        }
    }
    let postal_code = finish(postal_code);
    let mut line = Vec::with_capacity(96);
    push_all(
        &mut line,
        &[
            &street,
            ", ",
            place.city,
            ", ",
            place.region,
            " ",
            &postal_code,
            ", ",
            profile.country_name,
        ],
    );

    let mut number = Vec::with_capacity(16);
    match profile.country {
        "IN" => {
            number.extend_from_slice(pick(rng, &["MH", "KA", "DL"]).as_bytes());
            push_digits(rng, 13, &mut number);
        }
        "US" => {
            number.push(b'A' + rng.random_range(0..26u8));
            push_digits(rng, 7, &mut number);
        }
        _ => {
            number.extend_from_slice(b"784");
            push_digits(rng, 12, &mut number);
        }
    }
    let mut mrz = Vec::with_capacity(2 + 3 + number.len() + 15);
    push_all(&mut mrz, &["ID", profile.icao]);
    mrz.extend(number.iter().filter(|&&b| b != b' '));
    mrz.extend_from_slice(b"<<<<<<<<<<<<<<<");
    let document_number = finish(number);

    let mut ip = Vec::with_capacity(16);
    push_all(
        &mut ip,
        &[pick(rng, &["203.0.113", "198.51.100", "192.0.2"]), "."],
    );
    push_uint(&mut ip, u64::from(rng.random_range(1..255u8)));
    let isp = profile.isps[rng.random_range(0..profile.isps.len())];
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
    let mut phone = Vec::with_capacity(16);
    let (prefix, n) = match profile.country {
        "IN" => ("+91", 10),
        "US" => ("+1", 10),
        _ => ("+9715", 8),
    };
    phone.extend_from_slice(prefix.as_bytes());
    push_digits(rng, n, &mut phone);

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
        &[place.city, ", ", place.region, ", ", profile.country_name],
    );

    Person {
        guardian_name: finish(guardian_name),
        nationality: profile.nationality,
        nationality_code: if profile.country == "AE" {
            "IND"
        } else {
            profile.icao
        },
        email: finish(email),
        phone: finish(phone),
        document: Document {
            country: profile.country,
            id_type: profile.id_type,
            name_front: profile.name_front,
            name_back: profile.name_back,
            icao_code: profile.icao,
            country_name: profile.country_name,
            description: profile.description,
            d_type: profile.d_type,
            d_year: profile.d_year,
            class_code: profile.class_code,
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
            place_of_issue: profile.place_of_issue,
            sex: if male {
                profile.sex_male
            } else {
                profile.sex_female
            },
            mrz: finish(mrz),
        },
        address: Address {
            street,
            street2: String::new(),
            city: place.city,
            region: place.region,
            postal_code,
            country: profile.country,
            line: finish(line),
            district_upper: place.city_upper,
            region_upper: place.region_upper,
            region_code: place.code,
        },
        ip: IpRecord {
            ip: finish(ip),
            asn,
            isp,
            organization,
            host: finish(host),
            country_code: profile.icao,
            region: place.region,
            city: place.city,
            latitude: place.latitude_text,
            longitude: place.longitude_text,
            timezone: place.timezone,
            address: finish(ip_address),
        },
        latitude,
        longitude,
        images,
        identity,
        other,
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
    fn place_texts_agree_with_the_places() {
        for place in PROFILES.iter().flat_map(|p| p.places) {
            assert_eq!(place.city_upper, place.city.to_uppercase());
            assert_eq!(place.region_upper, place.region.to_uppercase());
            assert_eq!(place.latitude_text, format!("{:.2}", place.latitude));
            assert_eq!(place.longitude_text, format!("{:.2}", place.longitude));
        }
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

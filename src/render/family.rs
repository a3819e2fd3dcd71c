//! Document families: what one kind of identity document looks like in a journey document
//! (Indian driving licence, UAE Emirates ID, passport, US driving licence...), as data.
//!
//! A family is one TOML file of `families/` (compiled into the binary, as the scenarios are):
//! the country and id type the user chose, the Regula descriptors of its sides, how its
//! numbers, postal codes and phone numbers look, the places its holders live, and its
//! `extractedFields` in order, each key with the value it takes from the person ([`Source`])
//! or a literal. Everything is checked when it is first read; every problem names the file,
//! the line and the field. Adding a family is adding a file: nothing here names one.
//!
//! `extract::settle` writes a family's `extractedFields` for a person, leaving out what the
//! scenario says OCR did not read, and [`mrz`] builds the machine-readable zone (TD1 or TD3
//! with valid check digits) that MRZ-bearing families print.

use std::sync::LazyLock;

use serde::Deserialize;

use crate::scenario::loader::{LoadError, SourceFile};

/// Which part of a document a value belongs to: what a scenario can make OCR miss, and what
/// the pre-fill is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Name,
    DateOfBirth,
    DocumentNumber,
    DateOfIssue,
    DateOfExpiry,
    Address,
}

impl Role {
    /// The role as scenarios name it (`notExtracted = ["dateOfBirth"]`).
    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "name" => Role::Name,
            "dateOfBirth" => Role::DateOfBirth,
            "documentNumber" => Role::DocumentNumber,
            "dateOfIssue" => Role::DateOfIssue,
            "dateOfExpiry" => Role::DateOfExpiry,
            "address" => Role::Address,
            _ => return None,
        })
    }

    pub const NAMES: &'static str =
        "name, dateOfBirth, documentNumber, dateOfIssue, dateOfExpiry, address";

    /// The field an error item names when the family has none of this role, and the
    /// message of a `NOT_EXTRACTED` item: the real ones (spec §4.3) for name, date of birth
    /// and document number; the others follow their form (INFERRED).
    pub fn default_field(self) -> &'static str {
        match self {
            Role::Name => "Surname And Given Names",
            Role::DateOfBirth => "Date of Birth",
            Role::DocumentNumber => "Document Number",
            Role::DateOfIssue => "Date of Issue",
            Role::DateOfExpiry => "Date of Expiry",
            Role::Address => "Address",
        }
    }

    pub fn not_extracted(self) -> &'static str {
        match self {
            Role::Name => "Name not extracted",
            Role::DateOfBirth => "Date of birth not extracted",
            Role::DocumentNumber => "ID number not extracted",
            Role::DateOfIssue => "Date of issue not extracted",
            Role::DateOfExpiry => "Date of expiry not extracted",
            Role::Address => "Address not extracted",
        }
    }

    /// The subject of a mismatch message ("Date of birth does not match ...").
    pub fn subject(self) -> &'static str {
        match self {
            Role::Name => "Name",
            Role::DateOfBirth => "Date of birth",
            Role::DocumentNumber => "ID number",
            Role::DateOfIssue => "Date of issue",
            Role::DateOfExpiry => "Date of expiry",
            Role::Address => "Address",
        }
    }
}

/// Where an extracted field's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    SurnameAndGivenNames,
    FullName,
    FullNameUpper,
    FirstName,
    LastName,
    GivenNamesUpper,
    SurnameUpper,
    DateOfBirth,
    Age,
    DocumentNumber,
    CardNumber,
    DateOfIssue,
    YearsSinceIssue,
    AgeAtIssue,
    DateOfExpiry,
    RemainderTerm,
    AddressUpper,
    AddressStreetUpper,
    AddressCityUpper,
    PostalCode,
    RegionCode,
    StateName,
    SplitAddress,
    Sex,
    Nationality,
    NationalityCode,
    IssuingStateCode,
    IssuingStateName,
    ClassCode,
    PlaceOfIssue,
    GuardianName,
    Mrz,
    MrzDocumentNumberCheckDigit,
    MrzDateOfBirthCheckDigit,
    MrzDateOfExpiryCheckDigit,
    MrzOptionalData,
    MrzOptionalDataCheckDigit,
    MrzFinalCheckDigit,
}

/// Every source, by the name a family file gives it.
const SOURCES: &[(&str, Source)] = &[
    ("surnameAndGivenNames", Source::SurnameAndGivenNames),
    ("fullName", Source::FullName),
    ("fullNameUpper", Source::FullNameUpper),
    ("firstName", Source::FirstName),
    ("lastName", Source::LastName),
    ("givenNamesUpper", Source::GivenNamesUpper),
    ("surnameUpper", Source::SurnameUpper),
    ("dateOfBirth", Source::DateOfBirth),
    ("age", Source::Age),
    ("documentNumber", Source::DocumentNumber),
    ("cardNumber", Source::CardNumber),
    ("dateOfIssue", Source::DateOfIssue),
    ("yearsSinceIssue", Source::YearsSinceIssue),
    ("ageAtIssue", Source::AgeAtIssue),
    ("dateOfExpiry", Source::DateOfExpiry),
    ("remainderTerm", Source::RemainderTerm),
    ("addressUpper", Source::AddressUpper),
    ("addressStreetUpper", Source::AddressStreetUpper),
    ("addressCityUpper", Source::AddressCityUpper),
    ("postalCode", Source::PostalCode),
    ("regionCode", Source::RegionCode),
    ("stateName", Source::StateName),
    ("splitAddress", Source::SplitAddress),
    ("sex", Source::Sex),
    ("nationality", Source::Nationality),
    ("nationalityCode", Source::NationalityCode),
    ("issuingStateCode", Source::IssuingStateCode),
    ("issuingStateName", Source::IssuingStateName),
    ("classCode", Source::ClassCode),
    ("placeOfIssue", Source::PlaceOfIssue),
    ("guardianName", Source::GuardianName),
    ("mrz", Source::Mrz),
    (
        "mrzDocumentNumberCheckDigit",
        Source::MrzDocumentNumberCheckDigit,
    ),
    ("mrzDateOfBirthCheckDigit", Source::MrzDateOfBirthCheckDigit),
    (
        "mrzDateOfExpiryCheckDigit",
        Source::MrzDateOfExpiryCheckDigit,
    ),
    ("mrzOptionalData", Source::MrzOptionalData),
    (
        "mrzOptionalDataCheckDigit",
        Source::MrzOptionalDataCheckDigit,
    ),
    ("mrzFinalCheckDigit", Source::MrzFinalCheckDigit),
];

impl Source {
    /// The part of the document the value belongs to, if it is one a scenario can make OCR
    /// miss or the pre-fill is compared with.
    pub fn role(self) -> Option<Role> {
        use Source::*;
        Some(match self {
            SurnameAndGivenNames | FullName | FullNameUpper | FirstName | LastName
            | GivenNamesUpper | SurnameUpper => Role::Name,
            DateOfBirth | Age => Role::DateOfBirth,
            DocumentNumber | CardNumber => Role::DocumentNumber,
            DateOfIssue | YearsSinceIssue | AgeAtIssue => Role::DateOfIssue,
            DateOfExpiry | RemainderTerm => Role::DateOfExpiry,
            AddressUpper | AddressStreetUpper | AddressCityUpper | PostalCode | SplitAddress => {
                Role::Address
            }
            _ => return None,
        })
    }

    /// Whether this source is the one a role's error item and comparison use (the first of
    /// its role in the family's list is taken when none is).
    pub fn is_primary(self) -> bool {
        matches!(
            self,
            Source::SurnameAndGivenNames
                | Source::DateOfBirth
                | Source::DocumentNumber
                | Source::DateOfIssue
                | Source::DateOfExpiry
                | Source::AddressUpper
        )
    }

    fn names() -> String {
        SOURCES
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One `extractedFields` entry of a family.
#[derive(Debug, Clone)]
pub struct Field {
    pub key: String,
    pub value: FieldValue,
}

#[derive(Debug, Clone)]
pub enum FieldValue {
    From(Source),
    Literal(String),
}

/// Which machine-readable zone a family prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MrzKind {
    None,
    /// ICAO 9303 TD1: three lines of 30 (identity cards).
    Td1,
    /// ICAO 9303 TD3: two lines of 44 (passports).
    Td3,
}

/// A place holders of a family live in, with the texts derived from it.
#[derive(Debug, Clone)]
pub struct Place {
    pub city: String,
    pub region: String,
    pub code: String,
    pub latitude: f64,
    pub longitude: f64,
    pub timezone: String,
    pub city_upper: String,
    pub region_upper: String,
    pub latitude_text: String,
    pub longitude_text: String,
}

/// One document family, checked.
#[derive(Debug, Clone)]
pub struct Family {
    /// The file stem: `in_dl` for `families/in_dl.toml`.
    pub name: String,
    pub description: String,
    pub aliases: Vec<String>,
    pub country: String,
    pub id_type: String,
    pub user_info_id_types: Vec<String>,
    pub user_info_countries: Vec<String>,
    pub back: bool,
    pub country_name: String,
    pub country_name_upper: String,
    pub icao: String,
    pub nationality: String,
    pub nationality_code: String,
    pub regula_description: String,
    pub name_front: String,
    pub name_back: String,
    pub d_type: u32,
    pub d_year: String,
    pub d_format: u32,
    pub class_code: String,
    pub sex: [String; 2],
    pub place_of_issue: String,
    pub number: String,
    pub postal_code: String,
    pub phone: String,
    pub mrz: MrzKind,
    pub mrz_front: bool,
    pub mrz_back: bool,
    pub cross_check: String,
    pub icp_check: bool,
    pub isps: Vec<String>,
    pub places: Vec<Place>,
    pub fields: Vec<Field>,
    pub source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FamilyFile {
    description: String,
    #[serde(default)]
    aliases: Vec<String>,
    country: String,
    id_type: String,
    #[serde(default)]
    user_info_id_types: Vec<String>,
    #[serde(default)]
    user_info_countries: Vec<String>,
    back: bool,
    country_name: String,
    icao: String,
    nationality: String,
    nationality_code: String,
    regula_description: String,
    name_front: String,
    #[serde(default)]
    name_back: String,
    d_type: u32,
    d_year: String,
    #[serde(default)]
    d_format: u32,
    class_code: String,
    sex: [String; 2],
    place_of_issue: String,
    number: String,
    postal_code: String,
    phone: String,
    mrz: String,
    #[serde(default)]
    mrz_front: bool,
    #[serde(default)]
    mrz_back: bool,
    cross_check: String,
    #[serde(default)]
    icp_check: bool,
    isps: Vec<String>,
    places: Vec<PlaceFile>,
    fields: Vec<FieldFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceFile {
    city: String,
    region: String,
    code: String,
    latitude: f64,
    longitude: f64,
    timezone: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    key: String,
    value: Option<String>,
    literal: Option<String>,
}

/// The line on which `key = <something containing needle>` is written, if it is.
fn line_of(text: &str, key: &str, needle: Option<&str>) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key).is_some_and(|rest| {
                let rest = rest.trim_start();
                rest.starts_with('=') && needle.is_none_or(|n| rest.contains(n))
            })
        })
        .map(|i| i + 1)
}

/// Whether a pattern (`number`, `postal_code`, `phone`) is one [`fill_pattern`] can fill.
fn pattern_error(pattern: &str) -> Option<String> {
    if pattern.is_empty() {
        return Some("must not be empty".into());
    }
    let rest = pattern.replace("{region}", "");
    if rest.contains(['{', '}']) {
        return Some(format!(
            "{pattern:?}: the only placeholder is {{region}}; '#' is a digit and '@' a capital letter"
        ));
    }
    None
}

/// Parse and check one family file; problems are pushed to `errors`.
pub fn parse_family(file: &SourceFile, errors: &mut Vec<LoadError>) -> Option<Family> {
    let raw: FamilyFile = match toml::from_str(&file.text) {
        Ok(raw) => raw,
        Err(e) => {
            let message = e.message().trim().to_string();
            let line = e
                .span()
                .and_then(|s| file.text.get(..s.start))
                .map(|before| before.matches('\n').count() + 1);
            let mut err = LoadError::new(&file.origin, &message).at_line(line);
            if let Some(start) = message.find('`') {
                if let Some(len) = message[start + 1..].find('`') {
                    err = err.field(&message[start + 1..start + 1 + len]);
                }
            }
            errors.push(err);
            return None;
        }
    };
    let before = errors.len();
    let at = |field: &str, needle: Option<&str>, message: String| {
        LoadError::new(&file.origin, message)
            .at_line(line_of(
                &file.text,
                field.rsplit('.').next().unwrap_or(field),
                needle,
            ))
            .field(field)
    };
    if file.name.is_empty()
        || !file
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        errors.push(LoadError::new(
            &file.origin,
            "a family file's name must be lower-case letters, digits and `_` (it is what X-Mock-Document names); rename the file",
        ));
    }
    for (field, value, len) in [
        ("country", &raw.country, 2),
        ("icao", &raw.icao, 3),
        ("nationality_code", &raw.nationality_code, 3),
    ] {
        if value.len() != len || !value.bytes().all(|b| b.is_ascii_uppercase()) {
            errors.push(at(
                field,
                None,
                format!("{value:?} must be {len} capital letters"),
            ));
        }
    }
    for (field, pattern) in [
        ("number", &raw.number),
        ("postal_code", &raw.postal_code),
        ("phone", &raw.phone),
    ] {
        if let Some(why) = pattern_error(pattern) {
            errors.push(at(field, None, why));
        }
    }
    let mrz = match raw.mrz.as_str() {
        "none" => MrzKind::None,
        "td1" => MrzKind::Td1,
        "td3" => MrzKind::Td3,
        other => {
            errors.push(at(
                "mrz",
                None,
                format!("{other:?} is not an MRZ kind; use \"none\", \"td1\" or \"td3\""),
            ));
            MrzKind::None
        }
    };
    if raw.back && raw.name_back.trim().is_empty() {
        errors.push(at(
            "name_back",
            None,
            "a family with a back side (back = true) needs the back's Regula DocumentName".into(),
        ));
    }
    if raw.mrz_back && !raw.back {
        errors.push(at(
            "mrz_back",
            None,
            "the MRZ cannot be on the back of a one-sided document (back = false)".into(),
        ));
    }
    if raw.places.is_empty() {
        errors.push(LoadError::new(&file.origin, "needs at least one [[places]]").field("places"));
    }
    if raw.isps.is_empty() {
        errors.push(at("isps", None, "needs at least one ISP".into()));
    }
    for place in &raw.places {
        if !(place.latitude.is_finite() && place.longitude.is_finite())
            || place.latitude.abs() > 90.0
            || place.longitude.abs() > 180.0
        {
            errors.push(at(
                "places.latitude",
                None,
                format!("{}: the coordinates are not a place on Earth", place.city),
            ));
        }
    }
    let mut fields = Vec::with_capacity(raw.fields.len());
    let mut keys = std::collections::BTreeSet::new();
    for field in &raw.fields {
        if !keys.insert(field.key.as_str()) {
            errors.push(at(
                "fields.key",
                Some(&format!("{:?}", field.key)),
                format!(
                    "{:?} is listed twice; a JSON object holds a key once",
                    field.key
                ),
            ));
        }
        let value = match (&field.value, &field.literal) {
            (Some(name), None) => match SOURCES.iter().find(|(n, _)| n == name) {
                Some((_, source)) => FieldValue::From(*source),
                None => {
                    errors.push(at(
                        "fields.value",
                        Some(&format!("{name:?}")),
                        format!(
                            "{name:?} (key {:?}) is not a value a field can take; known: {}",
                            field.key,
                            Source::names()
                        ),
                    ));
                    continue;
                }
            },
            (None, Some(text)) => FieldValue::Literal(text.clone()),
            _ => {
                errors.push(at(
                    "fields.key",
                    Some(&format!("{:?}", field.key)),
                    format!(
                        "field {:?} needs exactly one of `value` (where it comes from) and `literal` (its text)",
                        field.key
                    ),
                ));
                continue;
            }
        };
        if mrz == MrzKind::None
            && matches!(&value, FieldValue::From(s) if format!("{s:?}").starts_with("Mrz"))
        {
            errors.push(at(
                "fields.value",
                Some(&format!("{:?}", field.key)),
                format!(
                    "field {:?} takes an MRZ value, but the family has mrz = \"none\"",
                    field.key
                ),
            ));
        }
        fields.push(Field {
            key: field.key.clone(),
            value,
        });
    }
    if errors.len() > before {
        return None;
    }
    let places = raw
        .places
        .into_iter()
        .map(|p| Place {
            city_upper: p.city.to_uppercase(),
            region_upper: p.region.to_uppercase(),
            latitude_text: format!("{:.2}", p.latitude),
            longitude_text: format!("{:.2}", p.longitude),
            city: p.city,
            region: p.region,
            code: p.code,
            latitude: p.latitude,
            longitude: p.longitude,
            timezone: p.timezone,
        })
        .collect();
    Some(Family {
        name: file.name.clone(),
        description: raw.description,
        aliases: raw.aliases,
        user_info_countries: if raw.user_info_countries.is_empty() {
            vec![raw.country.clone()]
        } else {
            raw.user_info_countries
        },
        country: raw.country,
        id_type: raw.id_type,
        user_info_id_types: raw.user_info_id_types,
        back: raw.back,
        country_name_upper: raw.country_name.to_uppercase(),
        country_name: raw.country_name,
        icao: raw.icao,
        nationality: raw.nationality,
        nationality_code: raw.nationality_code,
        regula_description: raw.regula_description,
        name_front: raw.name_front,
        name_back: raw.name_back,
        d_type: raw.d_type,
        d_year: raw.d_year,
        d_format: raw.d_format,
        class_code: raw.class_code,
        sex: raw.sex,
        place_of_issue: raw.place_of_issue,
        number: raw.number,
        postal_code: raw.postal_code,
        phone: raw.phone,
        mrz,
        mrz_front: raw.mrz_front,
        mrz_back: raw.mrz_back,
        cross_check: raw.cross_check,
        icp_check: raw.icp_check,
        isps: raw.isps,
        places,
        fields,
        source: file.origin.clone(),
    })
}

/// Every family, in file-name order (the order a journey id draws from).
#[derive(Debug, Default)]
pub struct Families {
    list: Vec<Family>,
}

impl Families {
    /// Parse every file; problems are pushed to `errors`, with names or aliases used twice.
    pub fn parse(files: &[SourceFile], errors: &mut Vec<LoadError>) -> Families {
        let mut list: Vec<Family> = files
            .iter()
            .filter_map(|f| parse_family(f, errors))
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        let mut seen: std::collections::BTreeMap<&str, &str> = Default::default();
        for family in &list {
            for key in std::iter::once(&family.name).chain(&family.aliases) {
                if let Some(other) = seen.insert(key, &family.name) {
                    errors.push(
                        LoadError::new(
                            &family.source,
                            format!("{key:?} already names the family {other}"),
                        )
                        .field("aliases"),
                    );
                }
            }
        }
        if list.is_empty() && errors.is_empty() {
            errors.push(LoadError::new(
                "families",
                "no document family; add at least one .toml file",
            ));
        }
        Families { list }
    }

    pub fn list(&self) -> &[Family] {
        &self.list
    }

    /// The family with this name or alias.
    pub fn find(&self, key: &str) -> Option<&Family> {
        self.list
            .iter()
            .find(|f| f.name == key || f.aliases.iter().any(|a| a == key))
    }

    /// The family a create call's `userInfo.id` names (`{"idType": "Driving License",
    /// "country": "IN"}`), compared without regard to case.
    pub fn for_user_id(&self, id_type: &str, country: &str) -> Option<&Family> {
        let id_type = id_type.trim();
        let country = country.trim();
        self.list.iter().find(|f| {
            f.user_info_id_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(id_type))
                && f.user_info_countries
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(country))
        })
    }

    /// The names, for messages.
    pub fn names(&self) -> String {
        self.list
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The families compiled into the binary, read and checked once.
static BUNDLED: LazyLock<(Families, Vec<LoadError>)> = LazyLock::new(|| {
    let files: Vec<SourceFile> = crate::scenario::bundled::FAMILIES
        .iter()
        .map(|(path, text)| SourceFile {
            name: path.strip_suffix(".toml").unwrap_or(path).to_string(),
            origin: format!("<bundled>/families/{path}"),
            text: text.to_string(),
        })
        .collect();
    let mut errors = Vec::new();
    let families = Families::parse(&files, &mut errors);
    (families, errors)
});

/// The bundled families.
pub fn bundled() -> &'static Families {
    &BUNDLED.0
}

/// What was wrong with the bundled families (empty in any build whose tests pass).
pub fn bundled_errors() -> &'static [LoadError] {
    &BUNDLED.1
}

/// `pattern` with each `#` a digit and each `@` a capital letter drawn by `digit(10)` and
/// `digit(26)`, and `{region}` the region's code.
pub fn fill_pattern(pattern: &str, region: &str, mut draw: impl FnMut(u32) -> u32) -> String {
    let mut out = String::with_capacity(pattern.len() + 2);
    let mut rest = pattern;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{region}") {
            out.push_str(region);
            rest = after;
            continue;
        }
        let mut chars = rest.chars();
        let c = chars.next().unwrap_or('#');
        match c {
            '#' => out.push(char::from(b'0' + draw(10) as u8)),
            '@' => out.push(char::from(b'A' + draw(26) as u8)),
            other => out.push(other),
        }
        rest = chars.as_str();
    }
    out
}

/// The machine-readable zone and the check digits Regula reports from it. Written into byte
/// buffers of the zone's size: half of all new journeys carry one, and a `String` per piece
/// cost a microsecond each.
pub mod mrz {
    /// The value of an MRZ character.
    fn value(b: u8) -> u32 {
        match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => 0,
        }
    }

    /// ICAO 9303 check digit of `field` (digits, capital letters, `<`).
    #[cfg(test)]
    pub fn check_digit(field: &str) -> u32 {
        digit_of(field.as_bytes())
    }

    fn digit_of(field: &[u8]) -> u32 {
        const WEIGHTS: [u32; 3] = [7, 3, 1];
        field
            .iter()
            .enumerate()
            .map(|(i, &b)| value(b) * WEIGHTS[i % 3])
            .sum::<u32>()
            % 10
    }

    /// The character an MRZ writes for `c`: capital letters and digits as they are (letters
    /// upper-cased), anything else `<`.
    fn mrz_char(c: char) -> u8 {
        let c = c.to_ascii_uppercase();
        if c.is_ascii_uppercase() || c.is_ascii_digit() {
            c as u8
        } else {
            b'<'
        }
    }

    /// `text` written into `out` as the MRZ writes it, cut or padded with `<` to `out`'s length.
    fn fill(out: &mut [u8], text: &str) {
        out.fill(b'<');
        for (slot, c) in out.iter_mut().zip(text.chars()) {
            *slot = mrz_char(c);
        }
    }

    /// `SURNAME<<GIVEN<NAMES`, cut or padded to `out`'s length.
    fn fill_name(out: &mut [u8], surname: &str, given: &str) {
        out.fill(b'<');
        let chars = surname
            .chars()
            .map(mrz_char)
            .chain([b'<', b'<'])
            .chain(given.chars().map(mrz_char));
        for (slot, c) in out.iter_mut().zip(chars) {
            *slot = c;
        }
    }

    /// The values an MRZ is made of.
    pub struct Parts<'a> {
        pub issuer: &'a str,
        pub surname: &'a str,
        pub given: &'a str,
        pub number: &'a str,
        pub nationality: &'a str,
        /// `yymmdd`.
        pub birth: &'a str,
        pub sex: char,
        pub expiry: &'a str,
        pub optional: &'a str,
    }

    /// The zone's lines joined with `^` (Regula's "MRZ Strings"), and its check digits:
    /// number, birth, expiry, optional data, final.
    pub struct Zone {
        pub text: String,
        pub digits: [u32; 5],
        pub optional: String,
    }

    fn put(line: &mut [u8], at: &mut usize, bytes: &[u8]) {
        line[*at..*at + bytes.len()].copy_from_slice(bytes);
        *at += bytes.len();
    }

    fn code(text: &str) -> [u8; 3] {
        let mut out = [b'<'; 3];
        fill(&mut out, text);
        out
    }

    fn six(text: &str) -> [u8; 6] {
        let mut out = [b'<'; 6];
        fill(&mut out, text);
        out
    }

    fn ascii(bytes: &[u8]) -> String {
        // Every byte written above is an MRZ character.
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// TD3 (passports): two lines of 44.
    pub fn td3(p: &Parts<'_>) -> Zone {
        let mut number = [b'<'; 9];
        fill(&mut number, p.number);
        let mut optional = [b'<'; 14];
        fill(&mut optional, p.optional);
        let (birth, expiry) = (six(p.birth), six(p.expiry));
        let digit = |d: u32| b'0' + d as u8;
        let (dn, db, de, dopt) = (
            digit_of(&number),
            digit_of(&birth),
            digit_of(&expiry),
            digit_of(&optional),
        );
        let mut line = [b'<'; 44 + 1 + 44];
        let mut at = 0;
        put(&mut line, &mut at, b"P<");
        put(&mut line, &mut at, &code(p.issuer));
        fill_name(&mut line[5..44], p.surname, p.given);
        at = 44;
        put(&mut line, &mut at, b"^");
        let start = at;
        put(&mut line, &mut at, &number);
        put(&mut line, &mut at, &[digit(dn)]);
        put(&mut line, &mut at, &code(p.nationality));
        put(&mut line, &mut at, &birth);
        put(&mut line, &mut at, &[digit(db)]);
        put(&mut line, &mut at, &[mrz_char(p.sex)]);
        put(&mut line, &mut at, &expiry);
        put(&mut line, &mut at, &[digit(de)]);
        put(&mut line, &mut at, &optional);
        put(&mut line, &mut at, &[digit(dopt)]);
        // number+digit, birth+digit, expiry+digit, optional+digit: positions 1-10, 14-20, 22-43.
        let l2 = &line[start..];
        let composite: Vec<u8> = l2[0..10]
            .iter()
            .chain(&l2[13..20])
            .chain(&l2[21..43])
            .copied()
            .collect();
        let fin = digit_of(&composite);
        put(&mut line, &mut at, &[digit(fin)]);
        Zone {
            text: ascii(&line[..at]),
            digits: [dn, db, de, dopt, fin],
            optional: ascii(&optional),
        }
    }

    /// TD1 (identity cards): three lines of 30.
    pub fn td1(p: &Parts<'_>) -> Zone {
        let mut number = [b'<'; 9];
        fill(&mut number, p.number);
        let mut optional = [b'<'; 15];
        fill(&mut optional, p.optional);
        let (birth, expiry) = (six(p.birth), six(p.expiry));
        let digit = |d: u32| b'0' + d as u8;
        let (dn, db, de) = (digit_of(&number), digit_of(&birth), digit_of(&expiry));
        let mut line = [b'<'; 30 * 3 + 2];
        let mut at = 0;
        put(&mut line, &mut at, b"I<");
        put(&mut line, &mut at, &code(p.issuer));
        put(&mut line, &mut at, &number);
        put(&mut line, &mut at, &[digit(dn)]);
        put(&mut line, &mut at, &optional);
        put(&mut line, &mut at, b"^");
        put(&mut line, &mut at, &birth);
        put(&mut line, &mut at, &[digit(db)]);
        put(&mut line, &mut at, &[mrz_char(p.sex)]);
        put(&mut line, &mut at, &expiry);
        put(&mut line, &mut at, &[digit(de)]);
        put(&mut line, &mut at, &code(p.nationality));
        at += 11;
        // Upper line 6-30, middle line 1-7, 9-15, 19-29.
        let composite: Vec<u8> = line[5..30]
            .iter()
            .chain(&line[31..38])
            .chain(&line[39..46])
            .chain(&line[49..60])
            .copied()
            .collect();
        let fin = digit_of(&composite);
        put(&mut line, &mut at, &[digit(fin)]);
        put(&mut line, &mut at, b"^");
        fill_name(&mut line[at..at + 30], p.surname, p.given);
        at += 30;
        Zone {
            text: ascii(&line[..at]),
            digits: [dn, db, de, digit_of(&optional), fin],
            optional: ascii(&optional),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> SourceFile {
        SourceFile {
            name: name.into(),
            origin: format!("families/{name}.toml"),
            text: text.into(),
        }
    }

    #[test]
    fn the_bundled_families_load_without_an_error() {
        assert!(bundled_errors().is_empty(), "{:?}", bundled_errors());
        assert_eq!(bundled().names(), "ae_id, in_dl, passport, us_dl");
    }

    #[test]
    fn a_user_info_id_names_its_family_in_any_case() {
        let f = bundled();
        assert_eq!(
            f.for_user_id("Driving License", "IN")
                .map(|f| f.name.as_str()),
            Some("in_dl")
        );
        assert_eq!(
            f.for_user_id("driving licence", "us")
                .map(|f| f.name.as_str()),
            Some("us_dl")
        );
        assert_eq!(
            f.for_user_id("PASSPORT", "IN").map(|f| f.name.as_str()),
            Some("passport")
        );
        assert!(f.for_user_id("Voter ID", "IN").is_none());
    }

    #[test]
    fn a_bad_family_file_names_its_file_line_and_field() {
        let good = crate::scenario::bundled::FAMILIES
            .iter()
            .find(|(p, _)| *p == "in_dl.toml")
            .map(|(_, t)| *t)
            .unwrap();
        let mut errors = Vec::new();
        let bad = good.replace("value = \"guardianName\"", "value = \"guardian\"");
        assert!(parse_family(&file("x", &bad), &mut errors).is_none());
        assert_eq!(errors.len(), 1, "{errors:?}");
        let e = &errors[0];
        assert_eq!(e.file, "families/x.toml");
        assert_eq!(e.field.as_deref(), Some("fields.value"));
        let line = bad
            .lines()
            .position(|l| l.contains("\"guardian\""))
            .unwrap()
            + 1;
        assert_eq!(e.line, Some(line));
        assert!(e.message.contains("known: surnameAndGivenNames"), "{e}");

        let mut errors = Vec::new();
        let bad = good.replace("country = \"IN\"", "country = \"IN\"\ncolour = 1");
        parse_family(&file("y", &bad), &mut errors);
        assert_eq!(errors[0].field.as_deref(), Some("colour"), "{errors:?}");
        assert!(errors[0].line.is_some());

        let mut errors = Vec::new();
        let bad = good
            .replace("icao = \"IND\"", "icao = \"India\"")
            .replace("mrz = \"none\"", "mrz = \"td2\"");
        parse_family(&file("z", &bad), &mut errors);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_deref()).collect();
        assert_eq!(fields, [Some("icao"), Some("mrz")], "{errors:?}");
    }

    #[test]
    fn check_digits_are_icaos() {
        // ICAO 9303 part 3's worked example.
        assert_eq!(mrz::check_digit("520727"), 3);
        assert_eq!(mrz::check_digit("L898902C3"), 6);
        let zone = mrz::td3(&mrz::Parts {
            issuer: "UTO",
            surname: "Eriksson",
            given: "Anna Maria",
            number: "L898902C3",
            nationality: "UTO",
            birth: "740812",
            sex: 'F',
            expiry: "120415",
            optional: "ZE184226B",
        });
        assert_eq!(
            zone.text,
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<^L898902C36UTO7408122F1204159ZE184226B<<<<<10"
        );
    }

    #[test]
    fn a_td1_zone_has_three_lines_of_30_and_valid_check_digits() {
        let zone = mrz::td1(&mrz::Parts {
            issuer: "ARE",
            surname: "Al Nahyan",
            given: "Zoë",
            number: "123456789",
            nationality: "IND",
            birth: "850209",
            sex: 'F',
            expiry: "330623",
            optional: "784198512345678",
        });
        let lines: Vec<&str> = zone.text.split('^').collect();
        assert_eq!(
            lines.iter().map(|l| l.len()).collect::<Vec<_>>(),
            [30, 30, 30]
        );
        let (l1, l2) = (lines[0], lines[1]);
        assert_eq!(&l1[..5], "I<ARE");
        let d = |s: &str| mrz::check_digit(s).to_string();
        assert_eq!(d(&l1[5..14]), &l1[14..15]);
        assert_eq!(d(&l2[0..6]), &l2[6..7]);
        assert_eq!(d(&l2[8..14]), &l2[14..15]);
        let composite = format!("{}{}{}{}", &l1[5..30], &l2[0..7], &l2[8..15], &l2[18..29]);
        assert_eq!(d(&composite), &l2[29..30]);
        assert_eq!(lines[2], "AL<NAHYAN<<ZO<<<<<<<<<<<<<<<<<");
        assert_eq!(zone.digits[4].to_string(), &l2[29..30]);
    }

    #[test]
    fn patterns_fill_digits_letters_and_the_region() {
        let mut n = 0;
        let text = fill_pattern("{region}##-@", "KA", |_| {
            n += 1;
            n
        });
        assert_eq!(text, "KA12-D");
    }
}

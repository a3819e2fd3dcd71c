//! The document as OCR read it, for one scenario and one journey: the pre-fill the app sent
//! put on the document, then `extractedFields` in the family's order, `extractedFieldErrors`,
//! and `matchPercentage` computed from the two.
//!
//! [`settle`] runs once per render, before the template: the values it writes are printed as
//! whole holes (`person.document.extractedFields`, `person.match.*`), so the fast path and
//! Tera print the same text.
//!
//! How a match percentage is computed is ours (INFERRED; the provider documents only the
//! forms `"NA"` and `"<n>%"`): `"NA"` when the app sent nothing to compare or the family
//! prints no such field; `"0%"` when OCR did not read the field; for a date, `"100%"` when
//! both days are the same and `"0%"` otherwise; for a name or an address, the Sørensen–Dice
//! coefficient of the two texts' letter pairs (upper case, letters and digits only), in whole
//! percent, so the same text gives `"100%"` and another person's name a low score.

use std::borrow::Cow;

use serde_json::Value;

use super::facts::UserInfo;
use super::family::{mrz, FieldValue, MrzKind, Role, Source};
use super::person::{Identity, Person};
use crate::scenario::Ocr;
use crate::text::push_upper;
use crate::time::civil_from_days;

/// The day of 2026-01-01, as in `person`: ages are counted from it.
const REFERENCE_DAY: i64 = 20_454;

/// Day number of a date written `dd/mm/yyyy`, `dd-mm-yyyy`, `yyyy-mm-dd` or `yyyy/mm/dd`.
pub fn parse_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.trim().split(['/', '-']).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let (y, m, d) = if a.len() == 4 { (a, b, c) } else { (c, b, a) };
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1000..=9999).contains(&y) {
        return None;
    }
    let day = days_from_civil(y, m, d);
    (civil_from_days(day) == (y, m, d)).then_some(day)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm, as `civil_from_days`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn ddmmyyyy(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{d:02}/{m:02}/{y:04}")
}

fn upper(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    push_upper(&mut out, text);
    crate::text::finish(out)
}

/// `yymmdd` of a `dd/mm/yyyy` date, as an MRZ writes it.
fn yymmdd(date: &str) -> [u8; 6] {
    match date.as_bytes() {
        [d1, d2, _, m1, m2, _, _, _, y1, y2] => [*y1, *y2, *m1, *m2, *d1, *d2],
        _ => *b"<<<<<<",
    }
}

/// What the app sent that the document can show.
#[derive(Default)]
struct Prefill<'a> {
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    date_of_birth: Option<&'a str>,
    street: Option<&'a str>,
    city: Option<&'a str>,
    region: Option<&'a str>,
    postal_code: Option<&'a str>,
}

impl<'a> Prefill<'a> {
    fn of(user_info: &'a UserInfo) -> Prefill<'a> {
        let map = match user_info {
            UserInfo::Supplied(map) => map,
            UserInfo::Drawn {
                date_of_birth,
                first_name,
                last_name,
                ..
            } => {
                return Prefill {
                    first_name: Some(first_name),
                    last_name: Some(last_name),
                    date_of_birth: Some(date_of_birth),
                    ..Prefill::default()
                }
            }
        };
        let text = |v: Option<&'a Value>| {
            v.and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let name = map.get("name");
        let address = map.get("address");
        Prefill {
            first_name: text(name.and_then(|n| n.get("firstName"))),
            last_name: text(name.and_then(|n| n.get("lastName"))),
            date_of_birth: text(map.get("dateOfBirth")),
            street: text(address.and_then(|a| a.get("street"))),
            city: text(address.and_then(|a| a.get("city"))),
            region: text(address.and_then(|a| a.get("region"))),
            postal_code: text(address.and_then(|a| a.get("postalCode"))),
        }
    }

    fn has_name(&self) -> bool {
        self.first_name.is_some() || self.last_name.is_some()
    }

    fn has_address(&self) -> bool {
        self.street.is_some()
            || self.city.is_some()
            || self.region.is_some()
            || self.postal_code.is_some()
    }
}

/// Put what the app sent on the document: the names, the date of birth (with the ages made
/// from it) and the address. A date the mock cannot read stays the drawn one.
fn apply(person: &mut Person, prefill: &Prefill) {
    if prefill.has_name() {
        let identity = &mut person.identity;
        if let Some(first) = prefill.first_name {
            identity.first_name = first.to_string();
        }
        if let Some(last) = prefill.last_name {
            identity.last_name = last.to_string();
        }
        identity.full_name = format!("{} {}", identity.first_name, identity.last_name);
        identity.surname_and_given_names = format!(
            "{} {}",
            upper(&identity.last_name),
            upper(&identity.first_name)
        );
    }
    if let Some(day) = prefill.date_of_birth.and_then(parse_date) {
        let identity = &mut person.identity;
        identity.date_of_birth = ddmmyyyy(day);
        let (y, m, d) = civil_from_days(day);
        identity.date_of_birth_iso = format!("{y:04}-{m:02}-{d:02}");
        identity.age = ((REFERENCE_DAY - day) / 365).to_string();
        person.document.age_at_issue = ((person.document.issue_day - day) / 365).to_string();
    }
    if prefill.has_address() {
        let a = &mut person.address;
        if let Some(street) = prefill.street {
            a.street = street.to_string();
        }
        if let Some(city) = prefill.city {
            a.city = Cow::Owned(city.to_string());
            a.district_upper = Cow::Owned(upper(city));
        }
        if let Some(region) = prefill.region {
            let family = person.document.spec;
            let code = family
                .places
                .iter()
                .find(|p| p.region.eq_ignore_ascii_case(region))
                .map(|p| p.code.clone())
                .unwrap_or_else(|| upper(&region.chars().take(2).collect::<String>()));
            a.region = Cow::Owned(region.to_string());
            a.region_upper = Cow::Owned(upper(region));
            a.region_code = Cow::Owned(code);
        }
        if let Some(postal) = prefill.postal_code {
            a.postal_code = postal.to_string();
        }
    }
}

/// The letter pairs of a text, upper case, letters and digits only (words kept apart).
fn pairs(text: &str) -> Vec<[char; 2]> {
    let mut out = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        let chars: Vec<char> = word.chars().flat_map(char::to_uppercase).collect();
        out.extend(chars.windows(2).map(|w| [w[0], w[1]]));
    }
    out
}

/// Whether two texts are the same words, case aside (the usual case: the document shows
/// what was sent), which needs no letter pairs and no allocation.
fn same_words(a: &str, b: &str) -> bool {
    let same = |x: &str, y: &str| {
        x.eq_ignore_ascii_case(y) || (!x.is_ascii() && x.to_uppercase() == y.to_uppercase())
    };
    let mut x = a
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty());
    let mut y = b
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty());
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if same(p, q) => {}
            _ => return false,
        }
    }
}

/// The Sørensen–Dice coefficient of two texts' letter pairs, as `"<n>%"`.
pub fn similarity(a: &str, b: &str) -> String {
    if same_words(a, b) {
        return "100%".into();
    }
    let (x, mut y) = (pairs(a), pairs(b));
    if x.is_empty() && y.is_empty() {
        return "100%".into();
    }
    let total = x.len() + y.len();
    let mut shared = 0;
    for pair in &x {
        if let Some(i) = y.iter().position(|p| p == pair) {
            y.swap_remove(i);
            shared += 1;
        }
    }
    format!("{}%", (200 * shared + total / 2) / total.max(1))
}

/// `text` as a JSON string, as serde_json writes it (the walk and Tera write these values
/// with serde_json too): copied whole when nothing in it needs escaping, which is nearly
/// always, and by serde_json otherwise (its escapes differ from the template escaper's).
fn push_str(out: &mut Vec<u8>, text: &str) {
    if super::needs_escape(text.as_bytes()) {
        let _ = serde_json::to_writer(&mut *out, text);
    } else {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// Settle `person` for a scenario: the pre-fill on the document, then what OCR read of it.
pub fn settle(person: &mut Person, ocr: &Ocr, user_info: &UserInfo) {
    let prefill = Prefill::of(user_info);
    if matches!(user_info, UserInfo::Supplied(_)) {
        apply(person, &prefill);
    }
    let family = person.document.spec;
    let not_extracted: Vec<Role> = ocr
        .not_extracted
        .iter()
        .filter_map(|r| Role::parse(r))
        .collect();
    let mismatch = ocr.mismatch.as_deref().and_then(Role::parse);
    let holder: &Identity = if ocr.other_holder {
        &person.other
    } else {
        &person.identity
    };
    let doc = &person.document;
    let (date_of_issue, years_since_issue, age_at_issue, date_of_expiry, remainder) = if ocr.expired
    {
        (
            doc.date_of_issue_past.as_str(),
            doc.years_since_issue_past.as_str(),
            doc.age_at_issue_past.as_str(),
            doc.date_of_expiry_past.as_str(),
            "0",
        )
    } else {
        (
            doc.date_of_issue.as_str(),
            doc.years_since_issue.as_str(),
            doc.age_at_issue.as_str(),
            doc.date_of_expiry.as_str(),
            doc.remainder_term.as_str(),
        )
    };
    // The MRZ encodes the holder; in an OCR-against-MRZ mismatch on the date of birth, it
    // encodes another date than the one printed.
    let zone = if family.mrz == MrzKind::None {
        None
    } else {
        let mrz_birth = if mismatch == Some(Role::DateOfBirth) {
            let other = if ocr.other_holder {
                &person.identity
            } else {
                &person.other
            };
            yymmdd(&other.date_of_birth)
        } else {
            yymmdd(&holder.date_of_birth)
        };
        let expiry = yymmdd(date_of_expiry);
        let parts = mrz::Parts {
            issuer: &family.icao,
            surname: &holder.last_name,
            given: &holder.first_name,
            number: if family.mrz == MrzKind::Td1 {
                &doc.card_number
            } else {
                &doc.number
            },
            nationality: &family.nationality_code,
            birth: std::str::from_utf8(&mrz_birth).unwrap_or("<<<<<<"),
            sex: if doc.male { 'M' } else { 'F' },
            expiry: std::str::from_utf8(&expiry).unwrap_or("<<<<<<"),
            optional: if family.mrz == MrzKind::Td1 {
                &doc.number
            } else {
                ""
            },
        };
        Some(if family.mrz == MrzKind::Td1 {
            mrz::td1(&parts)
        } else {
            mrz::td3(&parts)
        })
    };
    let a = &person.address;
    // Upper-cased text is made in one scratch buffer, not a String per field.
    let mut scratch: Vec<u8> = Vec::with_capacity(96);
    let mut put_upper = |out: &mut Vec<u8>, parts: &[&str]| {
        scratch.clear();
        for part in parts {
            push_upper(&mut scratch, part);
        }
        if super::needs_escape(&scratch) {
            push_str(out, std::str::from_utf8(&scratch).unwrap_or(""));
        } else {
            out.push(b'"');
            out.extend_from_slice(&scratch);
            out.push(b'"');
        }
    };
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    let digit = |i: usize| {
        zone.as_ref()
            .map(|z| DIGITS[z.digits[i] as usize % 10])
            .unwrap_or("")
    };

    let mut out: Vec<u8> = Vec::with_capacity(1024);
    out.push(b'{');
    let mut first = true;
    let mut printed: [bool; 6] = [false; 6];
    for field in &family.fields {
        let source = match &field.value {
            FieldValue::Literal(_) => None,
            FieldValue::From(source) => Some(*source),
        };
        let role = source.and_then(Source::role);
        if let Some(role) = role {
            printed[role as usize] = true;
        }
        // Unreadable: nothing but the side the capture was of (spec §4.3: {"Side1": "front"}).
        if ocr.unreadable && !field.key.starts_with("Side") {
            continue;
        }
        if role.is_some_and(|r| not_extracted.contains(&r)) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        push_str(&mut out, &field.key);
        out.push(b':');
        let text: &str = match (&field.value, source) {
            (FieldValue::Literal(text), _) => text,
            (_, Some(source)) => match source {
                Source::SplitAddress => {
                    out.extend_from_slice(b"{\"district\":[");
                    push_str(&mut out, &a.district_upper);
                    out.extend_from_slice(b"],\"state\":[[");
                    push_str(&mut out, &a.region_upper);
                    out.push(b',');
                    push_str(&mut out, &a.region_code);
                    out.extend_from_slice(b"]],\"city\":[");
                    push_str(&mut out, &a.district_upper);
                    out.extend_from_slice(b"],\"pincode\":");
                    push_str(&mut out, &a.postal_code);
                    out.extend_from_slice(b",\"country\":[");
                    push_str(&mut out, &family.country);
                    out.push(b',');
                    push_str(&mut out, &family.icao);
                    out.push(b',');
                    push_str(&mut out, &family.country_name_upper);
                    out.extend_from_slice(b"],\"addressLine\":");
                    put_upper(&mut out, &[&a.street]);
                    out.push(b'}');
                    continue;
                }
                Source::FullNameUpper => {
                    put_upper(&mut out, &[&holder.full_name]);
                    continue;
                }
                Source::GivenNamesUpper => {
                    put_upper(&mut out, &[&holder.first_name]);
                    continue;
                }
                Source::SurnameUpper => {
                    put_upper(&mut out, &[&holder.last_name]);
                    continue;
                }
                Source::AddressStreetUpper => {
                    put_upper(&mut out, &[&a.street]);
                    continue;
                }
                Source::AddressCityUpper => {
                    put_upper(&mut out, &[&a.city]);
                    continue;
                }
                Source::AddressUpper => {
                    put_upper(
                        &mut out,
                        &[
                            &a.street,
                            ", ",
                            &a.city,
                            ", ",
                            &a.region,
                            " ",
                            &a.postal_code,
                        ],
                    );
                    continue;
                }
                Source::SurnameAndGivenNames => &holder.surname_and_given_names,
                Source::FullName => &holder.full_name,
                Source::FirstName => &holder.first_name,
                Source::LastName => &holder.last_name,
                Source::DateOfBirth => &holder.date_of_birth,
                Source::Age => &holder.age,
                Source::DocumentNumber => &doc.number,
                Source::CardNumber => &doc.card_number,
                Source::DateOfIssue => date_of_issue,
                Source::YearsSinceIssue => years_since_issue,
                Source::AgeAtIssue => age_at_issue,
                Source::DateOfExpiry => date_of_expiry,
                Source::RemainderTerm => remainder,
                Source::PostalCode => &a.postal_code,
                Source::RegionCode => &a.region_code,
                Source::StateName => &a.region,
                Source::Sex => doc.sex,
                Source::Nationality => person.nationality,
                Source::NationalityCode => person.nationality_code,
                Source::IssuingStateCode => &family.icao,
                Source::IssuingStateName => &family.country_name,
                Source::ClassCode => &family.class_code,
                Source::PlaceOfIssue => doc.place_of_issue,
                Source::GuardianName => &person.guardian_name,
                Source::Mrz => zone.as_ref().map(|z| z.text.as_str()).unwrap_or(""),
                Source::MrzDocumentNumberCheckDigit => digit(0),
                Source::MrzDateOfBirthCheckDigit => digit(1),
                Source::MrzDateOfExpiryCheckDigit => digit(2),
                Source::MrzOptionalDataCheckDigit => digit(3),
                Source::MrzFinalCheckDigit => digit(4),
                Source::MrzOptionalData => zone
                    .as_ref()
                    .map(|z| z.optional.trim_end_matches('<'))
                    .unwrap_or(""),
            },
            (FieldValue::From(_), None) => "",
        };
        push_str(&mut out, text);
    }
    out.push(b'}');
    let extracted = out;

    // extractedFieldErrors: one NOT_EXTRACTED item per role OCR missed (spec §4.3), then the
    // mismatch item (INFERRED: its errorStatus and message are ours).
    // The key the family gives the role's usual name ("Document Number" on a UAE card, where
    // it holds the card's number), else its primary field's, else the first of the role.
    let field_name = |role: Role| -> &str {
        let of_role = |f: &&super::family::Field| matches!(f.value, FieldValue::From(s) if s.role() == Some(role));
        family
            .fields
            .iter()
            .filter(of_role)
            .find(|f| f.key == role.default_field())
            .or_else(|| {
                family.fields.iter().find(|f| {
                    matches!(f.value, FieldValue::From(s) if s.role() == Some(role) && s.is_primary())
                })
            })
            .or_else(|| {
                family
                    .fields
                    .iter()
                    .find(|f| matches!(f.value, FieldValue::From(s) if s.role() == Some(role)))
            })
            .map(|f| f.key.as_str())
            .unwrap_or(role.default_field())
    };
    let mut errors: Vec<u8> =
        Vec::with_capacity(if not_extracted.is_empty() && mismatch.is_none() {
            2
        } else {
            256
        });
    errors.push(b'[');
    let item = |errors: &mut Vec<u8>, name: &str, message: &str, status: &str| {
        if errors.len() > 1 {
            errors.push(b',');
        }
        errors.extend_from_slice(b"{\"fieldName\":");
        push_str(errors, name);
        errors.extend_from_slice(b",\"message\":");
        push_str(errors, message);
        errors.extend_from_slice(b",\"errorStatus\":");
        push_str(errors, status);
        errors.push(b'}');
    };
    for role in &not_extracted {
        item(
            &mut errors,
            field_name(*role),
            role.not_extracted(),
            "NOT_EXTRACTED",
        );
    }
    if let Some(role) = mismatch {
        let message = format!(
            "{} does not match between OCR and {}",
            role.subject(),
            family.cross_check
        );
        item(&mut errors, field_name(role), &message, "OCR_MISMATCH");
    }
    errors.push(b']');

    // matchPercentage: the pre-fill against what was read (the primary field of each role).
    let score = |role: Role, compare: &dyn Fn() -> Cow<'static, str>| -> Cow<'static, str> {
        if !printed[role as usize] {
            return Cow::Borrowed("NA");
        }
        if ocr.unreadable || not_extracted.contains(&role) {
            return Cow::Borrowed("0%");
        }
        compare()
    };
    let percent = |text: String| -> Cow<'static, str> {
        match text.as_str() {
            "100%" => Cow::Borrowed("100%"),
            "0%" => Cow::Borrowed("0%"),
            _ => Cow::Owned(text),
        }
    };
    let full_name = if prefill.has_name() {
        score(Role::Name, &|| {
            let (last, first) = (
                prefill.last_name.unwrap_or(""),
                prefill.first_name.unwrap_or(""),
            );
            let read = &holder.surname_and_given_names;
            // The usual case, the name sent is the name read, needs no copy.
            if read.len() == last.len() + 1 + first.len()
                && same_words(&read[..last.len().min(read.len())], last)
                && read
                    .get(last.len() + 1..)
                    .is_some_and(|r| same_words(r, first))
            {
                return Cow::Borrowed("100%");
            }
            percent(similarity(&format!("{last} {first}"), read))
        })
    } else {
        Cow::Borrowed("NA")
    };
    let date_of_birth = match prefill.date_of_birth {
        Some(sent) => score(Role::DateOfBirth, &|| {
            let same = sent == holder.date_of_birth
                || matches!((parse_date(sent), parse_date(&holder.date_of_birth)), (Some(x), Some(y)) if x == y);
            Cow::Borrowed(if same { "100%" } else { "0%" })
        }),
        None => Cow::Borrowed("NA"),
    };
    let address = if prefill.has_address() {
        score(Role::Address, &|| {
            let sent = format!(
                "{}, {}, {} {}",
                prefill.street.unwrap_or(""),
                prefill.city.unwrap_or(""),
                prefill.region.unwrap_or(""),
                prefill.postal_code.unwrap_or("")
            );
            let read = format!("{}, {}, {} {}", a.street, a.city, a.region, a.postal_code);
            percent(similarity(&sent, &read))
        })
    } else {
        Cow::Borrowed("NA")
    };
    person.match_percentage.full_name = full_name;
    person.match_percentage.date_of_birth = date_of_birth;
    person.match_percentage.address = address;
    // No userInfo field carries a document number (spec §2.2), so there is never anything to
    // compare it with.
    person.match_percentage.document_number = Cow::Borrowed("NA");
    person.document.extracted_fields.0 = extracted;
    person.document.extracted_field_errors.0 = errors;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_in_the_forms_apps_send_them() {
        assert_eq!(parse_date("01/01/1995"), parse_date("1995-01-01"));
        assert_eq!(parse_date("01-01-1995"), parse_date("1995/01/01"));
        assert_eq!(ddmmyyyy(parse_date("29/02/2000").unwrap()), "29/02/2000");
        assert_eq!(parse_date("31/02/2000"), None);
        assert_eq!(parse_date("yesterday"), None);
        for day in (-20_000..30_000).step_by(17) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn the_same_name_scores_100_and_another_scores_low() {
        assert_eq!(similarity("MEHTA ROHAN", "Mehta Rohan"), "100%");
        assert_eq!(similarity("Doe, John", "JOHN DOE"), "100%");
        let other: u32 = similarity("MEHTA ROHAN", "GARCIA LUCY")
            .trim_end_matches('%')
            .parse()
            .unwrap();
        assert!(other < 40, "{other}");
        assert_eq!(similarity("ABC", "XYZ"), "0%");
    }
}

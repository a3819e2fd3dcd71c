//! The bundled scenario catalogue, asked in process: every scenario is reachable by its name,
//! by an alias and by the `X-Mock-Scenario` header, and shows the failure it exists for; and
//! every document in the catalogue keeps the provider's value forms (spec §3, §8).

mod common;

use std::net::IpAddr;

use common::{Mock, Reply};
use otk_mock::catalogue::Catalogue;
use otk_mock::scenario::loader::CatalogueSource;
use pretty_assertions::assert_eq;
use serde_json::{json, Map, Value};

/// A journey id of the real form (10 upper-case alphanumerics) that no scenario prefixes.
const NEUTRAL_ID: &str = "Q7K2M9X4ZA";

const COMPLETED: (&str, &str, &str) = ("COMPLETED", "COMPLETE", "Journey Completed");

/// The `result` of a get-journey, with the status triple checked.
fn result_with_status(reply: &Reply, expected: (&str, &str, &str), how: &str) -> Value {
    let doc = reply.result();
    let got = (
        doc["currentStatus"].as_str().unwrap_or_default(),
        doc["step"].as_str().unwrap_or_default(),
        doc["message"].as_str().unwrap_or_default(),
    );
    assert_eq!(got, expected, "status, step and message ({how})");
    doc
}

/// Fetch scenario `name` by name prefix, by `alias` prefix and by header on a neutral id;
/// check the status triple and run `check` on each document.
async fn assert_selected_three_ways(
    name: &str,
    alias: &str,
    status: (&str, &str, &str),
    check: impl Fn(&Value),
) {
    let server = common::start().await;
    let catalogue = server.app().catalogue();
    assert_eq!(
        catalogue.find(alias).map(|s| s.name.as_str()),
        Some(name),
        "`{alias}` is an alias of `{name}`"
    );
    assert!(
        catalogue.by_prefix(NEUTRAL_ID).is_none(),
        "{NEUTRAL_ID} must not select a scenario by itself"
    );

    let by_name = format!("{name}-1");
    let by_alias = format!("{alias}-1");
    for (id, header, how) in [
        (by_name.as_str(), None, "name prefix"),
        (by_alias.as_str(), None, "alias prefix"),
        (NEUTRAL_ID, Some(name), "X-Mock-Scenario header"),
    ] {
        let headers: Vec<(&str, &str)> =
            header.map(|h| ("x-mock-scenario", h)).into_iter().collect();
        let reply = common::get_journey(&server, id, &headers).await;
        let doc = result_with_status(&reply, status, how);
        assert_eq!(doc["journeyId"], id, "{how}");
        // Shown only when a check below fails, to say which selection it failed for.
        println!("checking `{name}` selected by {how} (journey {id})");
        check(&doc);
    }
    server.shutdown().await;
}

/// The first of `keys` the extracted fields hold: key spelling varies by document family
/// ("Date of Expiry", "Date Of Expiry" on an Indian licence).
fn field<'a>(doc: &'a Value, keys: &[&str]) -> &'a str {
    let fields = &doc["documentIntelligence"]["extractedFields"];
    keys.iter()
        .find_map(|k| fields[*k].as_str())
        .unwrap_or_else(|| panic!("none of {keys:?} in {fields}"))
}

/// A percentage string (`"23%"`) as its number.
fn percent(text: &Value) -> u32 {
    text.as_str()
        .and_then(|t| t.strip_suffix('%'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a percentage: {text}"))
}

fn str_at<'a>(doc: &'a Value, pointer: &str) -> &'a str {
    doc.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} is not a string in {doc:#}"))
}

/// The one record under `ipAddresses`, with its key.
fn ip_record(doc: &Value) -> (&str, &Map<String, Value>) {
    let map = doc["ipAddresses"]
        .as_object()
        .expect("ipAddresses is an object");
    assert_eq!(map.len(), 1, "one IP: {map:?}");
    let (ip, record) = map.iter().next().expect("one IP");
    (
        ip,
        record.as_object().expect("the IP's record is an object"),
    )
}

fn fraud_score(record: &Map<String, Value>) -> u32 {
    record["fraudScore"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("fraudScore is a number in a string: {record:?}"))
}

/// `dd/mm/yyyy` as a sortable (yyyy, mm, dd).
fn ymd(date: &str) -> (u32, u32, u32) {
    let parts: Vec<u32> = date
        .split('/')
        .map(|p| {
            p.parse()
                .unwrap_or_else(|_| panic!("{date:?} is not dd/mm/yyyy"))
        })
        .collect();
    assert_eq!(parts.len(), 3, "{date:?} is not dd/mm/yyyy");
    (parts[2], parts[1], parts[0])
}

/// The (yyyy, mm, dd) of an ISO `updatedAt`-style timestamp.
fn ymd_of_iso(iso: &str) -> (u32, u32, u32) {
    let field = |range: std::ops::Range<usize>| -> u32 {
        iso.get(range)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{iso:?} is not ISO-8601"))
    };
    (field(0..4), field(5..7), field(8..10))
}

fn not_started_selfie() -> Value {
    json!({
        "passiveLiveliness": { "status": "Not Started" },
        "faceMatch": { "status": "Not Started" }
    })
}

// ---- One test per bundled scenario ---------------------------------------------------------

#[tokio::test]
async fn success_passes_every_check() {
    assert_selected_three_ways("success", "ok", COMPLETED, |doc| {
        assert_eq!(doc["selfieAnalysis"]["passiveLiveliness"]["liveness"], true);
        assert_eq!(doc["selfieAnalysis"]["faceMatch"]["verified"], true);
        assert_eq!(
            doc["documentIntelligence"]["completeStatus"]["overallStatus"],
            "True"
        );
        assert_eq!(doc["documentIntelligence"]["idExpired"], "False");
        assert_eq!(doc["documentIntelligence"]["imageQuality"]["result"], true);
        let (_, record) = ip_record(doc);
        assert_eq!(record["vpn"], "false");
        assert_eq!(record["tor"], "false");
    })
    .await;
}

#[tokio::test]
async fn liveness_failed_reports_a_selfie_that_is_not_live() {
    assert_selected_three_ways("liveness_failed", "lf", COMPLETED, |doc| {
        assert_eq!(
            doc["selfieAnalysis"]["passiveLiveliness"],
            json!({ "status": "200", "liveness": false, "score": 0.12 })
        );
        assert_eq!(doc["selfieAnalysis"]["faceMatch"]["verified"], true);
    })
    .await;
}

#[tokio::test]
async fn face_mismatch_reports_a_negative_face_match() {
    assert_selected_three_ways("face_mismatch", "fm", COMPLETED, |doc| {
        assert_eq!(
            doc["selfieAnalysis"]["faceMatch"],
            json!({
                "status": "200",
                "verified": false,
                "message": "Verification completed with negative result",
                "matchPercentage": "23.41%"
            })
        );
        assert_eq!(doc["selfieAnalysis"]["passiveLiveliness"]["liveness"], true);
    })
    .await;
}

#[tokio::test]
async fn id_expired_reports_an_expired_document_with_a_past_expiry_date() {
    assert_selected_three_ways("id_expired", "ide", COMPLETED, |doc| {
        let di = &doc["documentIntelligence"];
        assert_eq!(di["idExpired"], "True");
        let cs = &di["completeStatus"];
        assert_eq!(cs["detailsOptical"]["expiry"], "False");
        assert_eq!(cs["detailsOptical"]["overallStatus"], "False");
        assert_eq!(cs["optical"], "False");
        assert_eq!(cs["overallStatus"], "False");
        assert_eq!(cs["severity"], "High");
        if let Some(term) = di["extractedFields"].get("RemainderTerm") {
            assert_eq!(term, "0");
        }

        let expiry = field(doc, &["Date of Expiry", "Date Of Expiry"]);
        let issue = field(doc, &["Date of Issue", "Issue Date"]);
        let updated = ymd_of_iso(str_at(doc, "/updatedAt"));
        assert!(ymd(expiry) < updated, "expired {expiry} before {updated:?}");
        assert!(
            ymd(issue) < ymd(expiry),
            "issued {issue} before expiry {expiry}"
        );
        for entry in doc["externalApiResponses"].as_array().expect("an array") {
            assert_eq!(entry["response"]["expiryDate"], expiry);
        }
    })
    .await;
}

#[tokio::test]
async fn vpn_flagged_marks_the_ip_as_a_vpn_with_a_high_fraud_score() {
    assert_selected_three_ways("vpn_flagged", "vpn", COMPLETED, |doc| {
        let (_, record) = ip_record(doc);
        assert_eq!(record["vpn"], "true");
        assert_eq!(record["proxy"], "true");
        assert_eq!(record["tor"], "false");
        assert!(fraud_score(record) >= 85, "{record:?}");
    })
    .await;
}

#[tokio::test]
async fn tor_proxy_marks_the_ip_as_tor_and_proxy() {
    assert_selected_three_ways("tor_proxy", "tor", COMPLETED, |doc| {
        let (_, record) = ip_record(doc);
        assert_eq!(record["tor"], "true");
        assert_eq!(record["proxy"], "true");
        assert_eq!(record["recentAbuse"], "true");
        assert!(fraud_score(record) >= 85, "{record:?}");
    })
    .await;
}

#[tokio::test]
async fn document_tampered_fails_authenticity_elements_and_the_verdict() {
    assert_selected_three_ways("document_tampered", "tampered", COMPLETED, |doc| {
        let di = &doc["documentIntelligence"];
        let cs = &di["completeStatus"];
        assert_eq!(cs["detailsOptical"]["security"], "False");
        assert_eq!(cs["detailsOptical"]["overallStatus"], "False");
        assert_eq!(cs["optical"], "False");
        assert_eq!(cs["overallStatus"], "False");

        let mut failed = Vec::new();
        for list in ["frontAuthenticityCheckList", "backAuthenticityCheckList"] {
            // A one-sided document (a passport, an Indian licence) has no back list.
            let Some(checks) = di["authenticityCheck"][list].as_object() else {
                assert_eq!(list, "backAuthenticityCheckList");
                assert_eq!(doc["capturedData"]["images"]["backDoc"], "");
                continue;
            };
            for (check, elements) in checks {
                for element in elements.as_array().expect("an array of elements") {
                    let diagnose = element["ElementDiagnose"].as_str().expect("a string");
                    match element["ElementResult"].as_bool() {
                        Some(true) => assert_eq!(diagnose, "pass", "{check}"),
                        Some(false) => failed.push((check.clone(), diagnose.to_string())),
                        None => panic!("ElementResult is a boolean: {element}"),
                    }
                }
            }
        }
        assert!(!failed.is_empty(), "some element fails");
        for (check, diagnose) in &failed {
            assert!(
                !diagnose.is_empty() && diagnose != "pass",
                "{check}: a failing element says why, not {diagnose:?}"
            );
        }
        assert!(
            failed.iter().any(|(c, _)| c == "photoEmbedType"),
            "{failed:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn poor_image_quality_fails_glare_and_focus() {
    assert_selected_three_ways("poor_image_quality", "piq", COMPLETED, |doc| {
        let di = &doc["documentIntelligence"];
        assert_eq!(di["imageQuality"]["result"], false);
        assert_eq!(di["imageQuality"]["frontIdCheck"]["ImageGlares"], false);
        assert_eq!(di["imageQuality"]["frontIdCheck"]["ImageFocus"], false);
        assert_eq!(di["completeStatus"]["detailsOptical"]["imageQA"], "False");
    })
    .await;
}

#[tokio::test]
async fn mask_detected_reports_a_covered_face() {
    assert_selected_three_ways("mask_detected", "mask", COMPLETED, |doc| {
        assert_eq!(
            doc["selfieAnalysis"]["additionalFaceChecks"],
            json!({
                "maskDetection": {
                    "status": "200",
                    "result": { "found": true, "confidence": 0.97 }
                },
                "faceCoverDetection": {
                    "status": "200",
                    "result": { "isFaceCovered": true, "faceGears": ["Mask"] }
                }
            })
        );
    })
    .await;
}

#[tokio::test]
async fn name_mismatch_prefills_someone_other_than_the_document_shows() {
    assert_selected_three_ways("name_mismatch", "nm", COMPLETED, |doc| {
        // Computed: another person's name scores low, another date "0%".
        assert!(
            percent(&doc["matchPercentage"]["fullNameMatch"]) < 60,
            "{doc}"
        );
        assert_eq!(doc["matchPercentage"]["dateOfBirthMatch"], "0%");
        let fields = &doc["documentIntelligence"]["extractedFields"];
        let info = &doc["userInfo"];
        let sent = format!(
            "{} {}",
            info["name"]["lastName"].as_str().unwrap(),
            info["name"]["firstName"].as_str().unwrap()
        )
        .to_uppercase();
        assert_ne!(fields["Surname And Given Names"], sent.as_str());
        assert_ne!(info["dateOfBirth"], fields["Date of Birth"]);
        assert!(info["phoneNumber"].is_string(), "{info}");
        assert!(info["emailAddress"].is_string(), "{info}");
    })
    .await;
}

#[tokio::test]
async fn name_mismatch_keeps_the_prefill_and_changes_the_document() {
    let server = common::start().await;
    let header = |name| [("x-mock-scenario", name)];
    let success = common::get_journey(&server, NEUTRAL_ID, &header("success"))
        .await
        .result();
    let mismatch = common::get_journey(&server, NEUTRAL_ID, &header("name_mismatch"))
        .await
        .result();
    // userInfo is what the app sent; it is the document that names someone else.
    assert_eq!(mismatch["userInfo"], success["userInfo"]);
    let fields = |doc: &Value| doc["documentIntelligence"]["extractedFields"].clone();
    for key in ["names", "Surname And Given Names", "Date of Birth"] {
        assert_ne!(fields(&mismatch)[key], fields(&success)[key], "{key}");
    }
    for key in [
        "Document Number",
        "Nationality",
        "Date of Expiry",
        "Date Of Expiry",
    ] {
        assert_eq!(fields(&mismatch)[key], fields(&success)[key], "{key}");
    }
    assert_eq!(success["matchPercentage"]["fullNameMatch"], "100%");
    server.shutdown().await;
}

#[tokio::test]
async fn retries_exceeded_returns_the_partly_filled_terminated_document() {
    let status = ("TERMINATED", "RETRIES_EXCEEDED", "Retries Exceeded");
    assert_selected_three_ways("retries_exceeded", "retries", status, |doc| {
        assert_eq!(doc["selfieAnalysis"], not_started_selfie());
        let di = doc["documentIntelligence"].as_object().expect("an object");
        assert_eq!(di["imageQuality"], json!({ "result": true }));
        assert_eq!(di["extractedFields"], json!({ "Side1": "front" }));
        // The second real capture (spec §4.3): one NOT_EXTRACTED item per required field.
        let names: Vec<&str> = di["extractedFieldErrors"]
            .as_array()
            .expect("an array")
            .iter()
            .map(|e| {
                assert_eq!(e["errorStatus"], "NOT_EXTRACTED");
                e["fieldName"].as_str().unwrap()
            })
            .collect();
        assert_eq!(
            names,
            [
                "Surname And Given Names",
                "Date of Birth",
                "Document Number"
            ]
        );
        assert_eq!(
            di["extractedFieldErrors"][1]["message"],
            "Date of birth not extracted"
        );
        // The pre-fill's date of birth had nothing to match: "0%", as in the capture.
        assert_eq!(doc["matchPercentage"]["dateOfBirthMatch"], "0%");
        for absent in [
            "authenticityCheck",
            "graphicFields",
            "predictedIdTypeFront",
            "predictedIdTypeBack",
        ] {
            assert!(!di.contains_key(absent), "{absent} is absent");
        }
        assert_eq!(doc["externalApiResponses"], json!([]));
        assert_eq!(doc["deletionTimeLimit"], Value::Null);
        assert_eq!(doc["startedAt"], Value::Null);
        assert!(doc["completedAt"].is_u64(), "completedAt is set");
        let captured = &doc["capturedData"];
        assert!(str_at(doc, "/capturedData/images/frontDoc").starts_with("https://"));
        assert_eq!(captured["images"]["backDoc"], "");
        assert_eq!(captured["images"]["selfie"], "");
        assert_eq!(captured["livenessConsent"], false);
    })
    .await;
}

#[tokio::test]
async fn in_progress_has_a_document_but_no_selfie_and_no_completion() {
    let status = ("IN_PROGRESS", "SELFIE_CAPTURE", "Journey In Progress");
    assert_selected_three_ways("in_progress", "pending", status, |doc| {
        assert_eq!(doc["completedAt"], Value::Null);
        assert!(doc["startedAt"].is_u64(), "startedAt is set");
        assert_eq!(doc["selfieAnalysis"], not_started_selfie());
        assert!(str_at(doc, "/capturedData/images/frontDoc").starts_with("https://"));
        assert_eq!(doc["capturedData"]["images"]["selfie"], "");
        let di = &doc["documentIntelligence"];
        assert!(di["docIntelligenceCompletedAt"].is_string(), "{di}");
        assert!(
            di["completeStatus"].is_object(),
            "the document was analysed"
        );
    })
    .await;
    let catalogue = Catalogue::load(&CatalogueSource::default(), 0).expect("catalogue loads");
    let scenario = catalogue
        .find("in_progress")
        .expect("in_progress is bundled");
    assert!(
        !scenario.terminal,
        "an unfinished journey sends no callback"
    );
}

#[tokio::test]
async fn link_expired_has_nothing_captured_and_was_never_started() {
    let status = ("EXPIRED", "LINK_EXPIRED", "Journey Link Expired");
    assert_selected_three_ways("link_expired", "le", status, |doc| {
        let captured = &doc["capturedData"];
        assert_eq!(
            captured["images"],
            json!({ "frontDoc": "", "backDoc": "", "selfie": "" })
        );
        assert_eq!(captured["consent"], false);
        assert_eq!(captured["livenessConsent"], false);
        assert_eq!(doc["startedAt"], Value::Null);
        assert_eq!(doc["selfieAnalysis"], not_started_selfie());
        let di = doc["documentIntelligence"].as_object().expect("an object");
        assert!(
            !di.contains_key("completeStatus"),
            "no analysis ran: {di:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn ip_check_disabled_records_only_the_providers_message() {
    assert_selected_three_ways("ip_check_disabled", "ipoff", COMPLETED, |doc| {
        let (ip, record) = ip_record(doc);
        assert!(ip.parse::<IpAddr>().is_ok(), "keyed by an IP: {ip:?}");
        assert_eq!(
            Value::Object(record.clone()),
            json!({ "message": "IP Check is not Enabled" })
        );
    })
    .await;
}

#[tokio::test]
async fn ocr_partial_leaves_two_fields_out_and_says_so() {
    assert_selected_three_ways("ocr_partial", "op", COMPLETED, |doc| {
        let di = &doc["documentIntelligence"];
        let errors = di["extractedFieldErrors"].as_array().expect("an array");
        let named: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| {
                assert_eq!(e["errorStatus"], "NOT_EXTRACTED", "{e}");
                (
                    e["fieldName"].as_str().unwrap(),
                    e["message"].as_str().unwrap(),
                )
            })
            .collect();
        let fields = di["extractedFields"].as_object().expect("an object");
        for (name, _) in &named {
            assert!(!fields.contains_key(*name), "{name} is absent: {fields:?}");
        }
        let messages: Vec<&str> = named.iter().map(|(_, m)| *m).collect();
        assert_eq!(
            messages,
            ["Date of birth not extracted", "ID number not extracted"]
        );
        // The pre-fill's date of birth had nothing to be compared with.
        assert_eq!(doc["matchPercentage"]["dateOfBirthMatch"], "0%");
        assert_eq!(di["completeStatus"]["overallStatus"], "True");
    })
    .await;
}

#[tokio::test]
async fn ocr_mismatch_reports_ocr_and_mrz_disagreeing() {
    assert_selected_three_ways("ocr_mismatch", "om", COMPLETED, |doc| {
        let di = &doc["documentIntelligence"];
        let errors = di["extractedFieldErrors"].as_array().expect("an array");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0]["errorStatus"], "OCR_MISMATCH");
        assert_eq!(errors[0]["fieldName"], "Date of Birth");
        assert_eq!(
            errors[0]["message"],
            "Date of birth does not match between OCR and MRZ"
        );
        assert_eq!(di["completeStatus"]["detailsOptical"]["mrz"], "False");
        assert_eq!(di["completeStatus"]["overallStatus"], "False");
        // The passport's MRZ really encodes another date of birth than the printed one.
        let printed = str_at(doc, "/documentIntelligence/extractedFields/Date of Birth");
        let mrz = str_at(doc, "/documentIntelligence/extractedFields/MRZ Strings");
        let line2 = mrz.split('^').nth(1).unwrap();
        let yymmdd = format!("{}{}{}", &printed[8..10], &printed[3..5], &printed[0..2]);
        assert_ne!(&line2[13..19], yymmdd);
    })
    .await;
}

/// Every bundled scenario has its test above; a new one needs its own.
#[test]
fn every_bundled_scenario_has_a_test_here() {
    let catalogue = Catalogue::load(&CatalogueSource::default(), 0).expect("catalogue loads");
    let mut names = catalogue.names();
    names.sort_unstable();
    assert_eq!(
        names,
        vec![
            "document_tampered",
            "face_mismatch",
            "id_expired",
            "in_progress",
            "ip_check_disabled",
            "link_expired",
            "liveness_failed",
            "mask_detected",
            "name_mismatch",
            "ocr_mismatch",
            "ocr_partial",
            "poor_image_quality",
            "retries_exceeded",
            "success",
            "tor_proxy",
            "vpn_flagged",
        ]
    );
}

// ---- The external verification of UAE flows (spec §3.9) ------------------------------------

#[tokio::test]
async fn uae_journeys_carry_the_resident_id_verification_and_others_none() {
    let server = common::start().await;
    let (mut uae, mut other) = (0, 0);
    for i in 0..30 {
        let doc = common::get_journey(&server, &format!("success-{i}"), &[])
            .await
            .result();
        let responses = doc["externalApiResponses"].as_array().expect("an array");
        if doc["capturedData"]["country"] != "AE" {
            other += 1;
            assert_eq!(responses, &Vec::<Value>::new(), "success-{i}");
            continue;
        }
        uae += 1;
        assert_eq!(responses.len(), 1, "success-{i}");
        let entry = &responses[0];
        assert_eq!(entry["api"], "resident id card verification");
        let input = entry["input"].as_object().expect("input is an object");
        let mut input_keys: Vec<&str> = input.keys().map(String::as_str).collect();
        input_keys.sort_unstable();
        assert_eq!(
            input_keys,
            ["current nationality", "date of birth", "emirates id number"]
        );
        let response = entry["response"]
            .as_object()
            .expect("response is an object");
        let keys: Vec<&str> = response.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "emiratesIdNumber",
                "dateOfBirth",
                "currentNationality",
                "issueDate",
                "expiryDate",
                "eidCardNumber",
                "overallStatus"
            ]
        );
        assert!(response.values().all(Value::is_string), "{response:?}");
        assert_eq!(response["overallStatus"], "true");
        assert_eq!(response["emiratesIdNumber"], input["emirates id number"]);
        assert_ne!(response["eidCardNumber"], response["emiratesIdNumber"]);
        let fields = &doc["documentIntelligence"]["extractedFields"];
        assert_eq!(response["dateOfBirth"], fields["Date of Birth"]);
        assert_eq!(response["expiryDate"], fields["Date of Expiry"]);
    }
    assert!(
        uae > 0 && other > 0,
        "both kinds seen: {uae} UAE, {other} other"
    );
    server.shutdown().await;
}

// ---- Value forms across the whole catalogue (spec §3, §8) ----------------------------------

fn is_hex(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_hexdigit())
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]) && parts.iter().all(|p| is_hex(p))
}

/// `2024-07-21T05:56:38.041Z`.
fn is_iso_millis_z(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// `^\d+\.\d{2}%$`, as `faceMatch.matchPercentage` always is ("99.00%").
fn is_two_decimal_percent(s: &str) -> bool {
    let Some(number) = s.strip_suffix('%') else {
        return false;
    };
    let Some((whole, fraction)) = number.split_once('.') else {
        return false;
    };
    !whole.is_empty()
        && whole.chars().all(|c| c.is_ascii_digit())
        && fraction.len() == 2
        && fraction.chars().all(|c| c.is_ascii_digit())
}

/// `"NA"` or a whole percentage (`"0%"`), as `matchPercentage.*` are.
fn is_na_or_percent(s: &str) -> bool {
    s == "NA"
        || s.strip_suffix('%')
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

const STR_BOOLS: [&str; 3] = ["True", "False", "None"];

/// Check every value-form rule on one document; `at` says which request it came from.
fn assert_value_forms(doc: &Value, requested_id: &str, at: &str) {
    assert_eq!(doc["journeyId"], requested_id, "{at}");
    assert!(doc["createdAt"].is_u64(), "{at}: createdAt is epoch ms");
    for key in ["startedAt", "completedAt"] {
        assert!(
            doc[key].is_u64() || doc[key].is_null(),
            "{at}: {key} is epoch ms or null"
        );
    }
    assert!(
        is_iso_millis_z(str_at(doc, "/updatedAt")),
        "{at}: updatedAt"
    );
    let db_id = str_at(doc, "/_id");
    assert!(db_id.len() == 24 && is_hex(db_id), "{at}: _id {db_id:?}");
    for key in ["clientId", "userId"] {
        assert!(is_uuid(str_at(doc, &format!("/{key}"))), "{at}: {key}");
    }
    assert_eq!(doc["__v"], 0, "{at}");
    assert_eq!(doc["_deleted"], false, "{at}");

    let di = &doc["documentIntelligence"];
    if let Some(cs) = di["completeStatus"].as_object() {
        let optical = cs["detailsOptical"].as_object().expect("detailsOptical");
        for (key, value) in optical {
            if key == "pagesCount" {
                assert!(value.is_u64(), "{at}: pagesCount is a number");
            } else {
                let v = value.as_str().unwrap_or_default();
                assert!(
                    STR_BOOLS.contains(&v),
                    "{at}: detailsOptical.{key} = {value}"
                );
            }
        }
        for key in ["optical", "overallStatus", "portrait", "rfid"] {
            let v = cs[key].as_str().unwrap_or_default();
            assert!(
                STR_BOOLS.contains(&v),
                "{at}: completeStatus.{key} = {}",
                cs[key]
            );
        }
        assert!(
            cs["message"].is_string() && cs["severity"].is_string(),
            "{at}"
        );
    }
    if let Some(expired) = di.get("idExpired") {
        let v = expired
            .as_str()
            .unwrap_or_else(|| panic!("{at}: idExpired is a string"));
        assert!(STR_BOOLS.contains(&v), "{at}: idExpired = {v:?}");
    }
    if let Some(quality) = di.get("imageQuality") {
        assert!(quality["result"].is_boolean(), "{at}: imageQuality.result");
    }
    if let Some(fields) = di.get("extractedFields") {
        let fields = fields.as_object().expect("extractedFields is an object");
        // Strings, but for Indian licences' "Split Address": arrays of strings, and of
        // [name, code] pairs (spec §3.7, §8.14).
        for (key, value) in fields {
            if key == "Split Address" {
                assert_eq!(
                    value["district"][0].as_str().map(str::is_empty),
                    Some(false),
                    "{at}"
                );
                assert!(value["state"][0][1].is_string(), "{at}: {value}");
            } else {
                assert!(value.is_string(), "{at}: extracted {key:?} is a string");
            }
        }
    }

    let matches = doc["matchPercentage"].as_object().expect("matchPercentage");
    for (key, value) in matches {
        let v = value.as_str().unwrap_or_default();
        assert!(is_na_or_percent(v), "{at}: matchPercentage.{key} = {value}");
    }

    let selfie = &doc["selfieAnalysis"];
    for check in ["passiveLiveliness", "faceMatch"] {
        let status = selfie[check]["status"].as_str().unwrap_or_default();
        assert!(
            ["200", "Not Started"].contains(&status),
            "{at}: {check}.status = {}",
            selfie[check]["status"]
        );
    }
    if let Some(percent) = selfie["faceMatch"].get("matchPercentage") {
        let v = percent.as_str().unwrap_or_default();
        assert!(
            is_two_decimal_percent(v),
            "{at}: faceMatch.matchPercentage = {percent}"
        );
    }
    if let Some(score) = selfie["passiveLiveliness"].get("score") {
        let s = score.as_f64().unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&s), "{at}: liveness score = {score}");
    }

    let ips = doc["ipAddresses"]
        .as_object()
        .expect("ipAddresses is an object");
    for (ip, record) in ips {
        assert!(ip.parse::<IpAddr>().is_ok(), "{at}: ipAddresses key {ip:?}");
        let record = record.as_object().expect("an IP's record is an object");
        assert!(!record.is_empty(), "{at}: {ip} has a record");
        for (key, value) in record {
            assert!(value.is_string(), "{at}: ipAddresses.{ip}.{key} = {value}");
        }
        for key in [
            "isCrawler",
            "mobile",
            "proxy",
            "vpn",
            "tor",
            "recentAbuse",
            "botStatus",
        ] {
            if let Some(value) = record.get(key) {
                assert!(
                    value == "true" || value == "false",
                    "{at}: ipAddresses.{ip}.{key} = {value} (lower-case string)"
                );
            }
        }
    }
}

/// Neutral ids whose journeys between them hold a document of every country the mock draws
/// (AE, IN, US), so that each scenario is checked against every document profile.
async fn one_id_per_country(server: &Mock) -> Vec<String> {
    let mut found: Vec<(String, String)> = Vec::new();
    for i in 0..60 {
        let id = format!("N{i:09}");
        let doc = common::get_journey(server, &id, &[("x-mock-scenario", "success")])
            .await
            .result();
        let country = str_at(&doc, "/capturedData/country").to_string();
        if !found.iter().any(|(c, _)| *c == country) {
            found.push((country, id));
        }
    }
    let mut countries: Vec<&str> = found.iter().map(|(c, _)| c.as_str()).collect();
    countries.sort_unstable();
    assert_eq!(countries, ["AE", "IN", "US"], "every profile among 60 ids");
    found.into_iter().map(|(_, id)| id).collect()
}

#[tokio::test]
async fn every_scenario_keeps_the_providers_value_forms() {
    let catalogue = Catalogue::load(&CatalogueSource::default(), 0).expect("catalogue loads");
    let server = common::start().await;
    let neutral = one_id_per_country(&server).await;
    for scenario in catalogue.scenarios() {
        let by_prefix = format!("{}-forms", scenario.name);
        let reply = common::get_journey(&server, &by_prefix, &[]).await;
        assert_value_forms(&reply.result(), &by_prefix, &by_prefix);
        for id in &neutral {
            let reply =
                common::get_journey(&server, id, &[("x-mock-scenario", &scenario.name)]).await;
            let at = format!("{} via header on {id}", scenario.name);
            assert_value_forms(&reply.result(), id, &at);
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn scenarios_differ_only_where_they_mean_to_from_the_same_journey() {
    // The same id under two scenarios is the same journey: ids and creation time agree, so an
    // app comparing outcomes compares only what the scenario changed.
    let server = common::start().await;
    let success = common::get_journey(&server, NEUTRAL_ID, &[("x-mock-scenario", "success")])
        .await
        .result();
    let catalogue = Catalogue::load(&CatalogueSource::default(), 0).expect("catalogue loads");
    for scenario in catalogue.scenarios() {
        let doc = common::get_journey(&server, NEUTRAL_ID, &[("x-mock-scenario", &scenario.name)])
            .await
            .result();
        for key in [
            "_id",
            "clientId",
            "userId",
            "journeyId",
            "createdAt",
            "flow",
        ] {
            assert_eq!(doc[key], success[key], "{}: {key}", scenario.name);
        }
    }
    server.shutdown().await;
}

/// The README's table of bundled scenarios is written from the scenario files: one row per
/// scenario, with its aliases, status and step, and its `description` word for word, so that
/// `otk-mock scenarios` and the README can never say two different things.
#[test]
fn the_readme_table_says_what_the_scenario_files_say() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README reads");
    let table = readme
        .split("## Bundled scenarios")
        .nth(1)
        .expect("README has a Bundled scenarios section");
    let rows: Vec<Vec<String>> = table
        .lines()
        .skip_while(|l| !l.starts_with("| `"))
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    let catalogue = Catalogue::load(&CatalogueSource::default(), 0).expect("catalogue loads");
    let mut expected: Vec<Vec<String>> = catalogue
        .scenarios()
        .iter()
        .map(|s| {
            let aliases: Vec<String> = s.aliases.iter().map(|a| format!("`{a}`")).collect();
            vec![
                format!("`{}`", s.name),
                aliases.join(", "),
                format!("{} / {}", s.status, s.step),
                s.description.clone(),
            ]
        })
        .collect();
    let mut actual = rows.clone();
    expected.sort();
    actual.sort();
    assert_eq!(
        expected, actual,
        "README's scenario table differs from scenarios/*.toml: copy each description from its file"
    );
}

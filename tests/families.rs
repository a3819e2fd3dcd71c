//! Document families and the pre-fill, as an app sees them: how a journey gets its family
//! (`userInfo.id`, `X-Mock-Document`, the scenario, the id), the IP check as a journey's own
//! setting, the document carrying what the app pre-filled, and `matchPercentage` computed from
//! the two.

mod common;

use common::{Mock, Reply, TOKEN};
use hyper::Method;
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

async fn create(server: &Mock, headers: &[(&str, &str)], body: Value) -> String {
    let mut all = vec![
        ("authorization", TOKEN),
        ("content-type", "application/json"),
    ];
    all.extend_from_slice(headers);
    let reply = server
        .send(
            Method::POST,
            "/api/v3/otk-service/create-journey-url",
            &all,
            &body.to_string(),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text());
    reply.json()["result"]["journeyId"]
        .as_str()
        .expect("a journey id")
        .to_string()
}

/// Create a journey, complete it with its scenario, read its document.
async fn completed(server: &Mock, headers: &[(&str, &str)], body: Value) -> Value {
    let id = create(server, headers, body).await;
    server.complete(&id, None).await.expect("completes");
    common::get_journey(server, &id, &[]).await.result()
}

fn country_and_type(doc: &Value) -> (String, String) {
    (
        doc["capturedData"]["country"].as_str().unwrap().to_string(),
        doc["capturedData"]["idType"].as_str().unwrap().to_string(),
    )
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

const FLOW: &str = "4b3c2a10-0000-4000-8000-000000000001";

/// The documented pre-fill, as the real terminated journey of spec §4.3 carried it.
fn prefill(id: Value) -> Value {
    json!({
        "flowId": FLOW,
        "userInfo": {
            "phoneNumber": "+919876543210",
            "dateOfBirth": "01/01/1995",
            "emailAddress": "rohan.mehta@example.com",
            "externalReferenceId": "user-42",
            "name": {"firstName": "Rohan", "lastName": "Mehta"},
            "address": {"street": "12 MG Road", "street2": "", "city": "Bengaluru",
                        "region": "Karnataka", "postalCode": "560001", "country": "IN"},
            "id": id
        }
    })
}

#[tokio::test]
async fn user_info_id_picks_the_family_and_the_prefill_is_on_the_document() {
    let server = common::start().await;
    let id = create(
        &server,
        &[],
        prefill(json!({"idType": "Driving License", "country": "IN"})),
    )
    .await;
    server.complete(&id, None).await.expect("completes");
    let view = server
        .send(Method::GET, &format!("/__admin/journeys/{id}"), &[], "")
        .await
        .json();
    assert_eq!(view["document"], "in_dl", "{view}");
    assert_eq!(view["ipCheck"], Value::Null, "{view}");
    // The library says the same.
    let info = server.journey(&id).await.expect("kept");
    assert_eq!(info.document.as_deref(), Some("in_dl"));
    assert_eq!(info.ip_check, None);
    let doc = common::get_journey(&server, &id, &[]).await.result();
    assert_eq!(country_and_type(&doc), pair("IN", "Driving License"));
    let di = &doc["documentIntelligence"];
    let fields = &di["extractedFields"];
    // The real Indian licence's keys (spec §3.7), spelling quirks kept.
    assert_eq!(fields["Surname And Given Names"], "MEHTA ROHAN");
    assert_eq!(fields["Date of Birth"], "01/01/1995");
    assert!(fields["Date Of Expiry"].is_string(), "{fields}");
    assert!(fields.get("Date of Expiry").is_none(), "{fields}");
    assert_eq!(fields["State"], "Karnataka");
    assert_eq!(fields["Side1"], "front");
    assert!(fields["Address"].as_str().unwrap().ends_with("560001"));
    let split = fields["Split Address"].as_object().expect("an object");
    let keys: Vec<&str> = split.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "district",
            "state",
            "city",
            "pincode",
            "country",
            "addressLine"
        ]
    );
    assert_eq!(split["state"], json!([["KARNATAKA", "KA"]]));
    assert_eq!(split["city"], json!(["BENGALURU"]));
    assert_eq!(split["pincode"], "560001");
    assert_eq!(split["country"], json!(["IN", "IND", "INDIA"]));
    assert_eq!(split["addressLine"], "12 MG ROAD");
    let document_number = fields["Document Number"].as_str().unwrap();
    assert_eq!(document_number.len(), 15, "state code + 13 digits");
    // Front only: no back image, check, list or prediction.
    assert_eq!(doc["capturedData"]["images"]["backDoc"], "");
    assert_eq!(doc["capturedData"]["backCaptureMode"], Value::Null);
    assert!(di["imageQuality"].get("backIdCheck").is_none());
    assert!(di.get("predictedIdTypeBack").is_none());
    assert!(di["authenticityCheck"]
        .get("backAuthenticityCheckList")
        .is_none());
    assert_eq!(di["completeStatus"]["detailsOptical"]["pagesCount"], 1);
    // What was sent matches what the document shows; nothing carries a document number.
    assert_eq!(
        doc["matchPercentage"],
        json!({"dateOfBirthMatch": "100%", "addressMatch": "100%",
               "fullNameMatch": "100%", "documentNumberMatch": "NA"})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn each_family_has_its_own_sides_and_fields() {
    let server = common::start().await;
    // A UAE card: two sides, Arabic script, a TD1 MRZ, the ICP check.
    let doc = completed(
        &server,
        &[("x-mock-document", "ae_id")],
        json!({"flowId": FLOW}),
    )
    .await;
    assert_eq!(country_and_type(&doc), pair("AE", "Resident ID Card"));
    let di = &doc["documentIntelligence"];
    assert!(di["predictedIdTypeBack"].is_object());
    assert_eq!(di["predictedIdTypeBack"]["FDSIDList"]["dMRZ"], true);
    assert_eq!(di["extractedFields"]["Profession"], "بدون عمل");
    let mrz = di["extractedFields"]["MRZ Strings"].as_str().unwrap();
    assert_eq!(
        mrz.split('^').map(str::len).collect::<Vec<_>>(),
        [30, 30, 30]
    );
    assert_eq!(
        doc["externalApiResponses"][0]["api"],
        "resident id card verification"
    );

    // A passport: one page, a TD3 MRZ whose check digits hold.
    let doc = completed(
        &server,
        &[("x-mock-document", "passport")],
        json!({"flowId": FLOW}),
    )
    .await;
    assert_eq!(country_and_type(&doc), pair("IN", "Passport"));
    let di = &doc["documentIntelligence"];
    assert!(di.get("predictedIdTypeBack").is_none());
    assert_eq!(di["predictedIdTypeFront"]["FDSIDList"]["dMRZ"], true);
    assert_eq!(di["completeStatus"]["detailsOptical"]["mrz"], "True");
    let fields = &di["extractedFields"];
    let mrz = fields["MRZ Strings"].as_str().unwrap();
    let lines: Vec<&str> = mrz.split('^').collect();
    assert_eq!(lines.iter().map(|l| l.len()).collect::<Vec<_>>(), [44, 44]);
    let digit = |field: &str| -> u32 {
        const W: [u32; 3] = [7, 3, 1];
        field
            .bytes()
            .enumerate()
            .map(|(i, b)| {
                W[i % 3]
                    * match b {
                        b'0'..=b'9' => u32::from(b - b'0'),
                        b'A'..=b'Z' => u32::from(b - b'A') + 10,
                        _ => 0,
                    }
            })
            .sum::<u32>()
            % 10
    };
    let line2 = lines[1];
    assert_eq!(digit(&line2[0..9]).to_string(), &line2[9..10]);
    assert_eq!(digit(&line2[13..19]).to_string(), &line2[19..20]);
    assert_eq!(digit(&line2[21..27]).to_string(), &line2[27..28]);
    let composite = format!("{}{}{}", &line2[0..10], &line2[13..20], &line2[21..43]);
    assert_eq!(digit(&composite).to_string(), &line2[43..44]);
    assert_eq!(fields["Final Checkdigit"], &line2[43..44]);

    // A US licence: two sides, the barcode's fields.
    let doc = completed(
        &server,
        &[],
        json!({"flowId": FLOW, "userInfo": {"id": {"idType": "driving licence", "country": "us"}}}),
    )
    .await;
    assert_eq!(country_and_type(&doc), pair("US", "Driving License"));
    let fields = &doc["documentIntelligence"]["extractedFields"];
    for key in ["DL Class", "Address Street", "Address Jurisdiction Code"] {
        assert!(fields[key].is_string(), "{key}: {fields}");
    }
    assert!(doc["documentIntelligence"]["predictedIdTypeBack"].is_object());
    server.shutdown().await;
}

#[tokio::test]
async fn x_mock_document_on_get_journey_chooses_the_family_of_that_answer() {
    let server = common::start().await;
    for (family, expected) in [
        ("in_dl", pair("IN", "Driving License")),
        ("uae_id", pair("AE", "Resident ID Card")),
        ("passport", pair("IN", "Passport")),
        ("us_dl", pair("US", "Driving License")),
    ] {
        let reply =
            common::get_journey(&server, "Q7K2M9X4ZA", &[("x-mock-document", family)]).await;
        assert_eq!(country_and_type(&reply.result()), expected, "{family}");
    }
    // Without the header the id draws it, and the same id always draws the same.
    let a = common::get_journey(&server, "Q7K2M9X4ZA", &[]).await.text();
    let b = common::get_journey(&server, "Q7K2M9X4ZA", &[]).await.text();
    assert_eq!(a, b);
    // A scenario's own choice: ocr_mismatch is a passport unless the journey says otherwise.
    let doc = common::get_journey(&server, "ocr_mismatch-1", &[])
        .await
        .result();
    assert_eq!(country_and_type(&doc), pair("IN", "Passport"));
    let doc = common::get_journey(&server, "ocr_mismatch-1", &[("x-mock-document", "us_dl")])
        .await
        .result();
    assert_eq!(country_and_type(&doc), pair("US", "Driving License"));
    server.shutdown().await;
}

#[tokio::test]
async fn an_unknown_family_or_ip_check_value_is_a_400_naming_the_header() {
    let server = common::start().await;
    let reply: Reply = common::get_journey(&server, "Q1", &[("x-mock-document", "voter_id")]).await;
    let message = reply.assert_provider_error(400);
    assert!(
        message.contains("X-Mock-Document") && message.contains("in_dl"),
        "{message}"
    );
    let reply = common::get_journey(&server, "Q1", &[("x-mock-ip-check", "maybe")]).await;
    let message = reply.assert_provider_error(400);
    assert!(message.contains("X-Mock-Ip-Check"), "{message}");
    let reply = server
        .send(
            Method::POST,
            "/api/v3/otk-service/create-journey-url",
            &[
                ("authorization", TOKEN),
                ("content-type", "application/json"),
                ("x-mock-document", "nope"),
            ],
            &json!({"flowId": FLOW}).to_string(),
        )
        .await;
    reply.assert_provider_error(400);
    assert!(server.journeys().await.is_empty(), "nothing was created");
    server.shutdown().await;
}

#[tokio::test]
async fn the_ip_check_is_the_journeys_own_setting() {
    let server = common::start().await;
    let ip_value = |doc: &Value| {
        doc["ipAddresses"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .clone()
    };
    let off = json!({"message": "IP Check is not Enabled"});
    // Stateless: any scenario, the header turns it off; ip_check_disabled is the shortcut.
    let doc = common::get_journey(&server, "vpn_flagged-1", &[("x-mock-ip-check", "off")])
        .await
        .result();
    assert_eq!(ip_value(&doc), off);
    let doc = common::get_journey(&server, "ip_check_disabled-1", &[])
        .await
        .result();
    assert_eq!(ip_value(&doc), off);
    let doc = common::get_journey(&server, "ip_check_disabled-1", &[("x-mock-ip-check", "on")])
        .await
        .result();
    assert!(ip_value(&doc)["fraudScore"].is_string());
    // Created: a terminated journey with OCR errors and the IP check off (spec §4.3).
    let doc = completed(
        &server,
        &[
            ("x-mock-scenario", "retries_exceeded"),
            ("x-mock-ip-check", "off"),
        ],
        prefill(json!({"idType": "Driving License", "country": "IN"})),
    )
    .await;
    assert_eq!(doc["currentStatus"], "TERMINATED");
    assert_eq!(ip_value(&doc), off);
    let errors = doc["documentIntelligence"]["extractedFieldErrors"]
        .as_array()
        .unwrap();
    assert_eq!(errors.len(), 3);
    assert_eq!(doc["matchPercentage"]["dateOfBirthMatch"], "0%");
    assert_eq!(doc["matchPercentage"]["documentNumberMatch"], "NA");
    // The library shows the journey's own setting.
    let id = doc["journeyId"].as_str().expect("an id");
    let info = server.journey(id).await.expect("kept");
    assert_eq!(info.ip_check, Some(false));
    server.shutdown().await;
}

#[tokio::test]
async fn name_mismatch_puts_another_person_on_the_document_and_scores_it() {
    let server = common::start().await;
    let doc = completed(
        &server,
        &[("x-mock-scenario", "name_mismatch")],
        prefill(json!({"idType": "Passport", "country": "IN"})),
    )
    .await;
    let fields = &doc["documentIntelligence"]["extractedFields"];
    assert_ne!(fields["Surname And Given Names"], "MEHTA ROHAN");
    let score: u32 = doc["matchPercentage"]["fullNameMatch"]
        .as_str()
        .and_then(|s| s.strip_suffix('%'))
        .and_then(|n| n.parse().ok())
        .expect("a percentage");
    assert!(score < 60, "{score}");
    assert_eq!(doc["matchPercentage"]["dateOfBirthMatch"], "0%");
    // Nothing sent, nothing compared.
    let doc = completed(&server, &[], json!({"flowId": FLOW})).await;
    assert_eq!(
        doc["matchPercentage"],
        json!({"dateOfBirthMatch": "NA", "addressMatch": "NA",
               "fullNameMatch": "NA", "documentNumberMatch": "NA"})
    );
    server.shutdown().await;
}

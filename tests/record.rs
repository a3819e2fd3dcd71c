//! `otk-mock record` against a fake provider this test starts on loopback: what it writes is
//! sanitized (no personal value survives, keys and types are exactly as recorded), the token
//! goes only into the Authorization header, and upstream failures give clear errors and exit
//! codes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use otk_mock::contract::schema::{MapPaths, Schema};
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

const TOKEN: &str = "tok-SECRET-3f9a1c7e";
const REAL_IP: &str = "49.205.33.17";

/// What the fake provider saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body_len: usize,
}

/// A journey document full of (invented) personal values, as the provider would send it.
fn real_document() -> Value {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/contracts/recorded/callback-completed-india-dl-split-address.json"),
    )
    .expect("the recording reads");
    let mut doc: Value = serde_json::from_str(&text).expect("the recording is JSON");
    doc["userInfo"] = json!({
        "phoneNumber": "+919812345678",
        "externalReferenceId": "cust-778812",
        "dateOfBirth": "01/01/1995",
        "emailAddress": "rohan.mehta@mailbox.test",
        "matchImage": "https://cdn.acme.test/selfies/88213/rohan.jpg",
        "name": {"firstName": "Rohan", "lastName": "Mehta"},
        "address": {"street": "12 MG Road", "street2": "Flat 4B", "city": "Bengaluru",
                    "region": "Karnataka", "postalCode": "560001", "country": "IN"},
        "id": {"idType": "Driving License", "country": "IN"}
    });
    doc["callbackSent"] = json!(true);
    let record = doc["ipAddresses"]
        .as_object()
        .and_then(|m| m.values().next().cloned())
        .expect("an IP record");
    let mut record = record;
    record["host"] = json!("49-205-33-17.broadband.isp.test");
    doc["ipAddresses"] = json!({ REAL_IP: record });
    doc
}

/// Values of `real_document` that must not survive sanitizing (long enough that a fake cannot
/// equal one by chance).
const PERSONAL: &[&str] = &[
    "Rohan",
    "Mehta",
    "MEHTA ROHAN",
    "SURESH MEHTA",
    "01/01/1995",
    "14/06/2039",
    "KA0120190004321",
    "12 MG ROAD, BENGALURU 560001",
    "12 MG Road",
    "Flat 4B",
    "560001",
    "+919812345678",
    "9812345678",
    "rohan.mehta",
    "mailbox.test",
    "cust-778812",
    "88213",
    REAL_IP,
    "49-205-33-17",
    "cb-0f3a9c1e5d7b",
    "12.9715987",
    "77.5945627",
    "Q7K2M9X4ZA",
    "6a0f3c9e1b7d4e2f8a5c0b13",
    "e4c1a9b2-7d3f-4a6e-9c8b-2f5d0e1a3b7c",
    "3b9f0c1d7e2a4f6b8c5d9e0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e",
    "900000100",
    "BANGALORE URBAN",
    "KARNATAKA",
    "Karnataka",
    "Bengaluru",
    "Example Networks Pvt Ltd",
];

async fn handle(
    request: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let authorization = header("authorization");
    let content_type = header("content-type");
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    seen.lock().unwrap().push(Seen {
        method,
        path: path.clone(),
        authorization: authorization.clone(),
        content_type,
        body_len: body.len(),
    });
    let reply = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        Ok(response)
    };
    if authorization.as_deref() != Some(TOKEN) {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"name": "error", "message": "Authorization Failed", "statusCode": 401}})
                .to_string(),
        );
    }
    let id = path
        .strip_prefix("/api/v3/otk-service/get-journey/")
        .unwrap_or("");
    match id {
        "JOURNEY1" => reply(
            StatusCode::OK,
            json!({ "result": real_document() }).to_string(),
        ),
        "missing" => reply(
            StatusCode::NOT_FOUND,
            json!({"error": {"name": "error", "message": "Journey not found", "statusCode": 404}})
                .to_string(),
        ),
        "notjson" => reply(StatusCode::OK, "<html>maintenance</html>".to_string()),
        "nores" => reply(StatusCode::OK, json!({"data": {}}).to_string()),
        // An upstream that echoes the credentials it got, as badly behaved gateways do.
        "echo" => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("upstream failure for key {TOKEN}, try later"),
        ),
        "hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            reply(StatusCode::OK, String::new())
        }
        _ => reply(StatusCode::NOT_FOUND, String::new()),
    }
}

/// Start the fake provider on 127.0.0.1:0.
async fn start_upstream() -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| handle(request, seen.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (address, seen)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Run the binary off the async runtime, so the fake provider keeps serving.
async fn otk(args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let output = Command::new(env!("CARGO_BIN_EXE_otk-mock"))
            .args(&args)
            .env_remove("OTK_MOCK_UPSTREAM_TOKEN")
            .output()
            .expect("the binary runs");
        Run {
            code: output.status.code().expect("exited"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .expect("the run finished")
}

fn record_args(address: SocketAddr, out: &Path, extra: &[&str], ids: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "record".into(),
        "--upstream".into(),
        format!("http://{address}"),
        "--token".into(),
        TOKEN.into(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(ids.iter().map(|s| s.to_string()));
    args
}

fn written(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_journey_is_sanitized_with_keys_and_types_unchanged() {
    let (address, seen) = start_upstream().await;
    let out = tempfile::tempdir().unwrap();
    let run = otk(record_args(
        address,
        out.path(),
        &["--salt", "fixed"],
        &["JOURNEY1"],
    ))
    .await;
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );

    let files = written(out.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("get-journey-completed-complete-") && name.ends_with(".json"),
        "{name}"
    );
    assert!(
        run.stdout.contains(&format!(
            "recorded JOURNEY1 (COMPLETED/COMPLETE) -> {}",
            file.display()
        )),
        "{}",
        run.stdout
    );

    // The provider was called as documented: POST, raw token, JSON content type, empty body.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/api/v3/otk-service/get-journey/JOURNEY1");
    assert_eq!(seen[0].authorization.as_deref(), Some(TOKEN));
    assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(seen[0].body_len, 0);

    let text = std::fs::read_to_string(file).unwrap();
    for value in PERSONAL {
        assert!(
            !text.contains(value),
            "{value:?} survived in {}",
            file.display()
        );
    }
    for output in [&text, &run.stdout, &run.stderr] {
        assert!(!output.contains(TOKEN), "the token was written: {output}");
    }

    let recorded: Value = serde_json::from_str(&text).unwrap();
    let original = real_document();
    let clean = &recorded["result"];
    // Keys (in order) and types exactly as the provider sent them; ipAddresses is keyed by
    // IP, so its one key is compared as a map key.
    let maps = MapPaths::otk();
    assert_eq!(
        Schema::infer([clean], &maps).paths(),
        Schema::infer([&original], &maps).paths()
    );
    assert_eq!(
        Schema::infer([&recorded], &MapPaths::none()).paths().len(),
        Schema::infer([&json!({ "result": original.clone() })], &MapPaths::none())
            .paths()
            .len()
    );
    let ips: Vec<&String> = clean["ipAddresses"].as_object().unwrap().keys().collect();
    assert_eq!(ips.len(), 1);
    assert!(ips[0].parse::<std::net::IpAddr>().is_ok(), "{}", ips[0]);

    // What says what happened, not who it happened to, is kept.
    for pointer in [
        "/currentStatus",
        "/step",
        "/message",
        "/createdAt",
        "/capturedData/country",
        "/capturedData/idType",
        "/documentIntelligence/completeStatus",
        "/documentIntelligence/predictedIdTypeFront",
        "/documentIntelligence/extractedFields/Side1",
        "/selfieAnalysis/faceMatch",
        "/userInfo/id",
        "/processingConfig/journeyLinkValidity",
    ] {
        assert_eq!(
            clean.pointer(pointer),
            original.pointer(pointer),
            "{pointer}"
        );
    }
    // Fakes have the shape of what they replace.
    let dob = clean["userInfo"]["dateOfBirth"].as_str().unwrap();
    assert!(
        dob.len() == 10 && &dob[2..3] == "/" && &dob[5..6] == "/",
        "{dob}"
    );
    let image = clean["capturedData"]["images"]["frontDoc"]
        .as_str()
        .unwrap();
    assert!(
        image.starts_with("https://persist.signzy.tech/api/files/") && image.ends_with(".png"),
        "{image}"
    );
    assert!(clean["capturedData"]["location"]["latitude"].is_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_salt_gives_the_same_file() {
    let (address, _) = start_upstream().await;
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for dir in [&a, &b] {
        let run = otk(record_args(
            address,
            dir.path(),
            &["--salt", "s1"],
            &["JOURNEY1"],
        ))
        .await;
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let (fa, fb) = (written(a.path()), written(b.path()));
    assert_eq!(fa[0].file_name(), fb[0].file_name());
    assert_eq!(
        std::fs::read_to_string(&fa[0]).unwrap(),
        std::fs::read_to_string(&fb[0]).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_are_reported_per_journey_and_exit_1() {
    let (address, _) = start_upstream().await;
    let out = tempfile::tempdir().unwrap();
    let run = otk(record_args(
        address,
        out.path(),
        &[],
        &["missing", "JOURNEY1", "notjson", "nores", "echo"],
    ))
    .await;
    assert_eq!(
        run.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    for line in [
        "otk-mock: record: missing: the upstream answered 404 Not Found: Journey not found",
        "otk-mock: record: notjson: the upstream's answer is not JSON (line 1, column 1: expected value)",
        "otk-mock: record: nores: the upstream's answer is not a get-journey response: expected {\"result\": {...}}",
        "otk-mock: record: echo: the upstream answered 500 Internal Server Error: upstream failure for key <token>, try later",
        "otk-mock: record: 4 of 5 journeys could not be recorded",
    ] {
        assert!(run.stderr.lines().any(|l| l == line), "no line {line:?} in:\n{}", run.stderr);
    }
    // The journey that worked is still written.
    assert_eq!(written(out.path()).len(), 1);
    assert!(!run.stderr.contains(TOKEN) && !run.stdout.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_an_upstream_401_and_is_not_shown() {
    let (address, _) = start_upstream().await;
    let out = tempfile::tempdir().unwrap();
    let mut args = record_args(address, out.path(), &[], &["JOURNEY1"]);
    let at = args.iter().position(|a| a == TOKEN).unwrap();
    args[at] = "wrong-token-7788".into();
    let run = otk(args).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "otk-mock: record: JOURNEY1: the upstream answered 401 Unauthorized: Authorization Failed"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("wrong-token-7788"));
    assert!(written(out.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_never_answers_times_out() {
    let (address, _) = start_upstream().await;
    let out = tempfile::tempdir().unwrap();
    let run = otk(record_args(
        address,
        out.path(),
        &["--timeout", "1s"],
        &["hang"],
    ))
    .await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("otk-mock: record: hang: the upstream did not answer (timed out)"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_a_refused_connection() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let out = tempfile::tempdir().unwrap();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let run = otk(record_args(address, out.path(), &[], &["JOURNEY1"])).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "otk-mock: record: JOURNEY1: the upstream did not answer (connection refused)"
        ),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_exit_2_before_any_request_and_never_show_the_token() {
    let (address, seen) = start_upstream().await;
    let out = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            {
                let mut a = record_args(address, out.path(), &[], &["JOURNEY1"]);
                a[2] = "ftp://example.test".into();
                a
            },
            "record: --upstream \"ftp://example.test\" is not an http or https URL",
        ),
        (
            record_args(address, out.path(), &[], &["ok-1", "../etc/passwd"]),
            "record: journey id \"../etc/passwd\" must be letters, digits",
        ),
        (
            {
                let mut a = record_args(address, out.path(), &[], &["JOURNEY1"]);
                a[4] = "  ".into();
                a
            },
            "record: --token is empty",
        ),
    ];
    for (args, message) in cases {
        let run = otk(args).await;
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr.contains(message),
            "{message:?} not in {}",
            run.stderr
        );
        assert!(!run.stderr.contains(TOKEN), "{}", run.stderr);
    }
    assert!(seen.lock().unwrap().is_empty(), "a request went out");

    // The help never shows the token's value, even when it comes from the environment.
    let help = tokio::task::spawn_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_otk-mock"))
            .args(["record", "--help"])
            .env("OTK_MOCK_UPSTREAM_TOKEN", TOKEN)
            .output()
            .expect("the binary runs")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("OTK_MOCK_UPSTREAM_TOKEN"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
}

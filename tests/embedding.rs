//! otk-mock as a library user embeds it: a small KYC client, the kind of code an app has, tested
//! against a `MockServer` it points at instead of the provider; the same mock in process
//! through `MockApp::oneshot`; and the server going away when it is dropped. Public API only.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use otk_mock::{FaultRule, Filter, JourneyState, MockServer};
use serde_json::{json, Value};
use tokio::net::TcpListener;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long any wait may take before the test fails: generous, for a loaded CI machine.
const DEADLINE: Duration = Duration::from_secs(30);

// ---- The app under test ---------------------------------------------------------------------

/// The app's client of the One Touch KYC API: the provider's base URL and the app's token come
/// from its configuration, so a test gives it the mock's.
struct KycClient {
    base_url: String,
    token: String,
    /// What the app asks the provider to send back in its callbacks' `Authorization`.
    callback_key: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl KycClient {
    fn new(base_url: &str, token: &str) -> KycClient {
        KycClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            callback_key: "kyc-callback-key".to_string(),
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Start a journey for a user; returns its id (the URL would be shown to the user).
    async fn create_journey(&self, flow_id: &str, callback_url: &str) -> Result<String, Error> {
        let body = json!({
            "flowId": flow_id,
            "processingConfig": {
                "callbackUrl": callback_url,
                "authKeyForCallback": self.callback_key,
            }
        });
        let reply = self.post("create-journey-url", &body.to_string()).await?;
        reply["result"]["journeyId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no journeyId in {reply}").into())
    }

    /// The journey's document (`result` of get-journey).
    async fn fetch_result(&self, journey_id: &str) -> Result<Value, Error> {
        let reply = self.post(&format!("get-journey/{journey_id}"), "").await?;
        Ok(reply["result"].clone())
    }

    async fn post(&self, route: &str, body: &str) -> Result<Value, Error> {
        let request = Request::post(format!("{}/api/v3/otk-service/{route}", self.base_url))
            .header("authorization", &self.token)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))?;
        let response = self.http.request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(format!("the KYC provider answered {status}").into());
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// What the app decides from a finished journey.
#[derive(Debug, PartialEq)]
enum Decision {
    Approved,
    Rejected(&'static str),
    Pending,
}

fn decide(result: &Value) -> Decision {
    if result["currentStatus"] != "COMPLETED" {
        return Decision::Pending;
    }
    if result["selfieAnalysis"]["passiveLiveliness"]["liveness"] != true {
        return Decision::Rejected("liveness");
    }
    if result["selfieAnalysis"]["faceMatch"]["verified"] != true {
        return Decision::Rejected("face match");
    }
    Decision::Approved
}

// ---- The test's own callback receiver --------------------------------------------------------

/// One callback the receiver got.
#[derive(Debug, Clone)]
struct Callback {
    authorization: Option<String>,
    document: Value,
}

/// A callback receiver on 127.0.0.1:0 that answers 200 and keeps what it got.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Callback>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/kyc/callback", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let log = got.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                let service = service_fn(move |request: Request<Incoming>| {
                    let log = log.clone();
                    async move {
                        let authorization = request
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let document = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        log.lock().unwrap().push(Callback {
                            authorization,
                            document,
                        });
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { url, got, task }
    }

    fn received(&self) -> Vec<Callback> {
        self.got.lock().unwrap().clone()
    }
}

/// Poll `check` until it gives a value, failing the test after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- Tests -----------------------------------------------------------------------------------

#[tokio::test]
async fn a_liveness_failure_reaches_the_app_and_its_callback_receiver() {
    let receiver = Receiver::start().await;
    let server = MockServer::builder()
        .auto_complete_after(None)
        .start()
        .await
        .unwrap();
    let app = KycClient::new(&server.uri(), "app-token");

    let id = app
        .create_journey("flow-onboarding", &receiver.url)
        .await
        .unwrap();
    let journey = server
        .journey(&id)
        .await
        .expect("the mock knows the journey");
    assert_eq!(journey.state, JourneyState::Created);
    assert_eq!(
        decide(&app.fetch_result(&id).await.unwrap()),
        Decision::Pending
    );

    // The user fails the selfie check.
    let ended = server.complete(&id, "liveness_failed").await.unwrap();
    assert_eq!(ended.state, JourneyState::Completed);
    assert_eq!(ended.outcome.as_deref(), Some("liveness_failed"));

    let result = app.fetch_result(&id).await.unwrap();
    assert_eq!(result["journeyId"], id.as_str());
    assert_eq!(result["flow"]["flowId"], "flow-onboarding");
    assert_eq!(decide(&result), Decision::Rejected("liveness"));
    // Created once, fetched twice: no retries, no polling beyond what the app meant.
    assert_eq!(server.request_count(Filter::journey(&id)).await, 3);
    let fetches = Filter::journey(&id).with_path("/api/v3/otk-service/get-journey/*");
    assert_eq!(server.request_count(fetches).await, 2);

    // The callback arrives with the app's key and the same verdict.
    let got = eventually("the callback", || async {
        let got = receiver.received();
        (!got.is_empty()).then_some(got)
    })
    .await;
    let callback = &got[0];
    assert_eq!(callback.authorization.as_deref(), Some("kyc-callback-key"));
    assert_eq!(callback.document["journeyId"], id.as_str());
    assert_eq!(decide(&callback.document), Decision::Rejected("liveness"));

    // The mock saw it delivered (it settles the journey last, after logging the attempt).
    eventually("the mock to settle the callback", || async {
        let journey = server.journey(&id).await?;
        journey.callback_sent.then_some(())
    })
    .await;
    let log = server.callbacks().await;
    assert_eq!(log.attempts.len(), 1);
    let attempt = &log.attempts[0];
    assert_eq!(attempt.journey_id, id);
    assert_eq!(attempt.url, receiver.url);
    assert_eq!(attempt.outcome, "delivered");
    assert_eq!(attempt.status, Some(200));
    assert!(log.lost.is_empty());
    assert_eq!(log.stats.delivered, 1);
    assert_eq!(server.journey(&id).await.unwrap().callback_attempts, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_provider_outage_is_an_error_the_app_sees_and_then_recovers_from() {
    let server = MockServer::start().await;
    let app = KycClient::new(&server.uri(), "app-token");
    // A journey the app created earlier, bound to the scenario it will end with.
    server.bind("H3ZJ2Z79NL", "success").await.unwrap();
    server
        .add_fault(FaultRule::new("status:503").journey("H3ZJ2Z79NL").times(1))
        .await
        .unwrap();

    let error = app.fetch_result("H3ZJ2Z79NL").await.unwrap_err();
    assert!(error.to_string().contains("503"), "{error}");
    let result = app.fetch_result("H3ZJ2Z79NL").await.unwrap();
    assert_eq!(decide(&result), Decision::Approved);
    let failed = Filter::journey("H3ZJ2Z79NL").with_status(503);
    assert_eq!(server.request_count(failed).await, 1);
}

#[tokio::test]
async fn in_process_the_mock_answers_a_request_without_a_socket() {
    let mock = MockServer::builder()
        .auto_complete_after(None)
        .in_process()
        .unwrap();
    let create = Request::post("/api/v3/otk-service/create-journey-url")
        .header("authorization", "app-token")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"flowId": "flow-1"}"#)))
        .unwrap();
    let response = mock.oneshot(create).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let created: Value = serde_json::from_slice(&body).unwrap();
    let id = created["result"]["journeyId"].as_str().unwrap().to_string();

    mock.complete(&id, "liveness_failed").await.unwrap();
    let fetch = Request::post(format!("/api/v3/otk-service/get-journey/{id}"))
        .header("authorization", "app-token")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = mock.oneshot(fetch).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let document: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(document["result"]["journeyId"], id.as_str());
    assert_eq!(decide(&document["result"]), Decision::Rejected("liveness"));
    assert_eq!(mock.request_count(Filter::journey(&id)).await, 2);
    assert_eq!(mock.journeys().await.len(), 1);
}

/// Whether anything accepts connections at `address`.
async fn listening(address: SocketAddr) -> bool {
    tokio::net::TcpStream::connect(address).await.is_ok()
}

#[tokio::test]
async fn dropping_the_server_stops_it() {
    let server = MockServer::start().await;
    let address = server.address();
    assert!(listening(address).await, "the server listens once started");
    drop(server);
    eventually("the dropped server to stop listening", || async {
        (!listening(address).await).then_some(())
    })
    .await;
}

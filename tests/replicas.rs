//! Replicas that share one Redis (`--store redis://…`): two and three real servers on
//! 127.0.0.1:0, each test with a `redis-server` of its own on a free port and in a directory
//! of its own. Without `redis-server` installed these tests say so loudly and pass, unless
//! `CI=true`, where they fail (`.ci/run` installs it).

mod common;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hyper::{Method, StatusCode};
use otk_mock::config::Config;
use serde_json::{json, Value};

use common::{get_journey, send_url, serve_with, Mock};
use support::{admin, complete, create, create_id, eventually, quick_config, Answer, Receiver};

/// A `redis-server` of the test's own, stopped when dropped.
struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Start one on a free port, persisting every write (append-only file, fsync always), or
    /// `None` (after saying so) where redis-server is not installed and `CI` is not `true`.
    fn start() -> Option<RedisServer> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("redis-server is not installed; .ci/run installs it (apt-get install -y redis-server)");
            }
            eprintln!(
                "\n\n!!!!!!!! SKIPPED: redis-server is not installed, so the replica tests did not run.\n\
                 !!!!!!!! Install it (apt-get install -y redis-server) or run .ci/run.\n"
            );
            return None;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let mut server = RedisServer {
            child: None,
            port,
            dir: tempfile::tempdir().expect("temp dir"),
        };
        server.run();
        Some(server)
    }

    /// (Re)start the server on its port and directory, and wait until it answers.
    fn run(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + support::DEADLINE;
        while !ping(self.port) {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server on port {} never answered",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill it (as a crash would), and wait until it is gone.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a Redis answers PING on `port`.
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
}

/// A replica: a real server on 127.0.0.1:0 on `redis`.
async fn replica(redis: &RedisServer) -> Mock {
    serve_with(config(redis)).await
}

fn config(redis: &RedisServer) -> Config {
    let mut config = quick_config();
    config.store = redis.url().parse().expect("a redis url");
    config
}

fn with_callback(url: &str) -> Value {
    json!({
        "flowId": "flow-replicas",
        "processingConfig": { "callbackUrl": url, "authKeyForCallback": "cb-key" }
    })
}

/// Every replica's callback attempts, as one replica's admin API lists them.
async fn attempts(server: &Mock) -> Vec<Value> {
    let reply = admin(server, Method::GET, "callbacks?limit=1000", "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Wait until `n` final attempts are in the shared log; returns the log.
async fn settled(server: &Mock, n: usize) -> Vec<Value> {
    eventually(&format!("{n} final callback attempts"), || async {
        let all = attempts(server).await;
        let done = all.iter().filter(|a| a["final"] == true).count();
        (done >= n).then_some(all)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journey_created_on_one_replica_is_read_completed_and_called_back_once_through_another() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let receiver = Receiver::start(Answer::Status(200)).await;
    let id = create_id(&a, &with_callback(&receiver.url), &[]).await;

    // B knows the journey A created: bound, not stateless.
    let on_b = get_journey(&b, &id, &[]).await;
    assert_eq!(on_b.status, StatusCode::OK, "{}", on_b.text());
    assert_eq!(on_b.result()["flow"]["flowId"], "flow-replicas");
    let view = admin(&b, Method::GET, &format!("journeys/{id}"), "").await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.text());
    assert_eq!(view.json()["state"], "created");

    // Completed on B: A's next read shows it ended (no stale cached body).
    let done = complete(&b, &id).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let again = complete(&a, &id).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
    let on_a = get_journey(&a, &id, &[]).await;
    assert_eq!(
        on_a.result()["currentStatus"],
        "COMPLETED",
        "{}",
        on_a.text()
    );

    // Exactly one callback, listed by either replica with the replica that made it.
    let log = settled(&a, 1).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0]["replica"].is_string(), "{log:?}");
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(
        receiver.received()[0].header("authorization"),
        Some("cb-key")
    );

    // Both replicas count the requests of both: the create on A, a read on each.
    for server in [&a, &b] {
        let count = admin(
            server,
            Method::POST,
            "requests/count",
            &json!({ "journeyId": id }).to_string(),
        )
        .await;
        assert_eq!(count.json()["count"], 3, "{}", count.text());
    }
    let health = admin(&b, Method::GET, "health", "").await.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["store"]["kind"], "redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_clients_completing_the_same_journeys_through_three_replicas_give_one_winner_each(
) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let replicas = [
        replica(&redis).await,
        replica(&redis).await,
        replica(&redis).await,
    ];
    let receiver = Receiver::start(Answer::Status(200)).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(create_id(&replicas[i % 3], &with_callback(&receiver.url), &[]).await);
    }
    let urls: Vec<String> = replicas.iter().map(|r| r.uri()).collect();
    let mut clients = Vec::new();
    for client in 0..32 {
        let urls = urls.clone();
        let ids = ids.clone();
        clients.push(tokio::spawn(async move {
            let mut wins = Vec::new();
            for (j, id) in ids.iter().enumerate() {
                let url = format!(
                    "{}/__admin/journeys/{id}/complete",
                    urls[(client + j) % urls.len()]
                );
                let reply = send_url(Method::POST, &url, &[], "").await;
                match reply.status {
                    StatusCode::OK => wins.push(id.clone()),
                    StatusCode::CONFLICT => {}
                    other => panic!("complete answered {other}: {}", reply.text()),
                }
            }
            wins
        }));
    }
    let mut wins = Vec::new();
    for client in clients {
        wins.extend(client.await.expect("client task"));
    }
    wins.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(wins, expected, "exactly one winner per journey");

    // One callback per journey, whichever replica delivered it.
    let log = settled(&replicas[0], ids.len()).await;
    assert_eq!(log.len(), ids.len(), "{log:?}");
    let mut called: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| {
            r.json()["journeyId"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    called.sort();
    assert_eq!(called, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journey_bounds_hold_for_all_replicas_and_any_replica_serves_the_page() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut bounded = config(&redis);
    bounded.max_journeys = 3;
    let a = serve_with(bounded.clone()).await;
    let b = serve_with(bounded).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let server = if i % 2 == 0 { &a } else { &b };
        ids.push(create_id(server, &json!({ "flowId": format!("f{i}") }), &[]).await);
    }
    // Three kept, the oldest evicted first, whichever replica created them; listed in pages.
    let pages = support::walk(&a, "journeys", &["journeys"], 2).await;
    assert_eq!(pages.len(), 2);
    let listed: Vec<Value> = pages
        .iter()
        .flat_map(|page| page["journeys"].as_array().cloned().unwrap_or_default())
        .collect();
    let kept: Vec<&str> = listed
        .iter()
        .filter_map(|j| j["journeyId"].as_str())
        .collect();
    assert_eq!(
        kept,
        ids[2..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(
        admin(&b, Method::GET, "health", "").await.json()["journeys"],
        3
    );

    // The page opened on A, submitted on B: the journey ends once, with the chosen outcome.
    let id = &ids[4];
    let opened = a
        .send(Method::GET, &format!("/journey/{id}"), &[], "")
        .await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.text());
    assert_eq!(
        admin(&b, Method::GET, &format!("journeys/{id}"), "")
            .await
            .json()["state"],
        "in_progress"
    );
    let done = complete(&b, id).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let shown = a
        .send(Method::GET, &format!("/journey/{id}"), &[], "")
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text());
    assert_eq!(
        admin(&a, Method::GET, &format!("journeys/{id}"), "")
            .await
            .json()["state"],
        "completed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_rules_and_resets_through_one_replica_apply_on_all() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = replica(&redis).await;
    // The library's builder says it as the command line does.
    let b = otk_mock::MockServer::builder()
        .store(&redis.url())
        .start()
        .await
        .expect("a replica through the builder");
    let b = Mock::Socket(b);
    let rule = json!({ "inject": "status:503", "journeyId": "success-faulted" }).to_string();
    let added = admin(&a, Method::POST, "faults", &rule).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text());
    eventually("the rule to apply on B", || async {
        let reply = get_journey(&b, "success-faulted", &[]).await;
        (reply.status == StatusCode::SERVICE_UNAVAILABLE).then_some(())
    })
    .await;
    let listed = admin(&b, Method::GET, "faults", "").await.json();
    assert_eq!(listed["faults"][0]["id"], added.json()["id"]);

    let id = create_id(&b, &json!({ "flowId": "f" }), &[]).await;
    let reset = admin(&b, Method::POST, "reset", "").await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text());
    eventually("the reset to reach A", || async {
        let faults = admin(&a, Method::GET, "faults", "").await.json();
        let journey = admin(&a, Method::GET, &format!("journeys/{id}"), "").await;
        (faults["faults"] == json!([]) && journey.status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    assert_eq!(
        get_journey(&a, "success-faulted", &[]).await.status,
        StatusCode::OK
    );
}

/// The binary as a replica, killed (SIGKILL) when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn otk_mock() -> Command {
    common::binary()
}

/// Start the binary on `redis`; its process and base URL, read from its start-up line.
fn binary_replica(redis: &RedisServer) -> (Process, String) {
    let mut child = otk_mock()
        .args(["serve", "--bind", "127.0.0.1:0", "--log-format", "json"])
        .args(["--store", &redis.url(), "--auto-complete-after", "2s"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let process = Process(child);
    let mut lines = BufReader::new(stderr).lines();
    let mut base = None;
    for line in lines.by_ref() {
        let line = line.expect("a log line");
        let Ok(entry) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let listening = entry["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("otk-mock is listening"));
        if let (true, Some(address)) = (listening, entry["fields"]["address"].as_str()) {
            base = Some(format!("http://{address}"));
            break;
        }
    }
    let base = base.expect("the replica says where it listens");
    // Keep reading its log, so that it never blocks on (or loses) a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (process, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_and_deadlines_pending_on_a_killed_replica_are_delivered_by_another() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let receiver = Receiver::start(Answer::Status(200)).await;
    let (doomed, url) = binary_replica(&redis);
    let mut ids = Vec::new();
    for _ in 0..4 {
        let reply = send_url(
            Method::POST,
            &format!("{url}/api/v3/otk-service/create-journey-url"),
            &[
                ("authorization", common::TOKEN),
                ("content-type", "application/json"),
                ("x-mock-callback-delay", "1s"),
            ],
            &with_callback(&receiver.url).to_string(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let id = reply.json()["result"]["journeyId"]
            .as_str()
            .expect("journeyId")
            .to_string();
        let done = send_url(
            Method::POST,
            &format!("{url}/__admin/journeys/{id}/complete"),
            &[],
            "",
        )
        .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        ids.push(id);
    }
    // Two more left to complete on their own (--auto-complete-after 2s): their timers die
    // with the replica, and the deadline it shared is applied by the survivor.
    for _ in 0..2 {
        let reply = send_url(
            Method::POST,
            &format!("{url}/api/v3/otk-service/create-journey-url"),
            &[
                ("authorization", common::TOKEN),
                ("content-type", "application/json"),
            ],
            &with_callback(&receiver.url).to_string(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        ids.push(
            reply.json()["result"]["journeyId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // Killed with its callbacks queued and not yet due: it never delivers them.
    drop(doomed);
    assert!(receiver.received().is_empty());

    let mut config = config(&redis);
    config.auto_complete_after = Some(Duration::from_secs(2));
    let survivor = serve_with(config).await;
    let log = settled(&survivor, ids.len()).await;
    assert_eq!(log.len(), ids.len(), "{log:?}");
    let got = receiver.wait_for(ids.len()).await;
    let mut webhooks: Vec<String> = got
        .iter()
        .map(|r| {
            r.json()["journeyId"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    webhooks.sort();
    ids.sort();
    assert_eq!(webhooks, ids);
    for id in &ids {
        let view = admin(&survivor, Method::GET, &format!("journeys/{id}"), "").await;
        assert_eq!(view.json()["callback"]["sent"], true, "{}", view.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_redis_gives_503s_and_degraded_health_then_recovers_losing_no_journey_or_callback() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let server = replica(&redis).await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    let id = create_id(&server, &json!({ "flowId": "kept" }), &[]).await;
    // A callback queued (due in 2 s) before Redis goes: it must survive the restart too.
    let called = create_id(
        &server,
        &with_callback(&receiver.url),
        &[("x-mock-callback-delay", "2s")],
    )
    .await;
    assert_eq!(complete(&server, &called).await.status, StatusCode::OK);
    redis.stop();

    // Stateless ids still answer; anything that needs the store says which and why.
    let stateless = get_journey(&server, "liveness_failed-7", &[]).await;
    assert_eq!(stateless.status, StatusCode::OK, "{}", stateless.text());
    let created = get_journey(&server, &id, &[]).await;
    let message = created.assert_provider_error(503);
    assert!(message.contains(&redis.url()), "{message}");
    assert_eq!(created.header("retry-after"), Some("1"));
    let refused = create(&server, &json!({ "flowId": "f" }), &[]).await;
    refused.assert_provider_error(503);
    let health = admin(&server, Method::GET, "health", "").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "degraded", "{}", health.text());
    assert_eq!(health.json()["store"]["reachable"], false);

    // Back, with what it had persisted: the journey is there and the replica recovers.
    redis.run();
    eventually("health to say ok again", || async {
        let health = admin(&server, Method::GET, "health", "").await.json();
        (health["status"] == "ok").then_some(())
    })
    .await;
    let again = get_journey(&server, &id, &[]).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    assert_eq!(again.result()["flow"]["flowId"], "kept");
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json()["journeyId"], called.as_str());
    settled(&server, 1).await;
    assert_eq!(receiver.received().len(), 1);
}

#[test]
fn a_redis_that_does_not_answer_at_start_is_exit_2_naming_it() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let url = format!("redis://127.0.0.1:{port}/0");
    let out = otk_mock()
        .args(["serve", "--bind", "127.0.0.1:0", "--store", &url])
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&url), "{stderr}");

    let out = otk_mock()
        .args(["serve", "--store", "redis//nowhere"])
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("redis//nowhere") && stderr.contains("redis://HOST:PORT"),
        "{stderr}"
    );
}

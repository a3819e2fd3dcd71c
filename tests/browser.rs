//! The console and the hosted page in a real browser: Debian's chromium, headless, driven
//! through chromedriver with fantoccini. Each test starts its own mock on 127.0.0.1:0, its own
//! chromedriver on a free port and its own chromium profile.
//!
//! Without chromium and chromedriver these tests say so loudly and pass; with `CI=true` a
//! missing browser fails them (`.ci/run` installs it). On a failure, a screenshot of every
//! page the test saw is written to `target/screenshots/` (under the crate, whatever
//! `CARGO_TARGET_DIR` says), with the HTML of the last one (`OTK_MOCK_SCREENSHOTS=all`: on
//! success too). With `OTK_MOCK_SCREENSHOT_DOCS=1` the first test also writes the README's
//! `docs/console.png`.
//!
//! Waits poll the page for what a user would see, up to a generous deadline; none is a
//! timing threshold.

mod common;
mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use common::{serve_with, Mock};
use support::{create_id, quick_config, DEADLINE};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

type Failure = Box<dyn std::error::Error + Send + Sync>;
type Outcome = Result<(), Failure>;

fn fail(message: impl Into<String>) -> Failure {
    message.into().into()
}

/// The browser's binaries, or `None` (after saying so) when they are not installed here.
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = std::env::var_os("OTK_MOCK_CHROMIUM").map_or(CHROMIUM.into(), PathBuf::from);
    let driver =
        std::env::var_os("OTK_MOCK_CHROMEDRIVER").map_or(CHROMEDRIVER.into(), PathBuf::from);
    if chromium.exists() && driver.exists() {
        return Some((chromium, driver));
    }
    let message = format!(
        "\n\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !! BROWSER TESTS SKIPPED: {} or {} is missing.\n\
         !! Install them with: apt-get install -y chromium chromium-driver\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n",
        chromium.display(),
        driver.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}CI=true: the browser tests must run in CI");
    }
    // Written to the process's stderr, not through eprintln!, which the test harness
    // captures and hides for a passing test: a skip must be seen.
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(message.as_bytes());
    None
}

/// How a test's browser is set up.
#[derive(Clone, Copy)]
struct Setup {
    javascript: bool,
    /// A 375×812 phone instead of a 1280×900 desktop window.
    phone: bool,
}

/// A chromedriver of this test's own, and the chromium session it drives.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    /// What the test saw, page by page, for the screenshots written on failure.
    seen: Vec<(String, Vec<u8>)>,
}

impl Browser {
    async fn start(chromium: &Path, driver: &Path, setup: Setup) -> Result<Browser, Failure> {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            listener.local_addr()?.port()
        };
        let mut child = Command::new(driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        // Ready when it says so on its standard output.
        let stdout = child.stdout.take().ok_or_else(|| fail("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(DEADLINE, async {
            while let Some(line) = lines.next_line().await? {
                if line.contains("started successfully") {
                    return Ok::<bool, std::io::Error>(true);
                }
            }
            Ok(false)
        })
        .await;
        if !matches!(ready, Ok(Ok(true))) {
            return Err(fail(format!("chromedriver did not start: {ready:?}")));
        }
        // Keep draining its output, so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let profile = tempfile::tempdir()?;
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        if !setup.phone {
            args.push("--window-size=1280,900".into());
        }
        let mut options = json!({ "binary": chromium, "args": args });
        if !setup.javascript {
            options["prefs"] = json!({ "profile.managed_default_content_settings.javascript": 2 });
        }
        if setup.phone {
            options["mobileEmulation"] =
                json!({ "deviceMetrics": { "width": 375, "height": 812, "pixelRatio": 2.0 } });
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await?;
        Ok(Browser {
            client,
            driver: child,
            _profile: profile,
            seen: Vec::new(),
        })
    }

    /// Remember what the page looks like now, as `label`.
    async fn snap(&mut self, label: &str) {
        if let Ok(png) = self.client.screenshot().await {
            self.seen.push((label.to_string(), png));
        }
    }

    async fn goto(&mut self, url: &str, label: &str) -> Outcome {
        self.client.goto(url).await?;
        self.snap(label).await;
        Ok(())
    }

    async fn url(&self) -> Result<String, Failure> {
        Ok(self.client.current_url().await?.to_string())
    }

    async fn source(&self) -> Result<String, Failure> {
        Ok(self.client.source().await?)
    }

    /// The element `css` selects, once the page has one.
    async fn find(&self, css: &str) -> Result<fantoccini::elements::Element, Failure> {
        Ok(self
            .client
            .wait()
            .at_most(DEADLINE)
            .for_element(Locator::Css(css))
            .await?)
    }

    async fn text_of(&self, css: &str) -> Result<String, Failure> {
        Ok(self.find(css).await?.text().await?)
    }

    async fn click(&self, css: &str) -> Outcome {
        self.find(css).await?.click().await?;
        Ok(())
    }

    async fn fill(&self, css: &str, text: &str) -> Outcome {
        let field = self.find(css).await?;
        field.clear().await?;
        field.send_keys(text).await?;
        Ok(())
    }

    async fn select(&self, css: &str, value: &str) -> Outcome {
        self.find(css).await?.select_by_value(value).await?;
        Ok(())
    }

    /// Poll until `check` accepts the page's URL and HTML (reloading first when `reload`),
    /// failing after the deadline with `what`.
    async fn until(&self, what: &str, reload: bool, check: impl Fn(&str, &str) -> bool) -> Outcome {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if reload {
                self.client.refresh().await?;
            }
            let url = self.url().await.unwrap_or_default();
            let source = self.source().await.unwrap_or_default();
            if check(&url, &source) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(fail(format!("timed out waiting for {what}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// On failure: every page seen and the last one's HTML, under `target/screenshots/`.
    async fn keep_evidence(&mut self, test: &str, last: &str) -> PathBuf {
        self.snap(last).await;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("screenshots")
            .join(test);
        let _ = std::fs::create_dir_all(&dir);
        for (n, (label, png)) in self.seen.iter().enumerate() {
            let _ = std::fs::write(dir.join(format!("{n:02}-{label}.png")), png);
        }
        if let Ok(html) = self.client.source().await {
            let _ = std::fs::write(dir.join(format!("{last}.html")), html);
        }
        dir
    }

    async fn stop(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill().await;
    }
}

/// Run `body` in a fresh browser set up as `setup`; on failure, keep the screenshots and fail.
async fn in_browser<F>(test: &str, setup: Setup, body: F)
where
    F: for<'b> AsyncFnOnce(&'b mut Browser) -> Outcome,
{
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let mut browser = match Browser::start(&chromium, &driver, setup).await {
        Ok(browser) => browser,
        Err(e) => panic!("the browser does not start: {e}"),
    };
    let outcome = body(&mut browser).await;
    if outcome.is_ok() && std::env::var("OTK_MOCK_SCREENSHOTS").is_ok_and(|v| v == "all") {
        let dir = browser.keep_evidence(test, "at-end").await;
        eprintln!("{test}: screenshots in {}", dir.display());
    }
    if let Err(e) = outcome {
        let dir = browser.keep_evidence(test, "at-failure").await;
        browser.stop().await;
        panic!("{test}: {e}\nscreenshots: {}", dir.display());
    }
    browser.stop().await;
}

/// The whole tester's path, as the issue tells it: open the console, create a journey whose
/// callback goes to the inbox, open its link, pick liveness_failed, submit, follow the
/// redirect, press Back (no resubmission page), see the callback in the inbox and the
/// journey in the console, add and remove a fault.
async fn tester_path(b: &mut Browser, server: &Mock, javascript: bool) -> Outcome {
    let base = server.uri();
    b.goto(&format!("{base}/__admin/"), "console").await?;
    if b.url().await? != format!("{base}/__admin/ui/") {
        return Err(fail(format!("/__admin/ led to {}", b.url().await?)));
    }
    b.fill(
        "input[name=successRedirectUrl]",
        &format!("{base}/__admin/ui/inbox/console"),
    )
    .await?;
    // Over a second: Chromium keeps a slower meta refresh's page in the history, so Back
    // returns to it (a quicker one replaces the entry, and Back would never meet it).
    b.fill("input[name=redirectTime]", "2").await?;
    b.click("#toInbox").await?;
    b.select("#autoComplete", "off").await?;
    b.click("#create").await?;
    let id = b.text_of("#journey-id").await?;
    b.snap("journey").await;
    if !b.source().await?.contains("<svg") {
        return Err(fail("no QR code on the journey's page"));
    }

    b.click("#journey-link").await?;
    if !b.url().await?.ends_with(&format!("/journey/{id}")) {
        return Err(fail(format!("the link led to {}", b.url().await?)));
    }
    b.snap("hosted-form").await;
    b.click("input[name=outcome][value=liveness_failed]")
        .await?;
    b.click("#finish").await?;
    // POST → 303 → the result, which redirects to the success URL after redirectTime
    // (liveness_failed completes the journey, as the provider's does).
    b.until("the redirect to the success URL", false, |url, _| {
        url.ends_with("/__admin/ui/inbox/console")
    })
    .await?;
    b.snap("redirected").await;

    b.client.back().await?;
    b.snap("after-back").await;
    let after_back = b.url().await?;
    let html = b.source().await?;
    if !after_back.starts_with(&base)
        || html.contains("ERR_CACHE_MISS")
        || html.contains("Confirm Form Resubmission")
        || !html.contains("otk-mock")
    {
        return Err(fail(format!(
            "Back led to {after_back}, not a page of the mock"
        )));
    }

    // The callback in the inbox (without JavaScript, reloading as a tester would).
    b.goto(&format!("{base}/__admin/ui/inbox/console"), "inbox")
        .await?;
    // The page's source as the browser serializes it: quotes in text are plain.
    let needle = format!("\"journeyId\": \"{id}\"");
    b.until("the callback in the inbox", !javascript, |_, html| {
        html.contains(&needle)
    })
    .await?;
    b.snap("inbox-with-callback").await;

    // The journey in the console: completed as liveness_failed, callback delivered.
    b.goto(&format!("{base}/__admin/ui/"), "journeys").await?;
    b.until(
        "the journey delivered in the console",
        !javascript,
        |_, html| {
            row(html, &id).is_some_and(|row| {
                row.contains("completed")
                    && row.contains("liveness_failed")
                    && row.contains("delivered")
            })
        },
    )
    .await?;

    // A fault: a mistake is explained, a good rule is listed, then removed.
    b.goto(&format!("{base}/__admin/ui/faults"), "faults")
        .await?;
    b.fill("#inject", "status:99").await?;
    b.click("#add-fault").await?;
    let problem = b.text_of("#problem").await?;
    if !problem.contains("inject: ") {
        return Err(fail(format!("a bad rule said {problem:?}")));
    }
    b.snap("fault-mistake").await;
    b.goto(&format!("{base}/__admin/ui/faults"), "faults-again")
        .await?;
    b.fill("#inject", "delay:1s; status:503").await?;
    b.click("#add-fault").await?;
    let rule = b.text_of("#faults tbody tr").await?;
    if !rule.contains("status:503") {
        return Err(fail(format!("the rule shows as {rule:?}")));
    }
    b.snap("fault-added").await;
    b.click("#faults tbody tr button.danger").await?;
    b.client
        .wait()
        .at_most(DEADLINE)
        .for_element(Locator::Css("#no-faults"))
        .await?;
    b.snap("fault-deleted").await;
    Ok(())
}

#[tokio::test]
async fn a_tester_goes_from_the_console_through_the_page_to_the_inbox_with_javascript() {
    let server = serve_with(quick_config()).await;
    in_browser(
        "with-javascript",
        Setup {
            javascript: true,
            phone: false,
        },
        async |b| {
            tester_path(b, &server, true).await?;
            // The fault form checks a rule as it is typed.
            b.goto(&format!("{}/__admin/ui/faults", server.uri()), "typing")
                .await?;
            b.fill("#inject", "status:99").await?;
            b.until("the check to name the statuses", false, |_, html| {
                html.contains(r#"class="wide check bad""#) && html.contains("must be one of 429")
            })
            .await?;
            b.fill("#inject", "status:503").await?;
            b.until("the check to accept the rule", false, |_, html| {
                html.contains(r#"class="wide check good""#)
            })
            .await?;
            b.snap("typed").await;
            // Live refresh: a journey created meanwhile appears without a reload.
            b.goto(&format!("{}/__admin/ui/", server.uri()), "live")
                .await?;
            let id = create_id(&server, &json!({"flowId": "live"}), &[]).await;
            b.until("the new journey to appear by itself", false, |_, html| {
                row(html, &id).is_some()
            })
            .await?;
            if std::env::var("OTK_MOCK_SCREENSHOT_DOCS").is_ok_and(|v| v == "1") {
                docs_screenshot(b, &server).await?;
            }
            Ok(())
        },
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_tester_goes_from_the_console_through_the_page_to_the_inbox_without_javascript() {
    let server = serve_with(quick_config()).await;
    in_browser(
        "without-javascript",
        Setup {
            javascript: false,
            phone: false,
        },
        async |b| {
            tester_path(b, &server, false).await?;
            Ok(())
        },
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn on_a_phone_the_preselected_outcome_and_the_finish_button_are_on_the_first_screen() {
    let server = serve_with(quick_config()).await;
    let id = create_id(&server, &json!({"flowId": "phone"}), &[]).await;
    let url = format!("{}/journey/{id}", server.uri());
    in_browser(
        "phone",
        Setup { javascript: true, phone: true },
        async |b| {
            b.goto(&url, "phone-form").await?;
            let seen: Value = b
                .client
                .execute(
                    "const f = document.getElementById('finish').getBoundingClientRect();\
                     const s = document.querySelector('input[name=outcome]:checked').getBoundingClientRect();\
                     return {width: window.innerWidth, height: window.innerHeight,\
                             finishTop: f.top, finishBottom: f.bottom, selectedTop: s.top,\
                             selected: document.querySelector('input[name=outcome]:checked').value};",
                    vec![],
                )
                .await?;
            let number = |k: &str| seen[k].as_f64().unwrap_or(f64::NAN);
            if number("width") > 400.0 {
                return Err(fail(format!("not a phone-sized viewport: {seen}")));
            }
            let height = number("height");
            if !(number("finishTop") >= 0.0 && number("finishBottom") <= height) {
                return Err(fail(format!("the Finish button is off the first screen: {seen}")));
            }
            if !(number("selectedTop") >= 0.0 && number("selectedTop") < height) || seen["selected"] != "success" {
                return Err(fail(format!("the preselected outcome is off the first screen: {seen}")));
            }
            Ok(())
        },
    )
    .await;
    server.shutdown().await;
}

/// The HTML of journey `id`'s row in the console's table, if it has one.
fn row<'h>(html: &'h str, id: &str) -> Option<&'h str> {
    let start = html.find(&format!("<tr data-journey=\"{id}\">"))?;
    let rest = &html[start..];
    Some(&rest[..rest.find("</tr>")?])
}

/// The README's picture of the console: a few journeys in every state.
async fn docs_screenshot(b: &mut Browser, server: &Mock) -> Outcome {
    for scenario in ["face_mismatch", "vpn_flagged", "success"] {
        let id = create_id(
            server,
            &json!({"flowId": "docs"}),
            &[("x-mock-scenario", scenario)],
        )
        .await;
        if scenario != "success" {
            support::complete(server, &id).await;
        }
    }
    b.client.set_window_size(1280, 1200).await?;
    b.goto(&format!("{}/__admin/ui/", server.uri()), "docs")
        .await?;
    let png = b.client.screenshot().await?;
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join("console.png");
    std::fs::write(&path, png)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

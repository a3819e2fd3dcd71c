//! `otk-mock health`: ask a running server whether it is healthy, for a container's
//! `HEALTHCHECK` or a compose file's `depends_on: condition: service_healthy`, so that the image
//! needs no curl or wget.
//!
//! Exit 0 when `GET /__admin/health` answers 200 with `"status": "ok"`; 1 for anything else,
//! a bad `--url` included, because Docker reads any other code as "unhealthy" only by accident
//! (it reserves 2). One line on stdout when healthy, on stderr when not.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use hyper::Method;
use serde_json::Value;

use super::{print_out, Failure};
use crate::client::OutboundClient;
use crate::config::{parse_bind, parse_positive_duration};

/// `otk-mock health ...`
#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// The health URL to ask [default: /__admin/health on --admin-bind if set, else on --bind;
    /// an unspecified address, 0.0.0.0 or ::, is asked on loopback].
    #[arg(long, env = "OTK_MOCK_HEALTH_URL", value_name = "URL")]
    pub url: Option<String>,
    /// Where the server listens, as given to `serve` (the same variable, so a container's
    /// environment needs nothing more).
    #[arg(long, env = "OTK_MOCK_BIND", default_value = "127.0.0.1:8080", value_name = "HOST:PORT", value_parser = parse_bind)]
    pub bind: SocketAddr,
    /// The admin listener, as given to `serve`; when set, health is asked there.
    #[arg(long, env = "OTK_MOCK_ADMIN_BIND", value_name = "HOST:PORT", value_parser = parse_bind)]
    pub admin_bind: Option<SocketAddr>,
    /// How long to wait for the answer (above zero).
    #[arg(long, env = "OTK_MOCK_HEALTH_TIMEOUT", default_value = "3s", value_parser = parse_positive_duration)]
    pub timeout: Duration,
}

impl HealthArgs {
    /// The URL to ask: `--url`, else the admin or provider listener's health route.
    pub fn target(&self) -> String {
        if let Some(url) = &self.url {
            return url.trim().to_string();
        }
        let mut address = self.admin_bind.unwrap_or(self.bind);
        // A server listening everywhere is reached on loopback from inside its container.
        match address.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => address.set_ip(Ipv4Addr::LOCALHOST.into()),
            IpAddr::V6(ip) if ip.is_unspecified() => address.set_ip(Ipv6Addr::LOCALHOST.into()),
            _ => {}
        }
        format!("http://{address}/__admin/health")
    }
}

/// Run `otk-mock health`.
pub fn run(args: &HealthArgs) -> Result<(), Failure> {
    let url = args.target();
    let unhealthy = |why: String| Failure::Runtime(anyhow::anyhow!("health: {url}: {why}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| unhealthy(format!("cannot start the runtime: {e}")))?;
    let answer = runtime
        .block_on(async {
            let client = OutboundClient::new()?;
            client
                .send(Method::GET, &url, &[], Bytes::new(), args.timeout)
                .await
        })
        .map_err(|e| unhealthy(e.to_string()))?;
    let body: Option<Value> = serde_json::from_slice(&answer.body).ok();
    let status = body
        .as_ref()
        .and_then(|b| b.get("status"))
        .and_then(Value::as_str);
    if !answer.status.is_success() || status != Some("ok") {
        return Err(unhealthy(format!(
            "answered {} with status {}",
            answer.status.as_u16(),
            status.map_or("(none)".to_string(), |s| format!("{s:?}"))
        )));
    }
    let scenarios = body
        .as_ref()
        .and_then(|b| b.pointer("/catalogue/scenarios"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let uptime = body
        .as_ref()
        .and_then(|b| b.get("uptimeSeconds"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    print_out(&format!(
        "ok: {url} ({scenarios} scenarios, up {uptime} s)\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        health: HealthArgs,
    }

    fn target(args: &[&str]) -> String {
        let mut argv = vec!["health"];
        argv.extend_from_slice(args);
        Wrapper::try_parse_from(argv).unwrap().health.target()
    }

    #[test]
    fn asks_the_listener_on_loopback_when_it_listens_everywhere() {
        assert_eq!(
            target(&["--bind", "0.0.0.0:8080"]),
            "http://127.0.0.1:8080/__admin/health"
        );
        assert_eq!(
            target(&["--bind", "[::]:9"]),
            "http://[::1]:9/__admin/health"
        );
        assert_eq!(
            target(&["--bind", "0.0.0.0:8080", "--admin-bind", "127.0.0.1:8081"]),
            "http://127.0.0.1:8081/__admin/health"
        );
        assert_eq!(
            target(&["--url", "http://mock:8080/__admin/health"]),
            "http://mock:8080/__admin/health"
        );
    }
}

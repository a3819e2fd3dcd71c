//! What the console is made of, compiled into the binary: its Tera templates, its stylesheet,
//! its script, and the QR code of a journey link. Nothing is fetched from anywhere else.

use std::sync::OnceLock;

use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use crate::wire::{full, ApiError, Body};

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("ui/base.html.tera")),
    ("journeys.html", include_str!("ui/journeys.html.tera")),
    ("journey.html", include_str!("ui/journey.html.tera")),
    ("scenarios.html", include_str!("ui/scenarios.html.tera")),
    ("callbacks.html", include_str!("ui/callbacks.html.tera")),
    ("inbox.html", include_str!("ui/inbox.html.tera")),
    ("requests.html", include_str!("ui/requests.html.tera")),
    ("faults.html", include_str!("ui/faults.html.tera")),
    ("health.html", include_str!("ui/health.html.tera")),
    ("login.html", include_str!("ui/login.html.tera")),
    ("problem.html", include_str!("ui/problem.html.tera")),
];

const STYLE: &str = include_str!("ui/console.css");
const SCRIPT: &str = include_str!("ui/console.js");

/// The console's templates, parsed once. They are part of the binary, so a failure to parse
/// them is a bug that the tests catch; it is still answered as a 500, not a panic.
fn templates() -> Result<&'static tera::Tera, ApiError> {
    static TERA: OnceLock<Result<tera::Tera, String>> = OnceLock::new();
    let parsed = TERA.get_or_init(|| {
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![".html"]);
        tera.add_raw_templates(TEMPLATES.iter().copied())
            .map_err(|e| format!("{e:?}"))?;
        Ok(tera)
    });
    parsed.as_ref().map_err(|e| {
        tracing::error!(error = %e, "the console's templates do not parse");
        ApiError::internal()
    })
}

/// Render console template `name` (`journeys.html`).
pub fn render(name: &str, context: &tera::Context) -> Result<String, ApiError> {
    templates()?.render(name, context).map_err(|e| {
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(template = name, error = %detail, "console page render failed");
        ApiError::internal()
    })
}

/// `GET /__admin/ui/assets/{name}`.
pub fn serve(name: &str) -> Result<Response<Body>, ApiError> {
    let (text, kind) = match name {
        "console.css" => (STYLE, "text/css; charset=utf-8"),
        "console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("The console has no asset {name:?}"),
            ))
        }
    };
    let mut response = Response::new(full(text));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    // They change only with the binary.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    Ok(response)
}

/// A QR code of `text` as an SVG element, for opening a journey link on a phone.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(180, 180)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        assert!(templates().is_ok());
    }

    #[test]
    fn qr_codes_are_svg() {
        let svg = qr_svg("http://192.168.1.20:8080/journey/ABCDEFGHIJ").unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        assert!(serve("console.css").is_ok());
        assert_eq!(serve("x.js").unwrap_err().status, StatusCode::NOT_FOUND);
    }
}

//! The QA console, `/__admin/ui/`: the admin operations in a browser, for testers who
//! reproduce edge cases by hand.
//!
//! It is one more surface over the same [`App`]: every page reads what the admin API reads,
//! and every button calls the operation the admin API calls (create, complete, bind,
//! redeliver, reset, fault rules, journal), never one of its own. Pages are server-rendered
//! HTML that works without JavaScript: each action is a `POST` form that answers
//! `303 See Other` to the page to show next, so Back and reload never resubmit; a mistake in a
//! form is a 400 page that says what is wrong. A little JavaScript of our own (`console.js`,
//! compiled in like the stylesheet and the templates: nothing is fetched from elsewhere)
//! refreshes the live parts of a page every two seconds and copies `curl` lines.
//!
//! With `--admin-token`, every page but the login form and the assets needs the token: the
//! login form sets it in a cookie (`HttpOnly`, `SameSite=Strict`, path `/__admin/`), which the
//! admin API accepts too (the live refresh reads pages with it).
//!
//! Browsers that open `/__admin` or `/__admin/` are sent to `/__admin/ui/`.

mod actions;
mod assets;
mod pages;

use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};

use crate::admin::{authorized, cookie_encode, TOKEN_COOKIE};
use crate::app::App;
use crate::wire::{full, ApiError, Body};

/// Where the console lives.
pub const PREFIX: &str = "/__admin/ui/";

/// Whether `path` is the console's (or the bare admin root a browser opens).
pub fn owns(path: &str) -> bool {
    path == "/__admin" || path == "/__admin/" || path == "/__admin/ui" || path.starts_with(PREFIX)
}

/// What a console request asks, from its head.
pub struct Call {
    method: Method,
    /// The path below [`PREFIX`], `None` for the admin root and `/__admin/ui`.
    rest: Option<String>,
    query: String,
    authorized: bool,
    /// Whether the admin API needs a token at all (the login and logout links show then).
    protected: bool,
}

/// The checks on a console request's head. Nothing is refused here: an unauthorized request
/// gets the login page from [`handle`].
pub fn prepare<B>(app: &App, request: &Request<B>) -> Result<Call, ApiError> {
    let path = request.uri().path();
    Ok(Call {
        method: request.method().clone(),
        rest: path.strip_prefix(PREFIX).map(str::to_string),
        query: request.uri().query().unwrap_or("").to_string(),
        authorized: authorized(app, request),
        protected: app.config().admin_token.is_some(),
    })
}

/// Answer one console request, its body read.
pub fn handle(app: &App, call: Call, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let Some(rest) = call.rest.as_deref() else {
        return Ok(see_other(PREFIX));
    };
    let parts: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.trim_end_matches('/').split('/').collect()
    };
    let get = matches!(call.method, Method::GET | Method::HEAD);
    // Open to anyone: the assets, and the login form itself.
    match (get, parts.as_slice()) {
        (true, ["assets", name]) => return assets::serve(name),
        (true, ["login"]) => return pages::login(app, StatusCode::OK, None),
        (false, ["login"]) if call.method == Method::POST => return login(app, body),
        (false, ["logout"]) if call.method == Method::POST => return Ok(logout()),
        _ => {}
    }
    if !call.authorized {
        return pages::login(
            app,
            StatusCode::UNAUTHORIZED,
            Some("Sign in with the admin token (--admin-token) to use the console."),
        );
    }
    let view = pages::View {
        protected: call.protected,
        query: &call.query,
    };
    if get {
        return match parts.as_slice() {
            [] => pages::journeys(app, &view),
            ["journeys", id] => pages::journey(app, &view, id),
            ["scenarios"] => pages::scenarios(app, &view),
            ["callbacks"] => pages::callbacks(app, &view),
            ["inbox"] => pages::inboxes(app, &view),
            ["inbox", name] => pages::inbox(app, &view, name),
            ["requests"] => pages::requests(app, &view),
            ["faults"] => pages::faults(app, &view),
            ["faults", "check"] => Ok(pages::check_fault(&call.query)),
            ["health"] => pages::health(app, &view),
            _ => pages::problem(
                app,
                &view,
                StatusCode::NOT_FOUND,
                "No such console page",
                &format!("{PREFIX}{rest} is not a page of the console."),
            ),
        };
    }
    if call.method != Method::POST {
        return Err(ApiError::method_not_allowed(
            &call.method,
            "GET, HEAD, POST",
        ));
    }
    let form = actions::Form::parse(body);
    let done = match parts.as_slice() {
        ["journeys"] => actions::create(app, &form),
        ["journeys", id, "complete"] => actions::complete(app, id, &form),
        ["journeys", id, "rebind"] => actions::rebind(app, id, &form),
        ["journeys", id, "redeliver"] => actions::redeliver(app, id),
        ["reset"] => actions::reset(app),
        ["faults"] => actions::add_fault(app, &form),
        ["faults", n, "delete"] => actions::delete_fault(app, n),
        ["requests", "clear"] => actions::clear_requests(app),
        ["inbox", name, "clear"] => actions::clear_inbox(app, name),
        _ => Err(actions::Refused::new(
            StatusCode::NOT_FOUND,
            format!("{PREFIX}{rest} is not an action of the console."),
        )),
    };
    match done {
        Ok(location) => Ok(see_other(&location)),
        Err(refused) => pages::problem(
            app,
            &view,
            refused.status,
            "That did not work",
            &refused.message,
        ),
    }
}

/// `303 See Other` to `location`: the page to show after an action.
fn see_other(location: &str) -> Response<Body> {
    let mut response = Response::new(full(bytes::Bytes::new()));
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /__admin/ui/login` with `token=…`: the cookie, or the form again saying why not.
fn login(app: &App, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let Some(token) = &app.config().admin_token else {
        return Ok(see_other(PREFIX));
    };
    let presented = form_urlencoded::parse(body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if presented.is_empty() {
        return pages::login(app, StatusCode::BAD_REQUEST, Some("Enter the admin token."));
    }
    if !token.matches(presented.as_bytes()) {
        tracing::warn!("console sign-in refused: wrong admin token");
        return pages::login(
            app,
            StatusCode::UNAUTHORIZED,
            Some("That is not the admin token this mock was started with (--admin-token)."),
        );
    }
    let mut response = see_other(PREFIX);
    let cookie = format!(
        "{TOKEN_COOKIE}={}; Path=/__admin/; HttpOnly; SameSite=Strict",
        cookie_encode(&presented)
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

/// `POST /__admin/ui/logout`: the cookie dropped.
fn logout() -> Response<Body> {
    let mut response = see_other(&format!("{PREFIX}login"));
    response.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_static(
            "otk_mock_admin=; Path=/__admin/; Max-Age=0; HttpOnly; SameSite=Strict",
        ),
    );
    response
}

/// An HTML response.
fn html(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

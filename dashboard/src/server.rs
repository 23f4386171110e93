//! The HTTP side: routes, the session check in front of every page, the CSRF and read-only
//! checks in front of every action, security headers, and one handler per page that gathers
//! its data and hands it to [`crate::view`].
//!
//! | route | what |
//! |---|---|
//! | `GET /login`, `POST /login`, `POST /logout` | exchange a token for a session cookie; end it |
//! | `GET /` | the overview; `GET /live/overview` its refreshed fragment |
//! | `GET /dead` | dead letters: filters (`lane`, `reason`, `older_than`, `newer_than`), pages (`otp`, `booking`, `reminder`, `bulk` offsets) |
//! | `GET /dead/{id}` | one dead letter, attempts and stored JSON (redacted) |
//! | `POST /actions/replay`, `POST /actions/purge`, `POST /actions/cancel` | preview, then with `confirm=yes` do |
//! | `GET /jobs?q=&by=` | find a job and show its timeline |
//! | `GET /guard`, `POST /actions/unblock` | the OTP guard's refusals and blocked prefixes; unblock one (`prefix`) |
//! | `GET /static/...`, `/healthz`, `/readyz`, `/metrics` | assets; as every Herald server |
//!
//! Without a valid session a page redirects to the login (303) and a fragment answers 401;
//! an action answers 403 without a valid session and CSRF token, and in read-only mode
//! always, and changes nothing. A Redis failure is a 503 page. Sessions live in Redis
//! ([`crate::session`]): logout ends one for every replica. Logins are throttled per client
//! address ([`crate::throttle`]): past ten failures in ten minutes, 429 with `Retry-After`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::{ConnectInfo, Form, FromRequestParts, Path, Query, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use herald_operator::dlq::{DeadLetters, PageCursor, PageQuery};
use herald_operator::find::{self, Lookup};
use herald_operator::status;
use herald_shared::config::parse_duration;
use herald_shared::redis_pool::Pool;
use herald_store::history;
use maud::Markup;
use tokio_util::sync::CancellationToken;

use crate::actions::{Action, ActionForm, FormError, Operations};
use crate::session::{self, Session, Sessions};
use crate::settings::Settings;
use crate::throttle::{self, LoginThrottle};
use crate::view::dead::DeadQuery;
use crate::view::jobs::JobQuery;
use crate::view::overview::Overview;
use crate::view::{self, Frame};

/// Dead letters per page.
pub const PAGE_SIZE: usize = 50;

/// What every handler shares; built once by [`serve`], one `Arc` per request.
struct App {
    settings: Settings,
    /// The dashboard's Redis connections (every page borrows one at a time).
    pool: Pool,
    sessions: Sessions,
    /// Failed logins per client address.
    throttle: LoginThrottle,
    dead: DeadLetters,
    /// Cancels jobs (the producer library's cancel).
    producer: producer::Producer,
}

/// Serves the dashboard on `listener` until `shutdown`. Each request knows its peer's
/// address (the login throttle counts by it).
pub async fn serve(
    listener: tokio::net::TcpListener,
    settings: Settings,
    pool: Pool,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(settings, pool).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Every route, for [`serve`] or a test. Serve it with `ConnectInfo<SocketAddr>`
/// (`into_make_service_with_connect_info`, as [`serve`] does): the login reads the peer's
/// address.
pub fn router(settings: Settings, pool: Pool) -> Router {
    let app = Arc::new(App {
        sessions: Sessions::new(&settings, pool.clone()),
        throttle: LoginThrottle::new(pool.clone(), settings.keys.clone()),
        dead: DeadLetters::new(pool.clone(), settings.keys.clone()),
        producer: producer::Producer::new(pool.clone(), settings.keys.clone()),
        pool: pool.clone(),
        settings,
    });
    Router::new()
        .route("/", get(overview))
        .route("/live/overview", get(overview_fragment))
        .route("/dead", get(dead_list))
        .route("/dead/{id}", get(dead_letter))
        .route("/actions/replay", post(replay))
        .route("/actions/purge", post(purge))
        .route("/actions/cancel", post(cancel))
        .route("/jobs", get(jobs))
        .route("/guard", get(guard_page))
        .route("/actions/unblock", post(unblock))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/static/style.css", get(style))
        .route("/static/live.js", get(script))
        .with_state(app)
        .merge(herald_shared::ops::routes(pool))
        .layer(middleware::from_fn(security_headers))
}

/// Headers on every answer: a strict Content-Security-Policy (own scripts and styles only,
/// no framing), no sniffing, no referrer, no caching of pages that show the queue.
async fn security_headers(request: Request<axum::body::Body>, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A page's answer: the markup with a status.
fn html(status: StatusCode, markup: Markup) -> Response {
    (status, markup).into_response()
}

impl App {
    /// The request's session, if its cookie holds a live one (which is then marked used).
    async fn session(&self, headers: &HeaderMap) -> Result<Option<Session>, session::SessionError> {
        let cookies = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let Some(value) = session::cookie_from(cookies) else {
            return Ok(None);
        };
        self.sessions.check(value, SystemTime::now()).await
    }

    fn frame(&self, session: Option<&Session>) -> Frame {
        Frame {
            csrf: session.map(Session::csrf),
            read_only: self.settings.read_only,
            namespace: self.settings.namespace.clone(),
        }
    }

    /// A 503 page for a Redis failure (logged: a refused command shows here first).
    fn unavailable(&self, session: Option<&Session>, err: impl std::fmt::Display) -> Response {
        tracing::warn!(error = %err, "a dashboard page could not read Redis: answered 503");
        html(
            StatusCode::SERVICE_UNAVAILABLE,
            view::message(
                &self.frame(session),
                "Redis is not answering",
                &format!("{err}. The page will work again once Redis answers."),
            ),
        )
    }

    /// A 403 page saying why.
    fn forbidden(&self, why: &str) -> Response {
        html(
            StatusCode::FORBIDDEN,
            view::message(&self.frame(None), "Forbidden", why),
        )
    }

    /// The session of an action's request when its CSRF token is right and actions are
    /// allowed; otherwise the answer: 403 saying why, or 503 when Redis cannot say.
    async fn authorize_action(
        &self,
        headers: &HeaderMap,
        form: &ActionForm,
    ) -> Result<Session, Response> {
        let session = match self.session(headers).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(self.forbidden("Log in first: this action needs a session.")),
            Err(err) => return Err(self.unavailable(None, err)),
        };
        if !session.csrf_ok(form.csrf.as_deref()) {
            return Err(self.forbidden(
                "The form's CSRF token is missing or wrong: nothing was changed. Reload the page and try again.",
            ));
        }
        if self.settings.read_only {
            return Err(self.forbidden(
                "This dashboard is read-only (--read-only): it shows everything and changes nothing.",
            ));
        }
        Ok(session)
    }

    async fn overview(&self) -> Result<Overview, herald_shared::redis_pool::RedisFailure> {
        let status = status::collect(&self.pool, &self.settings.keys).await?;
        let mut conn = self.pool.get().await?;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let charts = history::read(&mut conn, &self.settings.keys, now).await?;
        Ok(Overview {
            status,
            charts,
            rate: self.settings.rate,
        })
    }
}

/// Redirects to the login page (pages without a session).
fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// A page's session. Without one, extracting it answers the redirect to the login; when
/// Redis cannot say, a 503 page.
struct PageSession(Session);

impl FromRequestParts<Arc<App>> for PageSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        match app.session(&parts.headers).await {
            Ok(Some(session)) => Ok(PageSession(session)),
            Ok(None) => Err(to_login()),
            Err(err) => Err(app.unavailable(None, err)),
        }
    }
}

async fn overview(State(app): State<Arc<App>>, PageSession(session): PageSession) -> Response {
    match app.overview().await {
        Ok(data) => html(
            StatusCode::OK,
            view::overview::page(&app.frame(Some(&session)), &data),
        ),
        Err(err) => app.unavailable(Some(&session), err),
    }
}

async fn overview_fragment(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    match app.session(&headers).await {
        Ok(Some(_)) => {}
        Ok(None) => return (StatusCode::UNAUTHORIZED, "log in again\n").into_response(),
        Err(err) => return (StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response(),
    }
    match app.overview().await {
        Ok(data) => html(StatusCode::OK, view::overview::live(&data)),
        Err(err) => (StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response(),
    }
}

async fn dead_list(
    State(app): State<Arc<App>>,
    PageSession(session): PageSession,
    Query(query): Query<DeadQuery>,
) -> Response {
    let frame = app.frame(Some(&session));
    let page_query = match page_query(&query) {
        Ok(q) => q,
        Err(err) => {
            return html(
                StatusCode::BAD_REQUEST,
                view::message(&frame, "Bad filter", &err.to_string()),
            );
        }
    };
    match app.dead.page(&page_query).await {
        Ok(page) => html(StatusCode::OK, view::dead::list(&frame, &query, &page)),
        Err(err) => app.unavailable(Some(&session), err),
    }
}

/// The list's query string as a [`PageQuery`]; a bad value is named.
fn page_query(query: &DeadQuery) -> Result<PageQuery, FormError> {
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let duration = |field: &'static str, v: &Option<String>| {
        text(v)
            .map(|v| parse_duration(&v))
            .transpose()
            .map_err(|reason| FormError { field, reason })
    };
    Ok(PageQuery {
        lane: text(&query.lane)
            .map(|l| l.parse())
            .transpose()
            .map_err(|reason| FormError {
                field: "lane",
                reason,
            })?,
        reason: text(&query.reason),
        older_than: duration("older_than", &query.older_than)?,
        newer_than: duration("newer_than", &query.newer_than)?,
        cursor: PageCursor {
            otp: query.otp.unwrap_or(0),
            booking: query.booking.unwrap_or(0),
            reminder: query.reminder.unwrap_or(0),
            bulk: query.bulk.unwrap_or(0),
        },
        size: PAGE_SIZE,
    })
}

async fn dead_letter(
    State(app): State<Arc<App>>,
    PageSession(session): PageSession,
    Path(id): Path<String>,
) -> Response {
    let frame = app.frame(Some(&session));
    match app.dead.get(&id).await {
        Ok(Some(letter)) => html(StatusCode::OK, view::dead::letter(&frame, &letter)),
        Ok(None) => html(
            StatusCode::NOT_FOUND,
            view::message(
                &frame,
                "Not found",
                &format!("No dead letter has id {id:?}: replayed, purged, or never dead."),
            ),
        ),
        Err(err) => app.unavailable(Some(&session), err),
    }
}

async fn replay(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    act(&app, &headers, form, "/actions/replay", Action::replay).await
}

async fn purge(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    act(&app, &headers, form, "/actions/purge", Action::purge).await
}

async fn cancel(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    act(&app, &headers, form, "/actions/cancel", Action::cancel).await
}

/// Both steps of an action: checked (session, CSRF, read-only), parsed, previewed or done.
async fn act(
    app: &App,
    headers: &HeaderMap,
    form: ActionForm,
    path: &str,
    parse: fn(&ActionForm) -> Result<Action, FormError>,
) -> Response {
    let session = match app.authorize_action(headers, &form).await {
        Ok(session) => session,
        Err(answer) => return answer,
    };
    let frame = app.frame(Some(&session));
    let action = match parse(&form) {
        Ok(action) => action,
        Err(err) => {
            return html(
                StatusCode::BAD_REQUEST,
                view::message(&frame, "Bad request", &err.to_string()),
            );
        }
    };
    let confirmed = form.confirm.as_deref() == Some("yes");
    let ops = Operations {
        dead: &app.dead,
        producer: &app.producer,
    };
    match action.run(&ops, confirmed).await {
        Ok(outcome) => {
            if confirmed {
                tracing::info!(action = %action.describe(), "dashboard action done");
            }
            html(
                StatusCode::OK,
                view::dead::action(&frame, &action.describe(), path, &form, &outcome),
            )
        }
        Err(err) => app.unavailable(Some(&session), err),
    }
}

async fn jobs(
    State(app): State<Arc<App>>,
    PageSession(session): PageSession,
    Query(query): Query<JobQuery>,
) -> Response {
    let frame = app.frame(Some(&session));
    let text = query.q.as_deref().map(str::trim).unwrap_or_default();
    if text.is_empty() {
        return html(StatusCode::OK, view::jobs::search(&frame, &query, None));
    }
    let by = match query.by.as_deref().filter(|b| !b.is_empty()) {
        None => None,
        Some(by) => match by.parse::<Lookup>() {
            Ok(by) => Some(by),
            Err(reason) => {
                return html(
                    StatusCode::BAD_REQUEST,
                    view::message(&frame, "Bad request", &format!("by: {reason}")),
                );
            }
        },
    };
    match find::find(&app.pool, &app.settings.keys, by, text).await {
        Ok(found) => html(
            StatusCode::OK,
            view::jobs::search(&frame, &query, Some(&found)),
        ),
        Err(err) => app.unavailable(Some(&session), err),
    }
}

async fn guard_page(State(app): State<Arc<App>>, PageSession(session): PageSession) -> Response {
    match herald_operator::guard::list(&app.pool, &app.settings.keys).await {
        Ok(status) => html(
            StatusCode::OK,
            view::guard::page(&app.frame(Some(&session)), &status),
        ),
        Err(err) => app.unavailable(Some(&session), err),
    }
}

/// Unblocks the form's `prefix` (checked like every action: session, CSRF, read-only).
async fn unblock(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    let session = match app.authorize_action(&headers, &form).await {
        Ok(session) => session,
        Err(answer) => return answer,
    };
    let frame = app.frame(Some(&session));
    let prefix = form.prefix.as_deref().unwrap_or_default();
    let prefix = match herald_operator::guard::parse_prefix(prefix) {
        Ok(prefix) => prefix,
        Err(reason) => {
            return html(
                StatusCode::BAD_REQUEST,
                view::message(&frame, "Bad request", &reason),
            );
        }
    };
    match herald_operator::guard::unblock(&app.pool, &app.settings.keys, &prefix).await {
        Ok(reply) => {
            let was_blocked = reply == herald_store::calls::guard::UnblockReply::Unblocked;
            tracing::info!(%prefix, was_blocked, "dashboard unblocked an OTP guard prefix");
            html(
                StatusCode::OK,
                view::guard::unblocked(&frame, &prefix, was_blocked),
            )
        }
        Err(err) => app.unavailable(Some(&session), err),
    }
}

async fn login_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Ok(Some(_)) = app.session(&headers).await {
        return Redirect::to("/").into_response();
    }
    html(StatusCode::OK, view::jobs::login(&app.frame(None), None))
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: Option<String>,
}

/// A login: refused at once (429) from an address with too many recent failures, else the
/// token checked (a failure counted), else a session begun.
async fn login(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let client = peer.ip().to_canonical();
    match app.throttle.blocked(client).await {
        Ok(None) => {}
        Ok(Some(wait)) => {
            tracing::warn!(%client, "dashboard login refused: too many failed logins from this address");
            return too_many_failures(&app, wait);
        }
        Err(err) => return app.unavailable(None, err),
    }
    let token = form.token.unwrap_or_default();
    let Some(digest) = app.settings.tokens.find(token.trim()) else {
        if let Err(err) = app.throttle.failed(client).await {
            return app.unavailable(None, err);
        }
        tracing::info!(%client, "dashboard login refused");
        return html(
            StatusCode::UNAUTHORIZED,
            view::jobs::login(
                &app.frame(None),
                Some("That token is not one of HERALD_DASHBOARD_TOKENS."),
            ),
        );
    };
    let session = match app.sessions.start(&digest, SystemTime::now()).await {
        Ok(session) => session,
        Err(err) => return app.unavailable(None, err),
    };
    let cookie = session::set_cookie(
        Some(&session),
        app.sessions.ttl(),
        secure(&app.settings, &headers),
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// 429: the login page saying how long to wait, with `Retry-After`.
fn too_many_failures(app: &App, wait: std::time::Duration) -> Response {
    let seconds = throttle::retry_after(wait);
    let text = format!(
        "Too many failed logins from this address: try again in {} minute(s).",
        seconds.div_ceil(60)
    );
    let mut response = html(
        StatusCode::TOO_MANY_REQUESTS,
        view::jobs::login(&app.frame(None), Some(&text)),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// Ends the session for every replica (its record in Redis is deleted), then clears the
/// cookie.
async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    let session = match app.session(&headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return to_login(),
        Err(err) => return app.unavailable(None, err),
    };
    if !session.csrf_ok(form.csrf.as_deref()) {
        return app.forbidden("The form's CSRF token is missing or wrong.");
    }
    if let Err(err) = app.sessions.end(&session).await {
        return app.unavailable(Some(&session), err);
    }
    tracing::info!("dashboard logout");
    let cookie = session::set_cookie(None, app.sessions.ttl(), secure(&app.settings, &headers));
    let mut response = Redirect::to("/login").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Secure cookies when configured, or when the TLS-terminating proxy says the request
/// came over HTTPS.
fn secure(settings: &Settings, headers: &HeaderMap) -> bool {
    settings.secure_cookie
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

async fn style() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../static/style.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../static/live.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

//! The web pages: the player page (`/`, `/activity/{activityId}`) and the operator
//! console (`/admin`).
//!
//! They are static files under `crates/http/assets`, written by hand (HTML, CSS and
//! JavaScript modules, no build step) and compiled into the binary. They call the same
//! public JSON API as any other client; nothing here is private to them. Each file is
//! compressed once (gzip) on first use and served with a strong `ETag` (per encoding)
//! and `Cache-Control: no-cache`, so a browser revalidates and gets `304` while nothing
//! changed. The pages are not API operations, so they are not in the OpenAPI document.

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::sync::LazyLock;

/// A file compiled into the binary: its name under `/assets/`, media type and bytes.
struct Asset {
    name: &'static str,
    mime: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $mime:expr) => {
        Asset {
            name: $name,
            mime: $mime,
            bytes: include_bytes!(concat!("../assets/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("admin.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("api.js", JS),
    asset!("i18n.js", JS),
    asset!("chart.js", JS),
    asset!("player.js", JS),
    asset!("admin.js", JS),
    asset!("favicon.svg", "image/svg+xml"),
];

/// A file ready to serve: plain and gzip bytes with their entity tags.
struct Prepared {
    mime: &'static str,
    plain: &'static [u8],
    gzip: Vec<u8>,
    etag: String,
    etag_gzip: String,
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3),
        flate2::Compression::best(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

static PREPARED: LazyLock<HashMap<&'static str, Prepared>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let digest = Sha256::digest(a.bytes);
            let hex: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
            (
                a.name,
                Prepared {
                    mime: a.mime,
                    plain: a.bytes,
                    gzip: gzip(a.bytes),
                    etag: format!("\"{hex}\""),
                    etag_gzip: format!("\"{hex}-gz\""),
                },
            )
        })
        .collect()
});

/// The page security policy: scripts, styles and requests of this origin only.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Whether `Accept-Encoding` allows gzip (`gzip;q=0` refuses it).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        })
}

/// Serves one prepared file, compressed when the client accepts it.
fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(file) = PREPARED.get(name) else {
        return (
            StatusCode::NOT_FOUND,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no file {name}"),
        )
            .into_response();
    };
    let zipped = accepts_gzip(headers);
    let etag = if zipped { &file.etag_gzip } else { &file.etag };
    let mut res = if matches(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if zipped {
        let mut r = Body::from(file.gzip.clone()).into_response();
        r.headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        Body::from(file.plain).into_response()
    };
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(file.mime));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(ETAG, v);
    }
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if file.mime.starts_with("text/html") {
        h.insert("content-security-policy", HeaderValue::from_static(CSP));
        // `?token=` must not leak to other sites through the Referer header.
        h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
        h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    }
    res
}

async fn player(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn player_of_activity(Path(_activity): Path<String>, headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn console(headers: HeaderMap) -> Response {
    serve("admin.html", &headers)
}

/// `/assets/{name}`: the stylesheet, scripts and icon (the HTML pages only at their own
/// paths, so there is one address per page).
async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    if name.ends_with(".html") {
        return serve("", &headers);
    }
    serve(&name, &headers)
}

async fn favicon(headers: HeaderMap) -> Response {
    serve("favicon.svg", &headers)
}

/// The page routes.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(player))
        .route("/activity/{activity_id}", get(player_of_activity))
        .route("/admin", get(console))
        .route("/assets/{name}", get(asset))
        .route("/favicon.ico", get(favicon))
}

/// Bytes of the player page's first load: its HTML and every file it loads at start,
/// as sent with gzip.
pub fn player_first_load_gzip_bytes() -> usize {
    [
        "index.html",
        "style.css",
        "api.js",
        "i18n.js",
        "player.js",
        "favicon.svg",
    ]
    .iter()
    .filter_map(|n| PREPARED.get(n))
    .map(|f| f.gzip.len())
    .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn gzip_is_negotiated() {
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip, deflate, br"
        )])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br;q=1, GZIP;q=0.5"
        )])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "identity")])));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn every_asset_compresses_and_decompresses_to_itself() {
        use std::io::Read;
        for a in ASSETS {
            let p = &PREPARED[a.name];
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(p.gzip.as_slice())
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, a.bytes, "{}", a.name);
            assert_ne!(p.etag, p.etag_gzip);
        }
    }

    #[test]
    fn the_player_page_loads_under_100_kb() {
        let n = player_first_load_gzip_bytes();
        assert!(n > 1_000 && n < 100_000, "{n} bytes");
    }
}

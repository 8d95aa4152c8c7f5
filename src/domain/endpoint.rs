//! Which URLs may be reached over plain http: only this machine (the emulator, a local
//! S3 stand-in), unless the pipeline says otherwise. Shared by the API endpoint check
//! and the S3 endpoint check.

/// Whether `url` is a parseable `http://` URL to this machine, with no user info (so
/// `http://localhost:80@example.com` is not). Used to allow plain http only to loopback.
pub(crate) fn is_loopback_http(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| {
        u.scheme() == "http"
            && u.username().is_empty()
            && u.password().is_none()
            && url_is_loopback(&u)
    })
}

/// Whether the parsed URL's host is `localhost` or a loopback address (the whole
/// 127.0.0.0/8 and `::1`). The host is taken from the parsed URL, never from the text,
/// so user info or odd spellings (`127.1`, `0x7f.0.0.1`) cannot fool it.
pub(crate) fn url_is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    is_loopback(host)
}

/// Whether a host name or address is on this machine.
pub(crate) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

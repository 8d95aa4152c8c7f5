//! How an id is written as a Hive partition value (`app_id=<escaped>`): a property of
//! the dataset's layout that the config checks (an app id must fit a directory name)
//! and the sink applies.
//!
//! Partition values are escaped the way Hive writes them (`FileUtils.escapePathName`, copied
//! by Spark as `ExternalCatalogUtils.escapePathName`): each character of
//! `needs_escaping` becomes `%XX` with upper-case hex, everything else (including
//! non-ASCII letters and spaces) is kept. After escaping, a value holds no `/`, so it can
//! neither add a path level nor leave the root, and `..` cannot be a whole segment since the
//! segment always starts with `app_id=`.
//!
//! Two additions to Hive's set, both decoded back by Spark, DuckDB and pyarrow:
//!
//! - a leading `.` or `_` is written `%2E` / `%5F`, so no value starts a name that a
//!   reader or tool treats as hidden or private (`.hidden` becomes `app_id=%2Ehidden`);
//! - NUL is written `%00` (Hive leaves it raw; no file system or object store takes it).
//!
//! The encoding is deterministic, so the same app id always maps to the same directory.

/// Name of the app partition column.
pub const APP_COLUMN: &str = "app_id";

/// The directory segment `app_id=<escaped>`.
pub fn app_segment(app_id: &str) -> String {
    format!("{APP_COLUMN}={}", escape_value(app_id))
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Whether Hive and Spark escape `c` in a partition value (their non-Windows set):
/// 0x01-0x1F, `"`, `#`, `%`, `'`, `*`, `/`, `:`, `=`, `?`, `\`, 0x7F, `{`, `[`, `]`, `^`.
pub(crate) fn needs_escaping(c: char) -> bool {
    matches!(
        c,
        '\u{01}'
            ..='\u{1F}'
                | '"'
                | '#'
                | '%'
                | '\''
                | '*'
                | '/'
                | ':'
                | '='
                | '?'
                | '\\'
                | '\u{7F}'
                | '{'
                | '['
                | ']'
                | '^'
    )
}

/// Escapes one partition value (see the module docs for the rules).
pub(crate) fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for (i, c) in value.chars().enumerate() {
        let leading_hidden = i == 0 && (c == '.' || c == '_');
        if leading_hidden || c == '\0' || needs_escaping(c) {
            let b = c as u8; // all escaped characters are ASCII
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0x0F)] as char);
        } else {
            out.push(c);
        }
    }
    out
}

/// Reverses `escape_value` the way Spark's `unescapePathName` does: every `%` followed by
/// two hex digits becomes that byte's character; anything else is kept.
pub fn unescape_value(escaped: &str) -> String {
    let bytes = escaped.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
        {
            let code = (h << 4) | l;
            let mut buf = [0u8; 4];
            out.extend_from_slice(char::from(code).encode_utf8(&mut buf).as_bytes());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    // Only whole UTF-8 sequences and ASCII were copied or produced, so this never loses data.
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

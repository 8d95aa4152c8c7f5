//! `ProductType`: which SDK the measured clients run, a request field and a row column.

use std::fmt;

/// Which client platforms the data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProductType {
    /// Apps built on the native SDKs (mobile and desktop); the API's default.
    Native,
    /// Apps running in a browser, on the Web SDK.
    Web,
}

impl ProductType {
    /// The wire and column value.
    pub fn as_str(self) -> &'static str {
        match self {
            ProductType::Native => "native",
            ProductType::Web => "web",
        }
    }

    /// Parses the wire value; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "native" => Some(ProductType::Native),
            "web" => Some(ProductType::Web),
            _ => None,
        }
    }
}

impl fmt::Display for ProductType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

//! The Volcengine RTC OpenAPI as rtcq relies on it, as data: the wire types of each
//! action ([`realtime`] for `ListRealTimeQuality`, [`room_info`] for `ListRoomInfo`,
//! [`offline`] for `ListQuality`), request signing ([`sign`]), the error codes and what
//! each means for a caller ([`codes`]), and the documented limits ([`limits`]), each
//! stated once. It does no I/O: the job's client sends what it builds, and the emulator
//! answers with the same types. `docs/api.md` has the facts and their sources.

pub mod codes;
pub mod limits;
pub mod offline;
pub mod product;
pub mod realtime;
pub mod room_info;
pub mod sign;
pub mod time;

pub use codes::CodeClass;
pub use product::ProductType;
pub use realtime::*;
pub use sign::{Credentials, Secret};

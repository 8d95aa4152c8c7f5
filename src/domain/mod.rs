//! The words of docs/design.md as types, at the bottom of the crate: `config` builds them
//! from a pipeline file, `plan`, `sink`, `state` and `run` use them, and none of them
//! imports anything above.

pub(crate) mod endpoint;
pub mod escape;
pub(crate) mod name;
pub(crate) mod range;
pub(crate) mod target;

pub(crate) use name::PipelineName;
pub(crate) use range::{Gap, LostRange, TimeRange};
pub use target::{ProductType, Target};

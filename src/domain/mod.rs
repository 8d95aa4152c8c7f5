//! The words of DESIGN.md as types, at the bottom of the crate: `config` builds them
//! from a pipeline file, `plan`, `sink`, `state` and `run` use them, and none of them
//! imports anything above.

pub mod endpoint;
pub mod escape;
pub mod name;
pub mod range;
pub mod target;

pub use name::PipelineName;
pub use range::{Gap, LostRange, TimeRange};
pub use target::{ProductType, Target};

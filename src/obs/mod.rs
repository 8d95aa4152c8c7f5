//! What a run shows: its log lines (`logs`), the progress bar on a terminal
//! (`progress`), the summary it ends with (`summary`: counts, lag, errors and the exit
//! code) and the same figures as Prometheus metrics (`metrics`).

pub mod logs;
pub mod metrics;
pub mod progress;
pub mod summary;

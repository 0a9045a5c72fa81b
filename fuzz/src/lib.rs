//! What the fuzz targets share: a thread with a tokio worker's stack, on which a stack
//! overflow is a reported crash, and the generator of deeply nested and long templates.

mod nesting;
mod worker;

pub use nesting::{Construct, MAX_DEPTH, Nesting};
pub use worker::{WORKER_STACK_BYTES, on_worker_stack, report_stack_overflows};

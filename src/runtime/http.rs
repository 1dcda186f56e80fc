//! Placeholder: being written (issue 6). Refuses every run until then.

use super::{Job, Outcome, Runtime, Unavailable};

#[derive(Debug)]
pub struct Http;

impl Runtime for Http {
    fn name(&self) -> &'static str {
        "http"
    }

    fn pull(&self, _job: &Job) -> Result<(), Unavailable> {
        Err(Unavailable("the http runtime is not built yet".into()))
    }

    fn run(&self, _job: &Job) -> Outcome {
        Outcome::failed("the http runtime is not built yet".into())
    }
}

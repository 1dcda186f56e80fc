//! Placeholder: being written (issue 6). Refuses every run until then.

use super::{Job, Outcome, Runtime, Unavailable};

#[derive(Debug)]
pub struct Docker;

impl Runtime for Docker {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn pull(&self, _job: &Job) -> Result<(), Unavailable> {
        Err(Unavailable("the docker runtime is not built yet".into()))
    }

    fn run(&self, _job: &Job) -> Outcome {
        Outcome::failed("the docker runtime is not built yet".into())
    }
}

# Sourced by tests/run.sh: starts a Docker engine of the suite's own and defines stop_docker.
# Placeholder until the docker runtime lands (issue 6).
stop_docker() { :; }

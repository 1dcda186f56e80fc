//! Reducer unit tests: events built in memory, no git.

//! Printing: JSON for `--json`, aligned tables for people, quiet on a closed pipe.

use std::io::Write;

use serde::Serialize;

use crate::error::Kind;
use crate::ops::Written;
use crate::{Error, Result};

/// Standard output that turns a closed pipe into a quiet exit.
pub struct Out {
    inner: Box<dyn Write>,
    /// Indent JSON for a person at a terminal; keep it compact for programs.
    pretty: bool,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Out")
    }
}

impl Out {
    pub fn stdout() -> Self {
        use std::io::IsTerminal;
        let pretty = std::io::stdout().is_terminal();
        Out { inner: Box::new(std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock())), pretty }
    }

    pub fn line(&mut self, text: impl AsRef<str>) -> Result<()> {
        let result = self.inner.write_all(text.as_ref().as_bytes()).and_then(|_| self.inner.write_all(b"\n"));
        result.map_err(io_error)
    }

    pub fn json(&mut self, value: &impl Serialize) -> Result<()> {
        let encoded =
            if self.pretty { serde_json::to_writer_pretty(&mut self.inner, value) } else { serde_json::to_writer(&mut self.inner, value) };
        encoded.map_err(|err| match err.io_error_kind() {
            Some(std::io::ErrorKind::BrokenPipe) => Error { kind: Kind::BrokenPipe, message: String::new(), hint: None },
            _ => Error::internal(format!("cannot encode JSON: {err}")),
        })?;
        self.line("")
    }

    /// Send what is buffered, before other output (progress lines) interleaves with it.
    pub fn flush(&mut self) -> Result<()> {
        self.inner.flush().map_err(io_error)
    }

    /// Columns padded to the widest cell; the last column is not padded.
    pub fn table(&mut self, rows: &[Vec<String>]) -> Result<()> {
        let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> =
            (0..columns).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)).collect();
        for row in rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                }
            }
            self.line(line.trim_end())?;
        }
        Ok(())
    }

    /// The answer of a command that wrote one event: the id (or a message), or the JSON object.
    pub fn written(&mut self, json: bool, id: &str, written: &Written, human: &str) -> Result<()> {
        if json {
            self.json(&serde_json::json!({ "id": id, "event": written.commit.to_string() }))
        } else {
            self.line(human)
        }
    }

    /// A mutation that found nothing to do.
    pub fn unchanged(&mut self, json: bool, id: &str) -> Result<()> {
        if json {
            self.json(&serde_json::json!({ "id": id, "event": null }))
        } else {
            self.line("Nothing changed.")
        }
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        let _ = self.inner.flush();
    }
}

fn io_error(err: std::io::Error) -> Error {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        Error { kind: Kind::BrokenPipe, message: String::new(), hint: None }
    } else {
        Error::internal(format!("cannot write output: {err}"))
    }
}

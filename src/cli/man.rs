//! `git clutch man`: the manual page, so that `git clutch --help` (which git turns into
//! `git help clutch`, that is `man git-clutch`) finds one.

use std::path::PathBuf;

use clap::CommandFactory as _;

use super::Out;
use crate::{Error, Result};

/// Print the manual page (roff), or install it where `man` finds it.
///
/// `git clutch --help` is answered by git, not by clutch: git looks for the manual page
/// `git-clutch(1)`. `git clutch man --install` writes it next to the binary, in
/// `BIN/../share/man/man1/git-clutch.1`, where man-db looks for the pages of every `bin`
/// directory on PATH (`~/.cargo/bin` gives `~/.cargo/share/man`). `git clutch -h` and
/// `git clutch help` always work without it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the page into DIR/man1/git-clutch.1 (DIR defaults to BIN/../share/man).
    #[arg(long)]
    pub install: bool,
    /// The man directory to install into (with --install).
    #[arg(long, value_name = "DIR", requires = "install")]
    pub dir: Option<PathBuf>,
}

pub fn run(args: &Args, out: &mut Out) -> Result<()> {
    let page = page();
    if !args.install {
        return out.line(page.trim_end_matches('\n'));
    }
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => default_dir()?,
    };
    let man1 = dir.join("man1");
    std::fs::create_dir_all(&man1).map_err(|err| {
        Error::user(format!("cannot create {}: {err}", man1.display())).hint("pass --dir DIR, a directory you may write to")
    })?;
    let path = man1.join("git-clutch.1");
    // Write beside, then rename: a reader never sees half a page.
    let partial = man1.join(".git-clutch.1.partial");
    std::fs::write(&partial, &page).and_then(|()| std::fs::rename(&partial, &path)).map_err(|err| {
        let _ = std::fs::remove_file(&partial);
        Error::user(format!("cannot write {}: {err}", path.display())).hint("pass --dir DIR, a directory you may write to")
    })?;
    out.line(format!("wrote {}", path.display()))?;
    out.line(format!("`git clutch --help` opens it when man searches {} (else add it to MANPATH)", dir.display()))
}

/// `BIN/../share/man` for the directory BIN on PATH through which `git git-clutch` finds this
/// binary — a symlink's directory, not its target's, since that is the one man-db maps — or,
/// when PATH does not lead here, the binary's own directory.
fn default_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|err| Error::user(format!("cannot tell where git-clutch is installed: {err}")))?;
    let real = exe.canonicalize().unwrap_or_else(|_| exe.clone());
    let via_path = crate::env::on_path("git-clutch").into_iter().find(|c| c.canonicalize().is_ok_and(|c| c == real));
    let binary = via_path.unwrap_or(exe);
    let binary = std::path::absolute(&binary).unwrap_or(binary);
    let prefix = binary.parent().and_then(std::path::Path::parent).ok_or_else(|| {
        Error::user(format!("git-clutch at {} has no parent directory to hold share/man", binary.display())).hint("pass --dir DIR")
    })?;
    Ok(prefix.join("share").join("man"))
}

/// The whole manual page: every command's long help, as `-h` would print it.
pub fn page() -> String {
    let mut cli = super::Cli::command();
    cli.build();
    let about = cli.get_about().map(|a| a.to_string()).unwrap_or_default();
    let mut page = String::new();
    page.push_str(&format!(".TH GIT-CLUTCH 1 \"\" \"git-clutch {}\" \"Git Manual\"\n", env!("CARGO_PKG_VERSION")));
    page.push_str(".SH NAME\n");
    page.push_str(&format!("git-clutch \\- {}\n", escape(&about)));
    page.push_str(".SH SYNOPSIS\n");
    page.push_str(".B git clutch\n[\\fB\\-\\-as\\fR \\fIAGENT\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]\n");
    page.push_str(".SH DESCRIPTION\n");
    page.push_str(&block(&cli.render_long_help().to_string()));
    page.push_str(".SH COMMANDS\n");
    for (name, help) in commands(&mut cli, "git clutch") {
        page.push_str(&format!(".SS \"{}\"\n", escape(&name)));
        page.push_str(&block(&help));
    }
    page.push_str(".SH SEE ALSO\n");
    page.push_str("\\fBgit\\fR(1), \\fBgit-verify-commit\\fR(1); the guides in the docs/ directory of clutch's source.\n");
    page
}

/// Every visible command below `cmd`, depth first, with its long help.
fn commands(cmd: &mut clap::Command, prefix: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for sub in cmd.get_subcommands_mut().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        let name = format!("{prefix} {}", sub.get_name());
        found.push((name.clone(), sub.render_long_help().to_string()));
        found.extend(commands(sub, &name));
    }
    found
}

/// Text kept as it is (no filling), safe for roff, long lines wrapped.
fn block(text: &str) -> String {
    let mut out = String::from(".nf\n");
    for line in text.lines() {
        for piece in wrap(line, WIDTH) {
            out.push_str(&escape(&piece));
            out.push('\n');
        }
    }
    out.push_str(".fi\n");
    out
}

/// The width of the page's text: man indents it by 7 more, which makes 78 columns.
const WIDTH: usize = 71;

/// `line` cut at spaces into pieces of at most `width` characters. Continuations line up
/// under the text of a `  name   description` row, else under the line's own indent.
fn wrap(line: &str, width: usize) -> Vec<String> {
    if line.chars().count() <= width {
        return vec![line.to_string()];
    }
    // Byte offsets (for slicing) of the indent and of the text after a row's gap.
    let indent = line.len() - line.trim_start().len();
    let hanging = line[indent..]
        .find("  ")
        .map(|gap| indent + gap + line[indent + gap..].len() - line[indent + gap..].trim_start().len())
        .filter(|h| line[..*h].chars().count() < width / 2)
        .unwrap_or(indent);
    let hanging_columns = line[..hanging].chars().count();
    // The row's head (indent, name and the gap after it) stays as it is.
    let mut pieces = Vec::new();
    let mut current = line[..hanging].to_string();
    let mut words = 0;
    for word in line[hanging..].split(' ').filter(|w| !w.is_empty()) {
        if words > 0 && current.chars().count() + 1 + word.chars().count() > width {
            pieces.push(std::mem::replace(&mut current, " ".repeat(hanging_columns)));
            words = 0;
        }
        if words > 0 {
            current.push(' ');
        }
        current.push_str(word);
        words += 1;
    }
    pieces.push(current);
    pieces
}

/// Backslashes and hyphens spelled for roff, typographic marks in ASCII or roff's names (groff
/// drops `…` in a C locale); a line that would read as a request is not one.
fn escape(line: &str) -> String {
    let escaped = line
        .replace('\\', "\\e")
        .replace('-', "\\-")
        .replace('…', "...")
        .replace('—', "\\(em")
        .replace('–', "\\(en")
        .replace(['‘', '’'], "'")
        .replace(['“', '”'], "\"")
        .replace('→', "\\(->");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_lines_wrap_under_their_text() {
        let row = format!("  work      {}", "word ".repeat(30));
        let pieces = super::wrap(row.trim_end(), 40);
        assert!(pieces.len() > 1);
        assert!(pieces.iter().all(|p| p.chars().count() <= 40), "{pieces:?}");
        assert!(pieces[0].starts_with("  work      word"), "the row's gap is kept: {pieces:?}");
        assert!(pieces[1..].iter().all(|p| p.starts_with("            word")), "{pieces:?}");
        assert_eq!(super::wrap("short", 40), vec!["short"]);
    }

    #[test]
    fn the_page_holds_every_command_and_no_stray_requests() {
        let page = super::page();
        for heading in
            [".SS \"git clutch init\"", ".SS \"git clutch agent add\"", ".SS \"git clutch secret set\"", ".SS \"git clutch man\""]
        {
            assert!(page.contains(heading), "{heading} is in the page");
        }
        assert!(!page.contains(".SS \"git clutch hook \"") && !page.contains(".SS \"git clutch hook\""), "hidden commands stay out");
        assert!(!page.contains(".SS \"git clutch hook pre"), "nor their subcommands");
        assert!(page.contains("\\-\\-as"), "options are spelled with roff hyphens");
        assert!(page.is_ascii(), "nothing groff drops in a C locale: {:?}", page.chars().find(|c| !c.is_ascii()));
        assert_eq!(super::escape("t-… — x"), "t\\-... \\(em x");
        // Inside the text blocks no line starts a roff request by accident.
        let mut in_block = false;
        for line in page.lines() {
            match line {
                ".nf" => in_block = true,
                ".fi" => in_block = false,
                _ if in_block => assert!(!line.starts_with('.') && !line.starts_with('\''), "a request in the text: {line}"),
                _ => {}
            }
        }
    }
}

//! `git clutch --help`: git answers it with `man git-clutch`, so clutch ships its manual page
//! (`git clutch man`), and these tests read it through git and the real `man`.

use std::path::Path;

use crate::common::{run, TestEnv, CLUTCH};

/// `git clutch --help` as a user types it, with `bin` first on PATH and `manpath` as MANPATH
/// (None: man-db derives it from PATH), the page printed rather than paged.
fn git_help(env: &TestEnv, bin: &Path, manpath: Option<&Path>) -> crate::common::CommandOutput {
    let mut cmd = env.command("git");
    cmd.args(["clutch", "--help"])
        .env("PATH", format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()))
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .env_remove("MANPATH");
    if let Some(manpath) = manpath {
        cmd.env("MANPATH", manpath);
    }
    run(cmd)
}

#[test]
fn git_clutch_help_opens_the_manual_page_once_installed() {
    let env = TestEnv::new();
    let bin = Path::new(CLUTCH).parent().expect("the binary's directory");
    let man = env.root.join("share").join("man");

    // Without the page, git finds nothing: that is what the page is for.
    let before = git_help(&env, bin, Some(&man));
    assert_ne!(before.status, 0, "{before}");
    assert!(before.stderr.contains("No manual entry for git-clutch"), "{before}");

    let out = env.clutch(["man", "--install", "--dir", man.to_str().expect("utf-8 path")]).success();
    let page = man.join("man1").join("git-clutch.1");
    assert!(out.stdout.contains(&format!("wrote {}", page.display())), "{out}");
    let text = std::fs::read_to_string(&page).expect("the page");
    assert_eq!(text.trim_end(), env.clutch(["man"]).success().stdout.trim_end(), "`man` prints what --install writes");

    let help = git_help(&env, bin, Some(&man));
    assert_eq!(help.status, 0, "{help}");
    for needle in ["git-clutch - Run an organization of AI agents in git", "git clutch agent add", "git clutch secret set", "--as AGENT"] {
        assert!(help.stdout.contains(needle), "the page shows {needle:?}:\n{}", help.stdout);
    }
}

#[test]
fn man_install_defaults_to_share_man_beside_the_binary_where_man_looks() {
    // `cargo install` puts git-clutch in ~/.cargo/bin; the page goes to ~/.cargo/share/man,
    // which man-db searches for a bin directory on PATH without any MANPATH.
    let env = TestEnv::new();
    let prefix = env.root.join("prefix");
    let bin = prefix.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    std::fs::copy(CLUTCH, bin.join("git-clutch")).expect("install git-clutch");
    let mut install = env.command(bin.join("git-clutch"));
    install.args(["man", "--install"]);
    let out = run(install);
    assert_eq!(out.status, 0, "{out}");
    assert!(prefix.join("share/man/man1/git-clutch.1").is_file(), "{out}");
    let help = git_help(&env, &bin, None);
    assert_eq!(help.status, 0, "{help}");
    assert!(help.stdout.contains("git clutch agent add"), "{}", help.stdout);
}

#[test]
fn man_install_through_a_symlink_on_path_goes_where_man_looks_for_that_path() {
    // `ln -s …/target/release/git-clutch ~/bin/`: man maps ~/bin to ~/share/man, not the
    // target's directory.
    let env = TestEnv::new();
    let prefix = env.root.join("real");
    std::fs::create_dir_all(prefix.join("bin")).expect("mkdir");
    std::fs::copy(CLUTCH, prefix.join("bin/git-clutch")).expect("install git-clutch");
    let home = env.root.join("home-prefix");
    std::fs::create_dir_all(home.join("bin")).expect("mkdir");
    std::os::unix::fs::symlink(prefix.join("bin/git-clutch"), home.join("bin/git-clutch")).expect("symlink");
    let mut install = env.command("git");
    install.args(["clutch", "man", "--install"]).env("PATH", format!("{}:/usr/local/bin:/usr/bin:/bin", home.join("bin").display()));
    let out = run(install);
    assert_eq!(out.status, 0, "{out}");
    assert!(home.join("share/man/man1/git-clutch.1").is_file(), "the page went beside the symlink: {out}");
    assert!(!prefix.join("share").exists(), "not beside the target: {out}");
    let help = git_help(&env, &home.join("bin"), None);
    assert_eq!(help.status, 0, "{help}");
    assert!(help.stdout.contains("git clutch agent add"), "{}", help.stdout);
}

#[test]
fn man_install_where_it_cannot_write_says_so_and_writes_nothing() {
    let env = TestEnv::new();
    let blocker = env.root.join("not-a-dir");
    std::fs::write(&blocker, "a file\n").expect("write");
    let out = env.clutch(["man", "--install", "--dir", blocker.to_str().expect("utf-8")]).code(1);
    assert!(out.error().starts_with(&format!("cannot create {}", blocker.join("man1").display())), "{out}");
    assert!(out.stderr.contains("hint: pass --dir DIR"), "{out}");
    assert_eq!(std::fs::read_to_string(&blocker).expect("read"), "a file\n", "the file is untouched");
    let usage = env.clutch(["man", "--dir", "/tmp"]);
    assert_eq!(usage.status, 2, "--dir needs --install: {usage}");
}

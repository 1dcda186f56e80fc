#!/usr/bin/env python3
"""The suite's leak check: no secret value of the tests may be seen anywhere it must not be.

    scan_secrets.py OUTPUT_LOG LEAK_REPORT

OUTPUT_LOG is everything `cargo test` printed (stdout and stderr of every test, failures
included). LEAK_REPORT is written by the test harness (tests/cli/common.rs, `impl Drop for
TestEnv`): before each test's world is deleted it searches every object of every repository in
it (the log with its transcripts and artifacts, task branches, dangling objects) and every file
clutch keeps (CLUTCH_HOME, .git/, the runs' .clutch/), and appends `clean <dir>` or
`leak <dir>: <where>`.

Every test secret is made by tests/cli/common.rs `test_secret(name)` and so begins with
SECRET_PREFIX; the scans look for that prefix, so they catch values nobody told them about.
Prints one `secret scan: N passed, N failed` line (two checks) and exits non-zero on a leak.
"""
import sys

SECRET_PREFIX = "clutch-test-secret-"


def scan_output(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        hits = [(n, line.rstrip()) for n, line in enumerate(f, 1) if SECRET_PREFIX in line]
    for n, line in hits[:20]:
        # The line itself would print the value again: say where it is, not what.
        print(f"{path}:{n}: a secret value reached the test output", file=sys.stderr)
    return not hits


def scan_worlds(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [line.rstrip("\n") for line in f if line.strip()]
    except FileNotFoundError:
        lines = []
    if not lines:
        print(f"{path}: no test reported a scan of its repositories (is CLUTCH_TEST_SCAN_REPORT passed to cargo test?)",
              file=sys.stderr)
        return False
    leaks = [line for line in lines if not line.startswith("clean ")]
    for line in leaks[:20]:
        print(f"a secret value was kept where it must not be: {line}", file=sys.stderr)
    print(f"scanned the repositories and clutch homes of {len(lines)} test worlds")
    return not leaks


def main():
    if len(sys.argv) != 3:
        print("usage: scan_secrets.py OUTPUT_LOG LEAK_REPORT", file=sys.stderr)
        sys.exit(2)
    results = [scan_output(sys.argv[1]), scan_worlds(sys.argv[2])]
    passed = sum(results)
    print(f"secret scan: {passed} passed, {len(results) - passed} failed")
    sys.exit(0 if all(results) else 1)


main()

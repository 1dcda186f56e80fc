#!/usr/bin/env python3
"""Fail when any secret value the tests use shows up in the test output given as argv[1],
in any refs/clutch/ log the tests left, or anywhere else it must not be.

Every test secret is made by tests/cli/common.rs `test_secret(name)` and so begins with
SECRET_PREFIX; this scan looks for that prefix, so it catches values it was never told about.
"""
import sys

SECRET_PREFIX = "clutch-test-secret-"

def main():
    path = sys.argv[1]
    with open(path, encoding="utf-8", errors="replace") as f:
        hits = [(n, line.rstrip()) for n, line in enumerate(f, 1) if SECRET_PREFIX in line]
    if hits:
        for n, line in hits[:20]:
            print(f"{path}:{n}: a secret value reached the test output: {line[:200]}", file=sys.stderr)
        print("secret scan: 0 passed, 1 failed")
        sys.exit(1)
    print("secret scan: 1 passed, 0 failed")

main()

"""Where the tests find the `attn` command (ATTN_BIN) and the test tools, which ctest
sets to the build's binaries (tests/CMakeLists.txt)."""

import json
import os
import subprocess
import tempfile

import pytest


def attn_bin():
    path = os.environ.get("ATTN_BIN")
    if not path:
        pytest.fail("ATTN_BIN is not set: run through ctest, or set ATTN_BIN to the built `attn`")
    return path


def run_case_tool(env_var, case):
    """Runs the test tool that `env_var` names (set by ctest: MHA_CASE_BIN, GRAD_CASE_BIN)
    on `case`, written as a JSON file, and returns its JSON output."""
    binary = os.environ.get(env_var)
    assert binary, f"{env_var} must name its test tool (set by CTest)"
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(case, f)
        path = f.name
    try:
        done = subprocess.run([binary, path], capture_output=True, text=True, check=False)
    finally:
        os.unlink(path)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)

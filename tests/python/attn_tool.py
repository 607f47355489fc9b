"""Where the tests find the `attn` command: ATTN_BIN, which ctest sets to the build's
binary (tests/CMakeLists.txt)."""

import os

import pytest


def attn_bin():
    path = os.environ.get("ATTN_BIN")
    if not path:
        pytest.fail("ATTN_BIN is not set: run through ctest, or set ATTN_BIN to the built `attn`")
    return path

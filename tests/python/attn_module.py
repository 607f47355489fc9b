"""The Python module under test. CTest puts the build's python/ folder on
PYTHONPATH and says whether the build has the module (ATTN_BUILD_PYTHON); a
build without it skips the module's tests, and a build with it must import it."""

import os

import pytest

if os.environ.get("ATTN_BUILD_PYTHON", "ON").upper() in ("OFF", "0", "FALSE", "NO"):
    pytest.skip("built with ATTN_BUILD_PYTHON=OFF: no Python module to test", allow_module_level=True)

import attn  # noqa: E402  (after the skip)

__all__ = ["attn"]

"""Shared pytest configuration for the luigi_node tests.

The tests import luigi_node as installed (pip install .), never from the
source tree: test_package.py checks that.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

import luigi_node

settings.register_profile("luigi", deadline=None, print_blob=True)
settings.register_profile("thorough", deadline=None, print_blob=True, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "luigi"))


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"luigi_node {luigi_node.__version__} from {os.path.dirname(luigi_node.__file__)}; "
        f"libluigi {luigi_node._luigi.LIBRARY_VERSION}"
    )

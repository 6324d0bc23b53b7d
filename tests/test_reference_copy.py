"""The vendored reference files equal the workspace's shared originals (when those are present)."""

import pytest

from conftest import REFERENCE, SHARED_REFERENCE


@pytest.mark.skipif(not SHARED_REFERENCE.is_dir(), reason="../shared/reference not present in this checkout")
def test_vendored_reference_matches_shared():
    for original in SHARED_REFERENCE.iterdir():
        assert (REFERENCE / original.name).read_bytes() == original.read_bytes(), original.name

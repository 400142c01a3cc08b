import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stubfields import ensure_state_fields, register_test_fields

SHARED = Path(os.environ.get("FALCONET_SHARED", Path(__file__).resolve().parents[3] / "shared"))
OFFICIAL = SHARED / "testdata" / "falco-rules"
STABLE = OFFICIAL / "falco_rules.yaml"
INCUBATING = OFFICIAL / "falco-incubating_rules.yaml"
SANDBOX = OFFICIAL / "falco-sandbox_rules.yaml"
REPO = Path(__file__).resolve().parents[2]

STUBBED = ensure_state_fields()
register_test_fields()


@pytest.fixture
def official():
    if not STABLE.exists():
        pytest.skip(f"official rules not found under {OFFICIAL} (set FALCONET_SHARED)")
    return [str(STABLE), str(INCUBATING), str(SANDBOX)]

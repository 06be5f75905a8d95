"""Where the benchmarks read collections and keep caches unless the environment says otherwise.

Imported before anything from ``lateint``: ``ir_datasets`` binds its home directory when it is
first imported, so these variables must be in place by then.
"""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TMP_ROOT = REPO / "benchmarks" / "results" / "tmp"

# so that a benchmark runs from a checkout without the package installed
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("LATEINT_DATA", str(REPO.parent / "shared" / "irdata"))
os.environ.setdefault("LATEINT_CACHE", str(TMP_ROOT / "lateint-cache"))
os.environ.setdefault("IR_DATASETS_HOME", str(TMP_ROOT / "lateint-cache" / "ir_datasets"))

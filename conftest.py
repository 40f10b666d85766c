"""For every test and doctest (tests/, the library's docstrings, README.md): the real data sets, from $MADE_DATA_DIR
as CI and the Makefile set it, else from ../shared/data beside the checkout when there is one."""

import os
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"
if not os.environ.get("MADE_DATA_DIR") and SHARED_DATA.is_dir():
    os.environ["MADE_DATA_DIR"] = str(SHARED_DATA)

"""The committed page bundle (web/dist/app.js) is what web/src builds to.

    make web          # after editing web/src: rebuild and commit web/dist

`make dev` serves the committed bundle, so it needs no npm; this test rebuilds it from the
sources with the pinned esbuild (web/package-lock.json) and compares byte for byte.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO, require

pytestmark = pytest.mark.node

WEB = REPO / "web"


def test_the_committed_bundle_is_built_from_web_src(tmp_path: Path) -> None:
    require(
        shutil.which("node") is not None and (WEB / "node_modules" / "esbuild").is_dir(),
        "node or web/node_modules missing: run `make test-deps` (npm ci in web)",
    )
    subprocess.run(["node", "build.mjs", str(tmp_path)], cwd=WEB, check=True, timeout=120)
    rebuilt = (tmp_path / "app.js").read_bytes()
    committed = (WEB / "dist" / "app.js").read_bytes()
    assert rebuilt == committed, "web/dist/app.js is stale: run `make web` and commit web/dist"


def test_the_page_is_the_bundle_and_nothing_hand_parses_the_stream() -> None:
    page = (WEB / "index.html").read_text()
    assert '<script type="module" src="/dist/app.js">' in page
    leftovers = [p.name for p in WEB.glob("*.js")]
    assert leftovers == [], f"hand-written page modules left in web/: {leftovers}"

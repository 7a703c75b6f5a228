"""The vendored front-end assets are exactly the files the manifest names (version and SHA-256), with their licences,
and the console's pages load nothing from another origin."""

import hashlib
import json
import re
from pathlib import Path

import pytest

from gateway.console.pages import HERE

pytestmark = pytest.mark.unit

VENDOR = HERE / "static" / "vendor"


def test_every_vendored_file_matches_its_manifest_hash():
    manifest = json.loads((VENDOR / "MANIFEST.json").read_text())
    named = set()
    for asset in manifest["assets"]:
        content = (VENDOR / asset["file"]).read_bytes()
        assert hashlib.sha256(content).hexdigest() == asset["sha256"], asset["file"]
        assert (VENDOR / asset["license_file"]).read_text().strip(), asset["license_file"]
        assert re.fullmatch(r"\d+\.\d+\.\d+", asset["version"])
        named |= {asset["file"], asset["license_file"], asset.get("notice_file")}
    assert {p.name for p in VENDOR.iterdir()} == (named - {None}) | {"MANIFEST.json"}


def test_a_changed_file_fails_the_check(tmp_path: Path):
    manifest = json.loads((VENDOR / "MANIFEST.json").read_text())
    asset = manifest["assets"][0]
    tampered = (VENDOR / asset["file"]).read_bytes() + b"\n// injected"
    assert hashlib.sha256(tampered).hexdigest() != asset["sha256"]


def test_templates_and_scripts_load_nothing_from_another_origin():
    for path in [*(HERE / "templates").glob("*.html"), HERE / "static" / "console.css", HERE / "static" / "console.js"]:
        text = path.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), path
        assert "@import" not in text and "url(http" not in text, path
        # no inline script: the CSP (services/kernel/web.py) admits the console's own script files only
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path

"""``sifund docs screenshots``' browser half (``sifund.screenshots.shoot``) against the browser suite's platform: each
screen is written as a 1366×768 PNG, and Chromium is given a Chinese face (a server without one draws every label as
a box, which no assertion on the page's text would notice)."""

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from sifund.screenshots import Throwaway, cjk_fontconfig, shoot


def test_each_screen_is_written_at_1366_by_768(platform, tmp_path: Path):
    # In a thread of its own: the suite's Playwright (sync API) is running in this one, and a second sync_playwright()
    # refuses to start beside it, as the command's own would not (it is alone in its process).
    with ThreadPoolExecutor(1) as thread:
        written = thread.submit(shoot, Throwaway(platform.running.data_dir, platform.url, {}), tmp_path / "shots",
                                os.environ.get("SIFUND_CHROMIUM", "/usr/bin/chromium"), say=lambda line: None).result()
    names = {p.stem for p in written}
    assert {"disclosure", "dashboard", "reconciliation", "reconciliation-cell", "cases"} <= names, names
    assert "claims" in names
    for png in written:
        with Image.open(png) as image:
            assert image.size == (1366, 768), png
            assert len(image.getcolors(256) or []) > 8, f"{png} is nearly blank"


@pytest.mark.skipif(shutil.which("fc-match") is None, reason="fontconfig's fc-match is not installed")
def test_chromium_is_given_a_chinese_face(tmp_path: Path):
    environment = cjk_fontconfig(tmp_path)
    found = subprocess.run(["fc-match", "-f", "%{family}", ":lang=zh-cn"], env=environment, capture_output=True,
                           text=True, timeout=60)
    assert found.returncode == 0 and "Noto" in found.stdout and "SC" in found.stdout, found.stdout

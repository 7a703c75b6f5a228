"""``sifund docs screenshots``: the console's main screens as PNGs (1366×768) in ``docs/screenshots/``, taken from a
living platform: ``sifund up`` on a throwaway data directory and port range, ``sifund demo``, ``sifund demo city``,
then Debian's Chromium driven by Playwright (the browser suite's launch flags) logging in as the role of each screen.

Playwright is a development dependency (``pip install -e .[dev]``) and Chromium is the distribution's
(``infra/browser/run-tests.sh`` installs it with apt if missing; ``SIFUND_CHROMIUM`` names another binary)."""

import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from sifund.demo_city import Options, fill_city
from sifund.demo_city.district import Calendar
from sifund.demo_city.party import read_credentials
from sifund.launcher import port_span

VIEWPORT = {"width": 1366, "height": 768}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
STARTUP_SECONDS = 180
READY = "Press Ctrl-C to stop."


class ScreenshotError(Exception):
    pass


def _sifund() -> list[str]:
    script = Path(sys.executable).parent / "sifund"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sifund.cli"]


@dataclass
class Throwaway:
    data_dir: Path
    gateway: str
    environment: dict[str, str]


@contextmanager
def throwaway_platform(port_base: int, say: Callable[[str], None]) -> Iterator[Throwaway]:
    """``sifund up`` on a fresh data directory (the embedded SQLite, whatever SIFUND_* the caller has), stopped and
    removed at the end."""
    with tempfile.TemporaryDirectory(prefix="sifund-screenshots-") as tmp:
        data_dir = Path(tmp) / "var"
        environment = {**{k: v for k, v in os.environ.items() if not k.startswith("SIFUND_")},
                       "SIFUND_DATA_DIR": str(data_dir), "SIFUND_PORT_BASE": str(port_base)}
        process = subprocess.Popen([*_sifund(), "up", "--timeout", str(STARTUP_SECONDS)], cwd=tmp, env=environment,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(line.rstrip() for line in process.stdout), daemon=True).start()
        try:
            deadline = time.monotonic() + STARTUP_SECONDS + 10
            while not any(READY in line for line in lines):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise ScreenshotError("sifund up did not start:\n" + "\n".join(lines[-30:]))
                time.sleep(0.5)
            say(f"sifund up: ready on port {port_base} (data in {data_dir})")
            yield Throwaway(data_dir, f"http://127.0.0.1:{port_base}", environment)
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def free_port_base() -> int:
    """A port base whose whole span is free now, below the ephemeral range."""
    span = port_span(1)
    for _ in range(200):
        base = random.randrange(20000, 32000 - span)
        try:
            for port in range(base, base + span + 1):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise ScreenshotError("no free port range for the throwaway platform")


def shrink(png: Path, colours: int = 128) -> None:
    """A palette of ``colours`` instead of 24-bit colour: about a third of the bytes, the text still crisp (the
    screenshots are committed). Pillow comes with fpdf2; without it the file stays as Chromium wrote it."""
    try:
        from PIL import Image  # noqa: PLC0415
    except ImportError:
        return
    with Image.open(png) as image:
        reduced = image.convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
    reduced.save(png, optimize=True)


def cjk_fontconfig(directory: Path) -> dict[str, str]:
    """The environment for Chromium to find a Chinese face: the console uses the system's fonts only, and a server
    without a CJK font would draw every label as a box. The Noto Sans/Serif SC faces come with the project
    (``pylopdf-fonts-zh-cn``, the documents' font); a fontconfig file adds their folder to the system's."""
    from services.kernel.documents.fonts import serif_font_path  # noqa: PLC0415

    config = directory / "fonts.conf"
    config.write_text(f"""<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>
  <dir>{serif_font_path().parent}</dir>
  <cachedir>{directory / "cache"}</cachedir>
</fontconfig>
""", encoding="utf-8")
    return {**os.environ, "FONTCONFIG_FILE": str(config)}


def _first(gateway: str, secrets: dict[str, str], role: str, path: str, params: dict,
           wanted: Callable[[dict], bool] = lambda item: True) -> str | None:
    """The id of the first item of an API listing that ``wanted`` accepts, read as ``demo_<role>``."""
    with httpx.Client(base_url=gateway, timeout=30, trust_env=False) as client:
        token = client.post("/auth/token", data={"username": f"demo_{role}",
                                                 "password": secrets[f"demo_{role}"]}).json()["access_token"]
        response = client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
    items = response.json().get("items", []) if response.status_code == 200 else []
    return next((item["id"] for item in items if wanted(item)), None)


def shoot(platform: Throwaway, output: Path, chromium: str, say: Callable[[str], None]) -> list[Path]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - a development dependency

    secrets = read_credentials(platform.data_dir / "demo-credentials.txt")
    last = Calendar.of_today().periods[-1]
    url = platform.gateway
    case_id = _first(url, secrets, "oversight_officer", "/api/oversight/cases", {"rule_id": "S01"})
    claim_id = _first(url, secrets, "agency_reviewer", "/api/benefits/claims", {"status": "in_review", "limit": 100},
                      lambda claim: claim["next_level"] == "first_review")
    output.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with sync_playwright() as driver, tempfile.TemporaryDirectory() as scratch:
        browser = driver.chromium.launch_persistent_context(
            Path(scratch) / "profile", executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
            viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai", env=cjk_fontconfig(Path(scratch)))
        page = browser.pages[0] if browser.pages else browser.new_page()
        page.set_default_timeout(60_000)

        def snap(name: str, path: str) -> None:
            page.goto(f"{url}{path}")
            page.wait_for_load_state("networkidle")
            if page.locator("canvas").count():  # ECharts draws with a short animation: let it end
                page.wait_for_timeout(1500)
            target = output / f"{name}.png"
            page.screenshot(path=str(target))
            shrink(target)
            written.append(target)
            say(f"  {target}  ← {path}")

        def log_in(role: str) -> None:
            page.context.clear_cookies()
            page.goto(f"{url}/console/login")
            page.get_by_label("用户名").fill(f"demo_{role}")
            page.get_by_label("密码").fill(secrets[f"demo_{role}"])
            page.get_by_role("button", name="登录").click()
            page.wait_for_load_state("networkidle")

        snap("disclosure", "/console/public/disclosure")
        log_in("oversight_officer")
        snap("dashboard", "/console/")
        snap("reconciliation", f"/console/oversight/reconciliation?end={last}&span=6")
        snap("reconciliation-cell", f"/console/oversight/reconciliation/{last}/UNEMP")
        snap("cases", "/console/oversight/cases")
        if case_id:
            snap("case", f"/console/oversight/cases/{case_id}")
        log_in("agency_reviewer")
        # the reviewer's queue, and a claim waiting at 初审 on its page
        snap("claims", page.locator('nav.menu a[data-screen="claims"]').first.get_attribute("href"))
        if claim_id:
            snap("claim-review", f"/console/agency/claims/{claim_id}")
        browser.close()
    return written


def take_screenshots(output: Path, *, persons: int, seed: int, port_base: int, chromium: str,
                     say: Callable[[str], None]) -> list[Path]:
    if not Path(chromium).exists():
        raise ScreenshotError(f"no Chromium at {chromium}: run through infra/browser/run-tests.sh (installs Debian's "
                              "chromium) or set SIFUND_CHROMIUM")
    with throwaway_platform(port_base, say) as platform:
        subprocess.run([*_sifund(), "demo"], env=platform.environment, check=True, capture_output=True)
        options = Options(gateway=platform.gateway, data_dir=platform.data_dir,
                          credentials=platform.data_dir / "demo-credentials.txt", persons=persons, seed=seed)
        for line in asyncio.run(fill_city(options, say)):
            say(line)
        return shoot(platform, output, chromium, say)

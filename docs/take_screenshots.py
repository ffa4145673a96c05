"""Screenshot every dashboard page of a running Vigil (for the README), in headless Debian chromium.

    .venv/bin/python docs/take_screenshots.py [--url http://127.0.0.1:8501] [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

PAGES = {"overview": "", "quality": "quality", "service": "service", "drift": "drift",
         "registry": "registry", "alerts": "alerts", "incident": "incidents",  # the newest incident
         "release": "release"}  # the running release, or the last ones ended
HEIGHT = 1600  # Streamlit scrolls inside its own container: the viewport is what the shot holds
TALLER = {"incident": 2700}  # timeline, evidence and the Slack thread
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8501")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "screenshots")
    args = parser.parse_args()
    if not Path(CHROMIUM).is_file():
        parser.exit(2, f"{CHROMIUM} is not installed: `make system-deps` installs Debian's chromium (as root)\n")
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for name, path in PAGES.items():
            page = browser.new_page(viewport={"width": 1400, "height": TALLER.get(name, HEIGHT)})
            page.goto(f"{args.url.rstrip('/')}/{path}", wait_until="networkidle")
            page.wait_for_selector("[data-testid='stAppViewContainer']", timeout=60_000)
            page.get_by_role("heading", level=1).first.wait_for(timeout=120_000)  # the page's script ran
            page.wait_for_function("document.querySelectorAll(\"[data-testid=stSkeleton]\").length === 0", timeout=60_000)
            page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden", timeout=120_000)
            page.wait_for_timeout(3_000)  # let the charts draw
            target = args.out / f"{name}.png"
            page.screenshot(path=str(target), full_page=True)
            print(f"saved {target}")
            page.close()
        browser.close()


if __name__ == "__main__":
    main()

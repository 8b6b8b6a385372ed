"""Build the course site from the executed notebooks (Jupyter Book 1), serve it, and take its screenshots.

    python scripts/site.py                  # build into build/site/ (make site); prints where the pages are
    python scripts/site.py --serve          # build, then serve it on http://127.0.0.1:8000 until Ctrl-C
    python scripts/site.py --screenshots    # build, then write docs/site-players.png and docs/site-math.png

Nothing is executed: the pages show the committed outputs (figures, the static ``<audio>`` copy of every player,
printed tables). The build is offline: the theme's assets come with its wheel and MathJax with
``django-static-mathjax`` (``docs/site/site_ext.py``). The contents are ``docs/site/_toc.yml``; the landing page
is the README. Warnings of the build fail it, so a broken link or a missing page is found here, not by a reader.
The screenshots need Chromium (``apt-get install chromium``) and Playwright (the ``site`` extra).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import shutil
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "docs" / "site"
OUTPUT = ROOT / "build" / "site"
#: Chromium's flags on a machine with no network and no screen: without the background-networking ones it keeps
#: trying to reach its update and sync services; a fresh --user-data-dir is given by Playwright
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: the two pages the README shows: one with players, one with math
SCREENSHOTS = {"site-players.png": ("notebooks/00_setup_and_sound.html", "audio"),
               "site-math.png": ("notebooks/03_nmf_listen_to_interpret.html", "div.math")}


def html_dir(output: Path = OUTPUT) -> Path:
    return output / "_build" / "html"


def build(output: Path = OUTPUT, quiet: bool = True) -> Path:
    """Build the site into ``output`` (from scratch) and return the folder of its HTML pages."""
    shutil.rmtree(output, ignore_errors=True)  # no page of an earlier build may survive into this one
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(ROOT), "--all", "-W", "--keep-going",
               "--config", str(CONFIG / "_config.yml"), "--toc", str(CONFIG / "_toc.yml"), "--path-output", str(output)]
    if shutil.which(command[0]) is None:
        raise SystemExit("jupyter-book is not installed: pip install -e '.[site]' (make site installs it)")
    result = subprocess.run(command, cwd=ROOT, capture_output=quiet, text=True)
    if result.returncode != 0:
        log = (result.stdout or "") + (result.stderr or "")
        warnings = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
        raise SystemExit("the site did not build:\n" + "\n".join(warnings[-40:] or log.splitlines()[-40:]))
    return html_dir(output)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test reads failed requests from the browser, not from this log
        pass


@contextlib.contextmanager
def serve(folder: Path, port: int = 0):
    """Serve ``folder`` on 127.0.0.1 (a free port by default) in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def chromium() -> str | None:
    """The Chromium to drive (Debian's package), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshots(folder: Path, out: Path = ROOT / "docs") -> list[Path]:
    """Screenshots of the two pages of :data:`SCREENSHOTS`, scrolled to their first player / first equation."""
    from playwright.sync_api import sync_playwright

    if chromium() is None:
        raise SystemExit("no Chromium to take screenshots with: apt-get install chromium")
    written = []
    with serve(folder) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        for name, (path, selector) in SCREENSHOTS.items():
            page.goto(base + path, wait_until="load")
            if "math" in selector:  # wait for MathJax to typeset before the picture
                page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise")
                page.evaluate("async () => await MathJax.startup.promise")
            page.locator(selector).first.scroll_into_view_if_needed()
            page.evaluate("window.scrollBy(0, -240)")
            page.screenshot(path=out / name)
            written.append(out / name)
        browser.close()
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", action="store_true", help="serve the built site on http://127.0.0.1:8000")
    parser.add_argument("--screenshots", action="store_true", help="write docs/site-players.png and docs/site-math.png")
    args = parser.parse_args(argv)
    folder = build(quiet=True)
    print(f"built {sum(1 for _ in folder.rglob('*.html'))} pages: {folder / 'index.html'}")
    if args.screenshots:
        for path in screenshots(folder):
            print(f"wrote {path.relative_to(ROOT)}")
    if args.serve:
        with serve(folder, 8000) as base:
            print(f"serving {base} (Ctrl-C to stop)")
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()


if __name__ == "__main__":
    main()

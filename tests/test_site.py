"""The course site, built from the committed notebooks and read in a real headless browser (Debian's Chromium,
driven by Playwright): what a reader without a kernel gets.

* the site builds offline with no warning (``scripts/site.py``: Jupyter Book, ``-W``);
* every page loads with no console error, no failed request and no request leaving the machine;
* every image is there and decoded (natural width > 0);
* every ``<audio>`` element has a source the browser decodes: after loading its metadata, its duration is known,
  finite and positive; each notebook page has as many as the notebook has static players;
* math is typeset by the site's own MathJax (nothing fetched from a CDN), with no TeX error;
* every internal link resolves to a page of the site, and its ``#anchor`` to an element of that page;
* the landing page is the README with its notebook map, and every exercise section links to its solutions page.

Skipped, saying why, where Chromium or Playwright is missing (``.ci/run`` installs Chromium; ``make install`` the
``site`` extra).
"""

from __future__ import annotations

import html.parser
import importlib.util
import re
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("site_script", ROOT / "scripts" / "site.py")
site = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(site)
# the static players are counted as tests/test_static_audio.py reads them from a saved notebook
_spec = importlib.util.spec_from_file_location("static_audio", ROOT / "tests" / "test_static_audio.py")
static_audio = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(static_audio)

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted(
    (ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    if importlib.util.find_spec("jupyter_book") is None:
        pytest.skip("jupyter-book is not installed: pip install -e '.[site]' (make install does)")
    return site.build(tmp_path_factory.mktemp("site"))


def pages(folder: Path) -> list[Path]:
    # Sphinx's own genindex and search pages are not course pages (search needs a query to show anything), and
    # index.html only redirects to the README's page (checked by itself)
    return sorted(p for p in folder.rglob("*.html") if p.relative_to(folder).as_posix() not in
                  ("genindex.html", "search.html", "index.html") and "_static" not in p.parts)


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])


def parsed(path: Path) -> _Ids:
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def static_players(notebook: Path) -> int:
    """How many ``<audio>`` copies the notebook's saved outputs hold (as tests/test_static_audio.py reads them)."""
    return sum(len(static_audio.AUDIO_TAG.findall(h)) for h in static_audio.static_html(nbformat.read(notebook, 4)))


def test_every_notebook_is_a_page_and_the_readme_is_the_landing_page(built):
    for notebook in NOTEBOOKS:
        page = built / notebook.relative_to(ROOT).with_suffix(".html")
        assert page.exists(), f"{notebook.relative_to(ROOT)} has no page in the site (docs/site/_toc.yml)"
    landing = (built / "index.html").read_text(encoding="utf-8")
    assert re.search(r'http-equiv="refresh" content="0; url=README.html"', landing, re.I), landing[:300]
    readme = (built / "README.html").read_text(encoding="utf-8")
    for notebook in NOTEBOOKS[:8]:
        assert notebook.stem + ".html" in readme, f"the landing page's notebook map does not link {notebook.name}"
    assert (built / "docs" / "instructor.html").exists(), "the instructor guide is not in the site"


def test_audio_players_keep_their_static_copies(built):
    for notebook in NOTEBOOKS:
        page = (built / notebook.relative_to(ROOT).with_suffix(".html")).read_text(encoding="utf-8")
        assert len(static_audio.AUDIO_TAG.findall(page)) == static_players(notebook), (
            f"{notebook.name}: {static_players(notebook)} static players in the notebook, "
            f"{len(static_audio.AUDIO_TAG.findall(page))} <audio> elements on its page")


def test_internal_links_resolve(built):
    broken = []
    ids = {}
    for page in pages(built):
        for href in parsed(page).links:
            url, anchor = urldefrag(href)
            if urlparse(href).scheme or href.startswith("//") or href.startswith("mailto:"):
                continue
            target = (page.parent / unquote(url)).resolve() if url else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(built)}: {href} (no such file)")
                continue
            if anchor and target.suffix == ".html":
                ids.setdefault(target, parsed(target).ids)
                if anchor not in ids[target]:
                    broken.append(f"{page.relative_to(built)}: {href} (no #{anchor} on {target.name})")
    assert broken == [], "broken internal links:\n" + "\n".join(broken)


def test_exercises_link_to_their_solutions(built):
    for notebook in NOTEBOOKS[:8]:
        page = built / notebook.relative_to(ROOT).with_suffix(".html")
        solution = f"solutions/{notebook.stem}_solutions.html"
        assert solution in page.read_text(encoding="utf-8"), f"{page.name}'s exercises do not link {solution}"


@pytest.fixture(scope="module")
def browser():
    if site.chromium() is None:
        pytest.skip("no Chromium here, so the site is not tried in a browser: apt-get install chromium "
                    "(.ci/run installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[site]' (make install does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=site.chromium(), args=site.CHROMIUM_ARGS)
        yield browser
        browser.close()


# every <audio> on the page: ask for its metadata (players are preload="none") and report what the browser decoded
AUDIO_CHECK = """async () => {
  const audios = Array.from(document.querySelectorAll('audio'));
  return await Promise.all(audios.map((a, i) => new Promise(resolve => {
    const done = (ok, why) => resolve({i, ok, why, duration: a.duration, src: (a.currentSrc || a.src || '').slice(0, 40)});
    if (!a.src && !a.querySelector('source')) return done(false, 'no source');
    a.addEventListener('loadedmetadata', () => done(isFinite(a.duration) && a.duration > 0, 'loaded'), {once: true});
    a.addEventListener('error', () => done(false, 'error ' + (a.error && a.error.code)), {once: true});
    setTimeout(() => done(false, 'timeout'), 20000);
    a.preload = 'metadata';
    a.load();
  })));
}"""

IMAGE_CHECK = """() => Array.from(document.images).filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src.slice(0, 80))"""

MATH_CHECK = """async () => {
  const math = document.querySelectorAll('.math').length;
  if (math && window.MathJax && MathJax.startup) await MathJax.startup.promise;
  return {math, typeset: document.querySelectorAll('mjx-container').length,
          errors: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
          mathjax: !!(window.MathJax && MathJax.startup)};
}"""


def test_every_page_in_a_browser(built, browser):
    with site.serve(built) as base:
        problems, checked = [], {"pages": 0, "audio": 0, "images": 0, "math pages": 0}
        context = browser.new_context()
        outside = []
        context.route("**/*", lambda route: (outside.append(route.request.url), route.abort())
                      if not route.request.url.startswith((base, "data:")) else route.continue_())
        for path in pages(built):
            page = context.new_page()
            errors, failed = [], []
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("requestfailed", lambda request: failed.append(request.url[:100]))
            name = path.relative_to(built).as_posix()
            page.goto(urljoin(base, name), wait_until="load")
            if page.evaluate("document.querySelectorAll('.math').length"):
                page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
                maths = page.evaluate(MATH_CHECK)
                checked["math pages"] += 1
                if maths["typeset"] == 0 or maths["errors"]:
                    problems.append(f"{name}: math {maths}")
            missing = page.evaluate(IMAGE_CHECK)
            problems += [f"{name}: image not loaded {src}" for src in missing]
            checked["images"] += page.evaluate("document.images.length")
            for audio in page.evaluate(AUDIO_CHECK):
                checked["audio"] += 1
                if not audio["ok"]:
                    problems.append(f"{name}: audio #{audio['i']} not decoded ({audio['why']}, {audio['src']}...)")
            problems += [f"{name}: console error: {e[:200]}" for e in errors]
            problems += [f"{name}: request failed: {u}" for u in failed if not u.startswith("data:")]
            checked["pages"] += 1
            page.close()
        context.close()
    problems += [f"a request left the machine: {u[:100]}" for u in outside]
    assert problems == [], f"{len(problems)} problems in {checked}:\n" + "\n".join(problems[:60])
    # every notebook, the README and the instructor guide; every static player of every notebook
    assert checked["pages"] == len(NOTEBOOKS) + 2, checked
    assert checked["audio"] == sum(static_players(n) for n in NOTEBOOKS), checked
    assert checked["math pages"] >= 8 and checked["images"] >= len(NOTEBOOKS), checked

"""Sphinx settings of the course site that its YAML cannot say: a site that needs nothing from another host.

A workshop room without Wi-Fi, and CI, reach no CDN, so every page must render from the site's own files:

* MathJax 3.2 is served from the site (from the ``django-static-mathjax`` wheel, which is only MathJax's files),
  instead of Sphinx's default CDN copy; its SVG output draws every glyph itself, so no web font is fetched;
* the "Open in Colab" badges point at the site's own SVG (``_static/colab-badge.svg``); the links still open Colab;
* sphinx-thebe, which Jupyter Book always loads, writes its configuration script twice on some pages (a console
  error: ``THEBE_JS_URL`` declared twice) and would fetch thebe from a CDN; the course has no live-code button, so
  its scripts are dropped.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def _mathjax_static() -> Path:
    try:
        import mathjax  # the django-static-mathjax wheel: MathJax's own files, no Django needed
    except ImportError as error:  # the `site` extra installs it
        raise RuntimeError("the course site needs MathJax for offline math: pip install -e '.[site]' "
                           "(make install does)") from error
    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def _configure(app, config) -> None:
    # a folder in html_static_path is copied with its contents into _static/: MathJax lands in _static/mathjax/
    mathjax = Path(app.outdir).parent / "mathjax-static"
    mathjax.mkdir(parents=True, exist_ok=True)
    if not (mathjax / "mathjax").exists():
        (mathjax / "mathjax").symlink_to(_mathjax_static(), target_is_directory=True)
    config.html_static_path = list(config.html_static_path) + [str(HERE / "_static"), str(mathjax)]
    config.mathjax_path = "mathjax/tex-svg.js"
    # the theme writes data-mode="{{ default_mode }}" before any choice is saved; empty, its script logs an error
    config.html_context = {**config.html_context, "default_mode": "auto"}


def _page(app, pagename, templatename, context, doctree) -> None:
    if "body" in context:
        context["body"] = context["body"].replace(BADGE, context["pathto"]("_static/colab-badge.svg", 1))
    scripts = context.get("script_files", [])
    context["script_files"] = [s for s in scripts if "thebe" not in (getattr(s, "filename", None) or str(s))
                               and "THEBE_JS_URL" not in (getattr(s, "attributes", {}).get("body", "") or "")]


def setup(app):
    app.connect("config-inited", _configure)
    app.connect("html-page-context", _page, priority=900)
    return {"parallel_read_safe": True}

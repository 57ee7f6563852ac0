"""Test tooling: open a written page in headless chromium with the network blocked, and say what it shows.

It lives with the tests, not in vae_lab, because only the tests drive a browser; the package writes pages.
"""

import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from html import unescape
from pathlib import Path

# What browser_check appends to its copy of a page: on load it measures the page and writes a JSON
# summary into an element, which chromium's --dump-dom then prints.
_CHECK_SCRIPT = """
<script>
window.addEventListener("load", () => {
  const visible = (element) => {
    const box = element.getBoundingClientRect();
    return box.width > 0 && box.height > 0;
  };
  const formulas = [...document.querySelectorAll(".vae-lab-math, math, mjx-container")]
    .filter((element) => !element.parentElement.closest(".vae-lab-math, math, mjx-container"));
  const untypeset = formulas.filter((element) => {
    const drawn = element.matches(".vae-lab-math") ? element.querySelector("svg") : element;
    return !drawn || !visible(drawn);
  });
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const parent = walker.currentNode.parentElement;
    if (!parent.closest("pre, code, script, style, svg, math, mjx-container, #vae-lab-browser-check")
        && parent.getClientRects().length) {
      texts.push(walker.currentNode.nodeValue);
    }
  }
  const rawTex = texts.join(" ").match(/\\\\[A-Za-z]+|\\$\\$/g) || [];
  const images = [...document.images];
  const broken = images.filter((image) => !(image.complete && image.naturalWidth > 0));
  const summary = {
    formulas: formulas.length,
    formulas_typeset: formulas.length - untypeset.length,
    untypeset: untypeset.slice(0, 5).map((element) => element.getAttribute("aria-label") || element.outerHTML.slice(0, 80)),
    raw_tex: [...new Set(rawTex)].slice(0, 10),
    images: images.length,
    images_loaded: images.length - broken.length,
    broken_images: broken.slice(0, 5).map((image) => image.src.slice(0, 80)),
    requests: performance.getEntriesByType("resource").map((entry) => entry.name)
      .filter((name) => !name.startsWith("data:")),
  };
  const output = document.createElement("pre");
  output.id = "vae-lab-browser-check";
  output.textContent = JSON.stringify(summary);
  document.body.appendChild(output);
});
</script>
"""


def find_chromium():
    """The chromium executable on PATH (Debian's package: apt-get install chromium), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@functools.cache
def _network_namespace_prefix():
    """The unshare command that runs chromium in an empty network namespace here, or () where none may."""
    if shutil.which("unshare"):
        for prefix in (("unshare", "--net"), ("unshare", "--map-root-user", "--net")):  # root; user namespaces
            if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
                return prefix
    return ()


def browser_check(path, *, timeout=120):
    """Open the page at PATH in headless chromium with the network blocked, and say what it shows.

    Returns a dict: formulas and formulas_typeset (drawn with a non-zero size), untypeset, raw_tex (TeX
    commands left in the visible text), images and images_loaded, broken_images, requests (what the page
    tried to load), network (how it was blocked) and ok. A copy of the page gets a script that measures it
    on load; chromium's --dump-dom prints the result. Raises FileNotFoundError where chromium is absent.
    """
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium not installed: apt-get install chromium")
    html = Path(path).read_text(encoding="utf-8")
    closing = html.lower().rfind("</body>")
    html = html[:closing] + _CHECK_SCRIPT + html[closing:] if closing >= 0 else html + _CHECK_SCRIPT
    with tempfile.TemporaryDirectory(prefix="vae-lab-browser-check-") as scratch:
        page = Path(scratch) / "page.html"
        page.write_text(html, encoding="utf-8")
        prefix = list(_network_namespace_prefix())
        command = prefix + [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            f"--user-data-dir={Path(scratch) / 'profile'}", "--no-first-run", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
            "--virtual-time-budget=10000", "--dump-dom", page.as_uri(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, "HOME": scratch})
    found = re.search(r'<pre id="vae-lab-browser-check">(.*?)</pre>', result.stdout, re.DOTALL)
    if not found:
        raise RuntimeError(f"chromium gave no check result (exit {result.returncode}): {result.stderr[-2000:]}")
    summary = json.loads(unescape(found.group(1)))
    summary["network"] = "blocked: " + ("empty network namespace, " if prefix else "") + "no DNS, dead proxy"
    summary["ok"] = (summary["formulas_typeset"] == summary["formulas"] and not summary["raw_tex"]
                     and summary["images_loaded"] == summary["images"] and not summary["requests"])
    return summary

"""Renders executed notebooks as one HTML document with nbconvert: the lab report.

Used by `npm run report` and `npm start` through lib/report/report.ts, which checks the
notebooks first (all there, no error output, run from the current source) and prints the PDF
from this HTML with Chromium.

    .venv/bin/python scripts/render_report.py SPEC.json

SPEC.json: {"notebooks": [executed .ipynb, in order], "output": HTML file to write,
"template_dir": lib/report/nbconvert-template, "plotly_js": plotly.min.js,
"title": ..., "meta_html": ..., "warning_html": ... (optional)}.

The notebooks are merged into one (their cells in order, each tagged with its notebook's
number), stderr streams are left out (warnings and progress belong in the executed copies, not
the report), and cells tagged `remove-cell` are dropped, `remove-input` lose their source,
`remove-output` their outputs. nbconvert renders the merged notebook with the template in
template_dir (JupyterLab's, offline: no CDN script). Then the headings of the Markdown cells get
ids unique across notebooks (nb01, nb01-provision-the-files, ...) and a table of contents is
written from them, and plotly.js is inlined. The output is written to a temporary name and renamed.
Exit status: 0 written, 1 failed (the reason on stderr), 2 bad arguments.
"""

import copy
import json
import os
import re
import sys

import nbformat
from bs4 import BeautifulSoup
from nbconvert import HTMLExporter
from traitlets.config import Config

from atomic_write import write_atomic  # scripts/atomic_write.py

PLOTLY_MIME = "application/vnd.plotly.v1+json"
PLOTLY_MARKER = "/*DCF_PLOTLY_JS*/"
TOC_LEVELS = ("h1", "h2")
DISPLAY_PRIORITY = ["text/html", "text/markdown", "image/svg+xml", "text/latex", "image/png", "image/jpeg", "text/plain"]


def notebook_number(path: str) -> str:
    m = re.match(r"^(\d\d)-", os.path.basename(path))
    return m.group(1) if m else os.path.splitext(os.path.basename(path))[0]


def tags_of(cell) -> list:
    return list(cell.get("metadata", {}).get("tags", []))


def merge(paths: list) -> nbformat.NotebookNode:
    """One notebook of every notebook's cells, in order; each cell tagged dcf-nb-NN."""
    merged = None
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if merged is None:
            merged = copy.deepcopy(nb)
            merged.cells = []
            merged.metadata.pop("dcf_execution", None)
            merged.metadata.pop("widgets", None)
        number = notebook_number(path)
        for cell in nb.cells:
            tags = tags_of(cell)
            if "remove-cell" in tags:
                continue
            if cell.cell_type == "code":
                if "remove-input" in tags:
                    cell.source = ""
                outputs = [] if "remove-output" in tags else cell.get("outputs", [])
                cell.outputs = [o for o in outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
                for o in cell.outputs:
                    if o.get("output_type") in ("display_data", "execute_result"):
                        o.setdefault("metadata", {})
            cell.metadata["tags"] = tags + [f"dcf-nb-{number}"]
            merged.cells.append(cell)
    return merged


def slug(text: str) -> str:
    s = re.sub(r"[^\w\s-]", "", text.lower(), flags=re.UNICODE)
    s = re.sub(r"[\s_-]+", "-", s).strip("-")
    return s or "section"


def add_toc(html: str) -> str:
    """Unique ids for the Markdown cells' headings, and the table of contents from them."""
    soup = BeautifulSoup(html, "html.parser")
    used = set()
    entries = []  # (level, id, text)
    for heading in soup.select(".jp-MarkdownCell h1, .jp-MarkdownCell h2, .jp-MarkdownCell h3"):
        cell = heading.find_parent(class_="jp-MarkdownCell")
        number = next((c[len("celltag_dcf-nb-"):] for el in [cell, *cell.find_all(True)] for c in (el.get("class") or []) if c.startswith("celltag_dcf-nb-")), "")
        for a in heading.find_all("a", class_="anchor-link"):
            a.decompose()
        text = heading.get_text(" ", strip=True)
        base = f"nb{number}" if heading.name == "h1" and number else (f"nb{number}-{slug(text)}" if number else slug(text))
        anchor, k = base, 2
        while anchor in used:
            anchor, k = f"{base}-{k}", k + 1
        used.add(anchor)
        heading["id"] = anchor
        link = soup.new_tag("a", attrs={"class": "anchor-link", "href": f"#{anchor}"})
        link.string = "¶"
        heading.append(link)
        if heading.name in TOC_LEVELS:
            entries.append((TOC_LEVELS.index(heading.name), anchor, text))

    nav = soup.find(id="dcf-toc")
    if nav is not None:
        title = soup.new_tag("h2")
        title.string = "Contents"
        nav.append(title)
        root = soup.new_tag("ol")
        nav.append(root)
        stack = [(-1, root)]  # (level, <ol>)
        for level, anchor, text in entries:
            while stack[-1][0] >= level:
                stack.pop()
            parent_ol = stack[-1][1]
            li = soup.new_tag("li")
            a = soup.new_tag("a", attrs={"href": f"#{anchor}"})
            a.string = text
            li.append(a)
            parent_ol.append(li)
            sub = soup.new_tag("ol")
            li.append(sub)
            stack.append((level, sub))
        for ol in nav.find_all("ol"):
            if not ol.find("li"):
                ol.decompose()
    return str(soup)


def render(spec: dict) -> str:
    nb = merge(spec["notebooks"])
    template_dir = os.path.abspath(spec["template_dir"])
    c = Config()
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    c.HTMLExporter.embed_images = True
    c.HTMLExporter.theme = "light"
    # plotly's MIME type first: nbconvert renders only the types on this list (the rest: HTMLExporter's own order).
    c.NbConvertBase.display_data_priority = [PLOTLY_MIME, *DISPLAY_PRIORITY]
    exporter = HTMLExporter(
        config=c,
        extra_template_basedirs=[os.path.dirname(template_dir)],
        template_name=os.path.basename(template_dir),
    )
    with open(os.path.join(template_dir, "report.css"), encoding="utf-8") as f:
        css = f.read()
    with open(os.path.join(template_dir, "report.js"), encoding="utf-8") as f:
        js = f.read()
    resources = {
        "metadata": {"name": spec.get("title", "report"), "path": os.path.dirname(os.path.abspath(spec["notebooks"][0]))},
        "dcf": {"title": spec.get("title", "Report"), "meta_html": spec.get("meta_html", ""), "warning_html": spec.get("warning_html", ""), "css": css, "js": js},
    }
    html, _ = exporter.from_notebook_node(nb, resources=resources)
    html = add_toc(html)
    if PLOTLY_MARKER not in html:
        raise RuntimeError("the template left no place for plotly.js (lib/report/nbconvert-template/index.html.j2)")
    with open(spec["plotly_js"], encoding="utf-8") as f:
        plotly = f.read().replace("</script", "<\\/script")
    return html.replace(PLOTLY_MARKER, plotly, 1)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    if not spec.get("notebooks"):
        print("error: no notebooks to render", file=sys.stderr)
        return 2
    try:
        html = render(spec)
        write_atomic(spec["output"], lambda f: f.write(html))
    except Exception as err:  # one line for the caller, which names what failed
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

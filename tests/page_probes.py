"""What the browser tests read from a Voilà page: small JavaScript probes run in it, and its cell outputs.

Used by :mod:`browser_support`'s :class:`~browser_support.Dashboard`: the probes report whether every widget and
figure has rendered, what each explorer shows (figure pixels and readouts), the sliders, the errors on the page,
the visible code cells and the title; :func:`widget_outputs` lists the widget views Voilà's page carries.
"""

from __future__ import annotations

import hashlib
import json
import re


# In the page: has every widget rendered, every figure drawn?
JS_RENDER_STATE = """() => {
  const loading = document.getElementById('loading');
  const spinner = loading && getComputedStyle(loading).display !== 'none';
  // Voilà ships each output holding a widget as a script tag; it becomes an lm-Widget once rendered.
  const pending = document.querySelectorAll('script[type="application/vnd.voila.cell-output+json"]').length;
  const rendered = document.querySelectorAll('.jp-OutputArea-output > .lm-Widget').length;
  // ipympl stacks two canvases: the figure, then a transparent one for the zoom rectangle.
  const figures = Array.from(document.querySelectorAll('.jupyter-matplotlib-canvas-div canvas:first-child'));
  const blank = figures.filter(c => {
    if (!c.width || !c.height) return true;
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < data.length; i += 4 * 97) if (data[i] !== 0) return false;
    return true;
  });
  return {complete: document.readyState === 'complete', spinner: !!spinner, pending: pending, rendered: rendered,
          figures: figures.length, blankFigures: blank.length,
          widgets: document.querySelectorAll('.jupyter-widgets').length};
}"""

# What a student sees of one scope (a cell's outputs, or the page): plot pixels and readout text.
JS_VIEW = """(scope) => {
  scope = scope || document.body;
  const plots = [];
  scope.querySelectorAll('.jupyter-matplotlib-canvas-div canvas:first-child').forEach(c => {
    try { plots.push(c.toDataURL()); } catch (e) { plots.push('tainted:' + c.width + 'x' + c.height); }
  });
  scope.querySelectorAll('.widget-output img, .jp-OutputArea-output img').forEach(i => plots.push(i.src));
  const readouts = [];
  scope.querySelectorAll('.widget-html, .widget-htmlmath, div.widget-inline-hbox.widget-label, .widget-output .jp-RenderedText')
       .forEach(e => readouts.push(e.innerText.trim()));
  return {plots: plots, readouts: readouts};
}"""

# Every slider handle on the page, with what the student reads next to it.
JS_SLIDERS = """() => Array.from(document.querySelectorAll('.widget-slider')).map((s, i) => {
  const label = s.querySelector('.widget-label');
  const handle = s.querySelector('.noUi-handle');
  const area = s.closest('.jp-OutputArea') || s.closest('.jp-Cell');
  const areas = Array.from(document.querySelectorAll('.jp-OutputArea, .jp-Cell'));
  return {index: i, label: label ? label.innerText.trim() : '', hasHandle: !!handle,
          disabled: s.querySelector('[disabled]') !== null || (handle && handle.hasAttribute('disabled')),
          scope: area ? areas.indexOf(area) : -1};
})"""

# Everything on the page that is an error a student would see.
JS_PAGE_ERRORS = """() => {
  const found = [];
  document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"], .jp-OutputArea-output.jp-mod-error, .voila-error')
    .forEach(e => found.push('error output on the page: ' + e.innerText.trim().slice(0, 800)));
  const text = document.body ? document.body.innerText : '';
  for (const marker of ['Traceback (most recent call last)', 'There was an error when executing cell',
                        'Error displaying widget', 'Error rendering output', 'Error creating view', '500 : Internal Server Error']) {
    if (text.includes(marker)) found.push('page text contains "' + marker + '"');
  }
  return found;
}"""

# Code cells must not show their source in a dashboard.
JS_VISIBLE_CODE = """() => Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputArea, .jp-CodeCell .jp-Editor, .jp-CodeMirrorEditor'))
  .filter(e => e.offsetParent !== null).length"""

JS_TITLE = """() => { const h = document.querySelector('.jp-MarkdownCell h1, .jp-RenderedMarkdown h1'); return h ? h.innerText.replace('¶', '').trim() : null; }"""


_VOILA_OUTPUT = re.compile(r'<script type="application/vnd\.voila\.cell-output\+json">(.*?)</script>', re.S)


def count_widget_outputs(html: str) -> int:
    """How many outputs of Voilà's served page are widgets (each must render as one lm-Widget)."""
    return sum("application/vnd.jupyter.widget-view+json" in m.group(1) for m in _VOILA_OUTPUT.finditer(html))


_CELL_INDEX = re.compile(r'<div cell-index="(\d+)">')


def widget_outputs(html: str) -> list[dict]:
    """Every widget output of Voilà's served page, in page order: its cell, model id and text fallback."""
    cells = [(m.start(), int(m.group(1))) for m in _CELL_INDEX.finditer(html)]
    found = []
    for m in _VOILA_OUTPUT.finditer(html):
        try:
            output = json.loads(m.group(1))
        except ValueError:
            continue
        view = (output.get("data") or {}).get("application/vnd.jupyter.widget-view+json")
        if not view:
            continue
        cell = max((index for start, index in cells if start < m.start()), default=None)
        text = (output.get("data") or {}).get("text/plain", "")
        found.append({"cell": cell, "model_id": view.get("model_id"), "text": "".join(text)[:120],
                      "output_type": output.get("output_type"),
                      "display_id": (output.get("transient") or {}).get("display_id")})
    return found


# The cells where a widget view says its model is missing (Voilà wraps each cell in <div cell-index=N>).
JS_MISSING_MODEL_CELLS = """() => Array.from(document.querySelectorAll('.jupyter-widgets'))
  .filter(e => (e.textContent || '').startsWith('Error displaying widget'))
  .map(e => { const c = e.closest('[cell-index]'); return {cell: c ? Number(c.getAttribute('cell-index')) : null,
                                                          text: e.textContent.trim()}; })"""


def digest(view: dict) -> dict:
    """Shorter, comparable form of a view: hashes of the plot images, the readout texts."""
    return {
        "plots": [hashlib.sha1(p.encode()).hexdigest()[:12] for p in view["plots"]],
        "readouts": list(view["readouts"]),
    }

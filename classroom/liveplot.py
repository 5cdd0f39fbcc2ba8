"""A live plotly figure for the page: one stable <div> redrawn in place with `Plotly.react`.

What it is: a `gr.HTML` component showing a figure, and the few lines of JavaScript that draw
it: `window.ganPlots[name](figure)`, called by the live channel (`live.py`). What it is not: a
plot builder (that is plots.py).

Why not `gr.Plot`: Gradio 6's Plot wraps its plotly view in a Svelte `{#key}` block
that re-creates the view whenever the value changes, so each live update made a new
<div>, ran `Plotly.newPlot` on it and dropped the old one without `Plotly.purge`.
The dropped plots stayed reachable: with the default run live the page's DOM grew
by ~40 k nodes and its JS heap (after GC) by ~45 MB a minute, and the renderer
rebuilt five plots from scratch 2.5 times a second (docs/benchmarks/browser.json).
Here each plot's <div> lives as long as the page, `Plotly.react` diffs the new figure
against the drawn one, and updates arriving faster than frames are painted (or while
the tab is hidden) collapse into one draw of the newest figure.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import plotly

PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"

# `element`, `props` and `watch` are given by gr.HTML (see its js_on_load docs).
DRAW_JS = """
const div = element.querySelector('.live-plot');
// The last figure this plot was sent, kept also when the component is mounted again (shown
// after being hidden); the live channel (live.py's LIVE_JS) hands new ones to ganPlots[id].
const kept = window.ganFigures || (window.ganFigures = {});
const plots = window.ganPlots || (window.ganPlots = {});
const plotId = div.dataset.plot;
const config = {displaylogo: false, displayModeBar: false, responsive: false};
const measure = document.createElement('canvas').getContext('2d');
let drawn = null, drawnFigure = null, queued = false;
// Large-text mode (window.ganTextScale, set by the page's toggle): every font in the layout
// and the colour bars grows, and the figure grows a little taller to keep its plot area.
function scaleFonts(obj, k) {
  for (const [key, v] of Object.entries(obj)) {
    if (key === 'font' && v && typeof v.size === 'number') v.size = Math.round(v.size * k);
    else if (v && typeof v === 'object' && !(Array.isArray(v) && typeof v[0] !== 'object')) scaleFonts(v, k);
  }
}
// A title wider than the plot would be cut off at its edge: shrink its font to fit.
function fitTitle(layout) {
  const title = layout.title;
  if (!title || !title.text || !div.clientWidth) return;
  const font = title.font || (title.font = {});
  const size = font.size || 18;
  measure.font = size + 'px "Open Sans", verdana, arial, sans-serif';
  const room = div.clientWidth - 16;
  const width = measure.measureText(title.text.replace(/<[^>]*>/g, '')).width;
  if (width > room) font.size = Math.max(9, Math.floor(size * room / width));
}
// A plot of the lecture view's top row has its height set by the page's CSS (to fit the window):
// the figure takes that height.
const fitHeight = div.classList.contains('fit-height');
function draw() {
  queued = false;
  const figure = kept[plotId];
  if (!window.Plotly || !figure) return;
  const k = window.ganTextScale || 1;
  const height = fitHeight ? div.clientHeight : 0;
  const key = k + '|' + div.clientWidth + '|' + height;
  if (key === drawn && figure === drawnFigure) return;
  drawn = key;
  drawnFigure = figure;
  const fig = JSON.parse(JSON.stringify(figure));  // scaled and fitted on a copy
  if (k !== 1) {
    scaleFonts(fig.layout, k);
    for (const trace of fig.data) scaleFonts(trace, k);  // colour bars' titles and ticks
    if (fig.layout.height) fig.layout.height = Math.round(fig.layout.height * (1 + (k - 1) / 2));
  }
  if (height > 0) fig.layout.height = height;
  fitTitle(fig.layout);
  window.Plotly.react(div, fig.data, fig.layout, config).then(() => {
    if (div._fullLayout && Math.abs(div._fullLayout.width - div.clientWidth) > 1) window.Plotly.Plots.resize(div);
  });
}
function schedule() { if (!queued) { queued = true; requestAnimationFrame(draw); } }
plots[plotId] = (figure) => { kept[plotId] = figure; schedule(); };
const pending = window.ganPending && window.ganPending[plotId];
if (pending) { kept[plotId] = pending; delete window.ganPending[plotId]; }
else if (!kept[plotId] && props.value) kept[plotId] = JSON.parse(props.value);  // the placeholder
window.addEventListener('gan-text-scale', schedule);
// The div changes size when the window, the layout or the text size changes, or when a
// hidden plot is shown: draw again for the new size (titles are fitted to its width).
new ResizeObserver(() => { if (div.offsetWidth > 0) schedule(); }).observe(div);
schedule();
"""


def head() -> str:
    """The <script> tag that loads plotly.js from the installed plotly package (no network)."""
    return f'<script src="/gradio_api/file={PLOTLY_JS}"></script>'


def serve_plotly_js() -> None:
    """Let Gradio serve that one file (call before launch)."""
    gr.set_static_paths([PLOTLY_JS])


def live_plot(name: str, elem_id: str, value: str | None = None, visible: bool = True,
              min_height: int = 340, fit_height: bool = False) -> gr.HTML:
    """The plot the live channel calls `name` (`live.PLOT_NAMES`, `live.COMPARE_PLOTS`); its value,
    a figure's JSON text (`plots.Figure.to_json()`), is what it shows before the first frame.
    `fit_height`: the page's CSS sets its height (`.live-plot.fit-height`), not the figure."""
    classes = "live-plot fit-height" if fit_height else "live-plot"
    return gr.HTML(value=value, html_template=f'<div class="{classes}" data-plot="{name}"></div>', js_on_load=DRAW_JS,
                   head=head(), apply_default_css=False, elem_id=elem_id, elem_classes=["live-plot-box"],
                   visible=visible, min_height=min_height)

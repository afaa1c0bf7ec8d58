// The report page's own script (index.html.j2 inlines it after plotly.js): draws every plotly
// figure from its JSON spec, wires the "Show code" button, and says when it is done in
// window.dcfReport ({ done, figures, errors }), which lib/report/report.ts waits for before
// printing the PDF.
(function () {
  'use strict';
  var state = { done: false, figures: 0, errors: [] };
  window.dcfReport = state;

  var toggle = document.getElementById('dcf-code-toggle');
  if (toggle) {
    toggle.addEventListener('click', function () {
      var on = document.body.classList.toggle('dcf-show-code');
      toggle.textContent = on ? 'Hide code' : 'Show code';
      toggle.setAttribute('aria-pressed', on ? 'true' : 'false');
    });
  }

  function draw(node) {
    var script = node.querySelector('script[type="application/vnd.plotly.v1+json"]');
    var spec = JSON.parse(script.textContent);
    var layout = Object.assign({}, spec.layout || {});
    // A figure wider than the page is scaled down whole (height too), so images keep their shape.
    var available = node.clientWidth || document.querySelector('main').clientWidth;
    if (layout.width && available && layout.width > available) {
      if (layout.height) layout.height = Math.round((layout.height * available) / layout.width);
      layout.width = available;
    }
    var target = document.createElement('div');
    target.className = 'dcf-plotly-figure';
    node.appendChild(target);
    var config = Object.assign({}, spec.config || {}, { displaylogo: false, responsive: false });
    return window.Plotly.newPlot(target, spec.data || [], layout, config).then(function () {
      state.figures += 1;
    });
  }

  var nodes = Array.prototype.slice.call(document.querySelectorAll('.dcf-plotly'));
  var jobs = nodes.map(function (node, i) {
    try {
      if (typeof window.Plotly === 'undefined') throw new Error('plotly.js is not in the page');
      return draw(node).catch(function (err) {
        state.errors.push('figure ' + (i + 1) + ': ' + String((err && err.message) || err));
      });
    } catch (err) {
      state.errors.push('figure ' + (i + 1) + ': ' + String((err && err.message) || err));
      return Promise.resolve();
    }
  });
  Promise.all(jobs).then(function () {
    state.done = true;
    document.body.setAttribute('data-dcf-ready', state.errors.length ? 'errors' : 'true');
  });
})();

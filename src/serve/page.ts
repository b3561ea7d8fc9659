/**
 * The web page `cqseg serve` answers at `/`: one self-contained HTML document (styles and
 * script inline, nothing loaded from elsewhere, so it works offline) over the JSON API.
 * Pick or drop images, choose the DCIN mode, and per image see the image beside the image
 * with its segmentation (an opacity slider), the legend of class colors, per-class areas
 * and confidence, thumbnails of the references DCIN used, a warning for images unlike the
 * training set, and downloads of the mask PNG and the JSON. Narrow screens stack the panes.
 * A link leads to the in-browser mode (/browser/, export/bundle.ts) where the server offers it.
 * Elements the browser test reads carry data-* attributes (test/serve/page.test.ts).
 */
import { BASE_CSS } from '../web/page';

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cqseg</title>
<link rel="icon" href="data:,">
<style>
${BASE_CSS}  main { max-width: 1200px; margin: 0 auto; padding: 16px 20px 40px; }
  .controls { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; margin-bottom: 16px; }
  .drop { flex: 1 1 320px; border: 2px dashed var(--line); border-radius: 10px; background: #fff; padding: 18px; text-align: center; color: var(--muted); cursor: pointer; }
  .drop.over { border-color: var(--accent); color: var(--accent); }
  select, input[type=password] { font: inherit; padding: 6px 8px; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
  .status { color: var(--muted); min-height: 1.4em; }
  .status.error { color: var(--warn); }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 14px; margin-bottom: 18px; }
  .card h2 { font-size: 16px; margin: 0 0 10px; overflow-wrap: anywhere; }
  .panes { display: flex; flex-wrap: wrap; gap: 12px; }
  .pane { flex: 1 1 300px; min-width: 0; }
  .pane .label { font-size: 13px; color: var(--muted); margin-bottom: 4px; }
  .stack { position: relative; line-height: 0; }
  .stack img, .stack canvas { width: 100%; height: auto; border-radius: 6px; image-rendering: auto; }
  .stack canvas { position: absolute; left: 0; top: 0; }
  .slider { display: flex; align-items: center; gap: 8px; font-size: 13px; color: var(--muted); margin-top: 6px; }
  .legend { display: flex; flex-wrap: wrap; gap: 6px 14px; margin: 12px 0 8px; font-size: 13px; }
  .swatch { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 5px; vertical-align: -1px; border: 1px solid rgba(0,0,0,.2); }
  table { border-collapse: collapse; width: 100%; font-size: 14px; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  .warn { background: #fde8e6; color: var(--warn); border-radius: 6px; padding: 8px 10px; margin-bottom: 10px; font-weight: 600; }
  .refs { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 10px; }
  .refs figure { margin: 0; font-size: 12px; color: var(--muted); text-align: center; }
  .refs img { width: 96px; height: auto; border-radius: 4px; border: 1px solid var(--line); display: block; }
  .downloads { margin-top: 10px; display: flex; gap: 14px; font-size: 14px; }
  a { color: var(--accent); }
  .meta { font-size: 13px; color: var(--muted); margin-top: 6px; }
</style>
</head>
<body>
<header><h1>cqseg</h1><span class="model" id="model">loading the model...</span><a id="browserLink" href="browser/" hidden>run it in this browser instead (nothing uploaded)</a></header>
<main>
  <div class="controls">
    <label class="drop" id="drop" for="files">Drop images here, or click to choose<br><input id="files" type="file" accept="image/*" multiple hidden></label>
    <label>DCIN mode <select id="mode"></select></label>
    <label id="tokenBox" hidden>Token <input id="token" type="password" autocomplete="off"></label>
  </div>
  <div class="status" id="status" data-state="idle"></div>
  <div id="results"></div>
</main>
<script>
(function () {
  'use strict';
  var model = null;
  var $ = function (id) { return document.getElementById(id); };
  var status = function (text, state) { var s = $('status'); s.textContent = text; s.dataset.state = state; s.className = 'status' + (state === 'error' ? ' error' : ''); };
  var headers = function () { var t = $('token').value; return t ? { authorization: 'Bearer ' + t } : {}; };
  var el = function (tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { if (k === 'text') e.textContent = attrs[k]; else if (k.indexOf('data-') === 0) e.setAttribute(k, attrs[k]); else e[k] = attrs[k]; });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  };
  var rgb = function (c) { return 'rgb(' + c[0] + ',' + c[1] + ',' + c[2] + ')'; };
  var pct = function (x) { return (100 * x).toFixed(1) + '%'; };

  function loadModel() {
    return fetch('v1/model', { headers: headers() }).then(function (r) {
      if (r.status === 401) { $('tokenBox').hidden = false; status('This server needs a token: enter it, then choose images.', 'error'); return null; }
      return r.json();
    }).then(function (m) {
      if (!m) return;
      model = m;
      $('model').textContent = 'Unet(' + m.encoder + '), ' + m.size[0] + 'x' + m.size[1] + ', ' + m.classes.length + ' classes' + (m.bank ? ', bank of ' + m.bank.images + ' images' : ', no reference bank');
      var sel = $('mode');
      sel.innerHTML = '';
      m.modes.forEach(function (mode) { sel.appendChild(el('option', { value: mode, text: mode })); });
      sel.value = m.modes.indexOf('auto') >= 0 ? 'auto' : m.modes[0];
      $('browserLink').hidden = !m.browser;
      document.body.dataset.ready = '1';
    });
  }

  function colorize(maskImg, canvas) {
    var w = maskImg.naturalWidth, h = maskImg.naturalHeight;
    canvas.width = w; canvas.height = h;
    var ctx = canvas.getContext('2d');
    ctx.drawImage(maskImg, 0, 0);
    var d = ctx.getImageData(0, 0, w, h);
    for (var i = 0; i < d.data.length; i += 4) {
      var c = model.classes[d.data[i]];
      var col = c ? c.color : [255, 0, 255];
      // a black class (the background of the usual palettes) stays see-through
      d.data[i] = col[0]; d.data[i + 1] = col[1]; d.data[i + 2] = col[2]; d.data[i + 3] = col[0] + col[1] + col[2] === 0 ? 0 : 255;
    }
    ctx.putImageData(d, 0, 0);
  }

  function card(file, r) {
    var src = URL.createObjectURL(file);
    var canvas = el('canvas', { 'data-role': 'mask-layer' });
    var maskImg = new Image();
    var overlayReady = new Promise(function (resolve) { maskImg.onload = function () { colorize(maskImg, canvas); resolve(); }; });
    maskImg.src = 'data:image/png;base64,' + r.mask_png;
    var slider = el('input', { type: 'range', min: 0, max: 100, value: 50, 'data-role': 'opacity' });
    canvas.style.opacity = '0.5';
    slider.addEventListener('input', function () { canvas.style.opacity = String(slider.value / 100); });
    var legend = el('div', { className: 'legend' }, r.classes.map(function (c) {
      return el('span', {}, [el('span', { className: 'swatch', style: 'background:' + rgb(c.color) }), document.createTextNode(c.name)]);
    }));
    legend.querySelectorAll('.swatch').forEach(function (s, i) { s.style.background = rgb(r.classes[i].color); });
    var rows = r.classes.map(function (c) {
      return el('tr', { 'data-class': c.name, 'data-pixels': String(c.pixels) }, [
        el('td', {}, [el('span', { className: 'swatch' }), document.createTextNode(c.name)]),
        el('td', { className: 'num', text: pct(c.fraction) }),
        el('td', { className: 'num', text: String(c.pixels) }),
        el('td', { className: 'num', text: c.confidence === null ? '-' : pct(c.confidence) }),
      ]);
    });
    rows.forEach(function (tr, i) { tr.querySelector('.swatch').style.background = rgb(r.classes[i].color); });
    var table = el('table', {}, [el('thead', {}, [el('tr', {}, [el('th', { text: 'class' }), el('th', { className: 'num', text: 'area' }), el('th', { className: 'num', text: 'pixels' }), el('th', { className: 'num', text: 'confidence' })])]), el('tbody', {}, rows)]);
    var warn = null;
    if (r.ood && r.ood.flagged) {
      warn = el('div', { className: 'warn', 'data-role': 'ood-warning', text: 'This image looks unlike the training images (distance ' + r.ood.distance.toFixed(2) + ' > threshold ' + r.ood.threshold + '): check the result with care.' });
    }
    var refs = [];
    var seen = {};
    var addRef = function (label, ref) {
      if (!ref) return;
      if (seen[ref.index]) { seen[ref.index].label += ', ' + label; return; }
      seen[ref.index] = { label: label, ref: ref };
      refs.push(seen[ref.index]);
    };
    addRef('GRIS', r.references.gris);
    addRef('LRIS', r.references.lris);
    if (r.references.auto && r.references.auto.neighbours) r.references.auto.neighbours.forEach(function (n, i) { addRef('neighbour ' + (i + 1), n); });
    var auto = r.references.auto;
    var refsTitle = !auto ? 'References used'
      : auto.choice === 'none' ? 'References considered (auto kept the image as it is: ' + (auto.reason || 'no transfer') + ')'
      : 'References considered (auto chose ' + auto.choice + ')';
    var refsBox = refs.length ? el('div', {}, [el('div', { className: 'label', text: refsTitle }),
      el('div', { className: 'refs' }, refs.map(function (x) {
        return el('figure', { 'data-role': 'reference' }, [el('img', { src: 'v1/references/' + x.ref.index + '/thumbnail', alt: x.ref.path }), el('figcaption', { text: x.label })]);
      }))]) : null;
    var json = new Blob([JSON.stringify(r, null, 1)], { type: 'application/json' });
    var base = file.name.replace(/\\.[^.]*$/, '');
    var downloads = el('div', { className: 'downloads' }, [
      el('a', { href: 'data:image/png;base64,' + r.mask_png, download: base + '_mask.png', text: 'mask PNG', 'data-role': 'download-mask' }),
      el('a', { href: URL.createObjectURL(json), download: base + '.json', text: 'JSON', 'data-role': 'download-json' }),
    ]);
    var c = el('section', { className: 'card', 'data-role': 'result', 'data-name': file.name }, [
      el('h2', { text: file.name + ' (' + r.width + 'x' + r.height + ')' }),
      warn,
      el('div', { className: 'panes' }, [
        el('div', { className: 'pane' }, [el('div', { className: 'label', text: 'image' }), el('div', { className: 'stack' }, [el('img', { src: src, alt: 'image' })])]),
        el('div', { className: 'pane' }, [el('div', { className: 'label', text: 'segmentation (' + $('mode').value + ')' }),
          el('div', { className: 'stack' }, [el('img', { src: src, alt: 'image under its segmentation' }), canvas]),
          el('label', { className: 'slider' }, [document.createTextNode('opacity'), slider])]),
      ]),
      legend, table, refsBox, downloads,
      el('div', { className: 'meta', text: 'confidence ' + pct(r.confidence) + ' · decode ' + r.timings_ms.decode.toFixed(0) + ' ms, predict ' + r.timings_ms.predict.toFixed(0) + ' ms' }),
    ]);
    return { node: c, ready: overlayReady };
  }

  function segment(files) {
    if (!files.length) return;
    if (!model) { loadModel(); return; }
    var form = new FormData();
    files.forEach(function (f) { form.append('image', f, f.name); });
    status('Segmenting ' + files.length + ' image' + (files.length > 1 ? 's' : '') + '...', 'busy');
    fetch('v1/segment?mode=' + encodeURIComponent($('mode').value), { method: 'POST', body: form, headers: headers() })
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || ('HTTP ' + r.status)); return j; }); })
      .then(function (j) {
        var out = $('results');
        var cards = j.images.map(function (r, i) { return card(files[i], r); });
        cards.slice().reverse().forEach(function (x) { out.insertBefore(x.node, out.firstChild); });
        return Promise.all(cards.map(function (x) { return x.ready; })).then(function () { status('Done: ' + j.images.length + ' image' + (j.images.length > 1 ? 's' : '') + ' with ' + j.mode + '.', 'done'); });
      })
      .catch(function (e) { status(e.message, 'error'); });
  }

  $('files').addEventListener('change', function (e) { segment(Array.prototype.slice.call(e.target.files)); e.target.value = ''; });
  var drop = $('drop');
  ['dragenter', 'dragover'].forEach(function (t) { drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.add('over'); }); });
  ['dragleave', 'drop'].forEach(function (t) { drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.remove('over'); }); });
  drop.addEventListener('drop', function (e) { segment(Array.prototype.slice.call(e.dataTransfer.files)); });
  $('token').addEventListener('change', loadModel);
  loadModel();
})();
</script>
</body>
</html>
`;

/**
 * index.html of the in-browser bundle (cqseg export --bundle, and cqseg serve's
 * /browser/): styles inline, the script app.js (an ES module) and onnxruntime-web
 * (ort/ort.min.js) beside it; nothing is loaded from another host.
 */
/** The look both pages share (colors, type, header); cqseg serve's page (serve/page.ts) starts from it too. */
export const BASE_CSS = `  :root { --fg: #1d2733; --muted: #5b6b7c; --line: #d8dee6; --accent: #2f6fdb; --warn: #b3261e; --bg: #f6f8fb; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
  header { background: #fff; border-bottom: 1px solid var(--line); padding: 12px 20px; display: flex; flex-wrap: wrap; gap: 8px 24px; align-items: baseline; }
  header h1 { font-size: 20px; margin: 0; }
  header .model { color: var(--muted); }
`;

export const BUNDLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cqseg in the browser</title>
<link rel="icon" href="data:,">
<style>
${BASE_CSS}  .offline { font-size: 13px; color: #1e6b35; background: #e3f4e8; border-radius: 999px; padding: 2px 10px; }
  main { max-width: 1000px; margin: 0 auto; padding: 16px 20px 40px; }
  .controls { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; margin-bottom: 16px; }
  .drop { flex: 1 1 320px; border: 2px dashed var(--line); border-radius: 10px; background: #fff; padding: 18px; text-align: center; color: var(--muted); cursor: pointer; }
  .drop.over { border-color: var(--accent); color: var(--accent); }
  select { font: inherit; padding: 6px 8px; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
  .status { color: var(--muted); min-height: 1.4em; margin-bottom: 12px; }
  .status.error { color: var(--warn); }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 14px; }
  .card h2 { font-size: 16px; margin: 0 0 10px; overflow-wrap: anywhere; }
  .stack { position: relative; line-height: 0; max-width: 640px; }
  .stack canvas { width: 100%; height: auto; border-radius: 6px; }
  .stack canvas + canvas { position: absolute; left: 0; top: 0; }
  .slider { display: flex; align-items: center; gap: 8px; font-size: 13px; color: var(--muted); margin: 6px 0 10px; }
  table { border-collapse: collapse; width: 100%; max-width: 640px; font-size: 14px; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  .swatch { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 5px; vertical-align: -1px; border: 1px solid rgba(0,0,0,.2); }
  .meta { font-size: 13px; color: var(--muted); }
  a { color: var(--accent); font-size: 14px; }
</style>
</head>
<body>
<header><h1>cqseg</h1><span class="offline">runs in this browser: images never leave it</span><span class="model" id="model">loading the model...</span></header>
<main>
  <div class="controls">
    <label class="drop" id="drop" for="files">Drop an image here, or click to choose<br><input id="files" type="file" accept="image/*" hidden></label>
    <label>DCIN mode <select id="mode"></select></label>
  </div>
  <div class="status" id="status" data-state="busy">loading...</div>
  <div id="results"></div>
</main>
<script src="ort/ort.min.js"></script>
<script type="module" src="app.js"></script>
</body>
</html>
`;

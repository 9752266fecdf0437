"""The report's inline stylesheet (kept apart so report.py reads as the page's structure).

Example:
    >>> "<" in CSS  # nothing that could close the <style> element it is inlined in
    False
"""

from __future__ import annotations

#: Inline CSS of ``report.html``: system fonts only, no external assets, light and dark.
CSS = """
:root {
  --bg: #f6f7f9; --panel: #ffffff; --ink: #1c2430; --muted: #627084; --line: #e3e7ed;
  --ok: #1f8a5b; --ok-bg: #e5f5ed; --bad: #c2413a; --bad-bg: #fbe9e7; --accent: #4353ff;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #12161c; --panel: #1a2029; --ink: #e6eaf0; --muted: #94a0b3; --line: #2a3240;
    --ok: #4cc38a; --ok-bg: #173326; --bad: #f07167; --bad-bg: #3a1f1d; --accent: #8d97ff;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue",
    Arial, "Noto Sans", sans-serif;
}
main { max-width: 1180px; margin: 0 auto; padding: 32px 24px 64px; }
header { margin-bottom: 24px; }
.eyebrow {
  margin: 0; color: var(--accent); font-weight: 600; font-size: 12px;
  letter-spacing: .08em; text-transform: uppercase;
}
h1 { margin: 4px 0 6px; font-size: 28px; letter-spacing: -.01em; }
h2 { margin: 36px 0 12px; font-size: 19px; }
h3 { margin: 18px 0 8px; font-size: 14px; color: var(--muted); font-weight: 600; }
.meta, .note, .rate, .none { color: var(--muted); font-size: 13px; margin: 0; }
.rate { margin-top: 6px; }
code {
  font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  overflow-wrap: anywhere;
}
.cards {
  display: grid; gap: 12px; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr));
}
.card {
  background: var(--panel); border: 1px solid var(--line); border-radius: 12px;
  padding: 14px 16px; box-shadow: 0 1px 2px rgba(16, 24, 40, .04);
}
.card .value { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: .05em; }
.card.ok .value { color: var(--ok); }
.card.failed .value { color: var(--bad); }
.bar {
  margin-top: 16px; height: 8px; border-radius: 999px; overflow: hidden;
  background: var(--bad-bg);
}
.bar > div { height: 100%; background: var(--ok); }
table {
  width: 100%; border-collapse: separate; border-spacing: 0; background: var(--panel);
  border: 1px solid var(--line); border-radius: 12px; overflow: hidden;
}
th, td { text-align: left; vertical-align: top; padding: 10px 12px;
  border-bottom: 1px solid var(--line); }
th { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .05em;
  background: var(--bg); }
tbody tr:last-child td { border-bottom: 0; }
td.num { width: 56px; color: var(--muted); font-variant-numeric: tabular-nums; }
table.counts { width: auto; min-width: 320px; }
.badge {
  display: inline-block; margin-left: 8px; padding: 1px 8px; border-radius: 999px;
  font-size: 11px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em;
}
.badge.ok { color: var(--ok); background: var(--ok-bg); }
.badge.failed { color: var(--bad); background: var(--bad-bg); }
td.key { width: 30%; }
.uri { margin: 6px 0 0; color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
.message { margin: 6px 0 0; color: var(--bad); font-size: 13px; overflow-wrap: anywhere; }
td.images { display: flex; gap: 10px; flex-wrap: wrap; }
figure { margin: 0; text-align: center; }
a.full { color: inherit; text-decoration: none; cursor: zoom-in; }
a.full:hover img { border-color: var(--muted); }
figure img, .placeholder {
  display: block; width: 256px; height: 192px; object-fit: contain; border-radius: 8px;
  background: var(--bg); border: 1px solid var(--line);
}
.placeholder { display: flex; align-items: center; justify-content: center; padding: 8px;
  background: var(--bad-bg); color: var(--bad); }
.placeholder span { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  overflow-wrap: anywhere; }
figcaption { margin-top: 4px; color: var(--muted); font-size: 11px; text-transform: uppercase;
  letter-spacing: .06em; }
"""

package reports

// css is the whole stylesheet of the HTML report, inlined into the page.
// System fonts only: the report must render offline exactly as it does here.
const css = `
:root{--bg:#f5f6f8;--card:#fff;--ink:#1f2430;--mute:#667085;--line:#e4e7ec;
--pass:#15803d;--pass-bg:#dcfce7;--fail:#b91c1c;--fail-bg:#fee2e2;--err:#c2410c;--err-bg:#ffedd5;
--skip:#475467;--skip-bg:#eef0f3;--dev:#a16207;--dev-bg:#fef9c3;--nc-bg:#f8f9fb}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1240px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:22px;margin:0}
h2{font-size:17px;margin:28px 0 10px}
h3{font-size:14px;margin:0}
td.mono{white-space:nowrap}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
header.card{display:flex;gap:18px;align-items:center;flex-wrap:wrap}
header .title{flex:1;min-width:300px}
.meta{color:var(--mute);margin-top:4px;font-size:13px}
.meta b{color:var(--ink);font-weight:600}
.kind{display:inline-block;font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--mute);border:1px solid var(--line);border-radius:4px;padding:0 6px;margin-left:8px;vertical-align:3px}
.verdict{font-size:26px;font-weight:800;letter-spacing:.04em;padding:8px 20px;border-radius:10px}
.verdict.pass{color:var(--pass);background:var(--pass-bg)}
.verdict.fail{color:var(--fail);background:var(--fail-bg)}
.verdict.error{color:var(--err);background:var(--err-bg)}
.summary{margin:10px 2px 0;color:var(--mute)}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(118px,1fr));gap:10px;margin-top:14px}
.kpi{padding:10px 14px}
.kpi .v{font-size:20px;white-space:nowrap;font-weight:700;font-variant-numeric:tabular-nums}
.kpi .l{color:var(--mute);font-size:12px}
.kpi .s{color:var(--mute);font-size:12px}
.kpi.bad .v{color:var(--fail)}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px}
figure{margin:0}
.chart-card figcaption{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 14px;margin-bottom:4px}
.chart-card .note{margin:0;color:var(--mute);font-size:12px;flex-basis:100%}
.legend{list-style:none;margin:0;padding:0;display:flex;gap:12px;flex-wrap:wrap;font-size:12px;color:var(--mute)}
.sw{display:inline-block;width:16px;height:0;border-top:2.5px solid var(--c);margin-right:5px;vertical-align:middle}
.sw.dashed{border-top-style:dashed}
.sw.block{height:10px;border:0;background:var(--c);opacity:.8;border-radius:2px}
.sw.fault{background:#f59e0b;opacity:.35}
svg.chart{width:100%;height:auto;display:block;font-size:10.5px}
svg.chart .axis line{stroke:#e9ecf1;stroke-width:1}
svg.chart .axis .xg{stroke:#98a2b3}
svg.chart text{fill:#667085}
svg.chart .yt{text-anchor:end}
svg.chart .xt,svg.chart .al{text-anchor:middle}
svg.chart .al{font-size:11px;fill:#475467}
svg.chart .series{fill:none;stroke-width:1.8;stroke-linejoin:round;stroke-linecap:round}
svg.chart .area{opacity:.14;stroke:none}
svg.chart .fault rect{fill:#f59e0b;opacity:.16}
svg.chart .fault text{fill:#b45309;font-size:10px;font-weight:600}
svg.chart .fault.tick line{stroke:#f59e0b;stroke-width:2}
svg.chart .step rect{fill:#6366f1;opacity:.08}
svg.chart .step line{stroke:#6366f1;stroke-width:1;stroke-dasharray:3 2}
svg.chart .step text{fill:#4f46e5;font-size:10px}
.sw.step{border-top:2px dashed #6366f1}
.timeline{margin-top:10px}
.timeline h3{font-size:14px;margin:8px 0 4px}
svg.chart .hits rect{fill:transparent}
svg.chart .hits rect:hover{fill:rgba(16,24,40,.07)}
svg.chart .cat{text-anchor:end;fill:#344054;font-size:11.5px}
svg.chart .val{font-size:10px}
svg.chart .none{text-anchor:middle;font-size:13px;fill:#98a2b3}
table{border-collapse:collapse;width:100%;background:var(--card)}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--mute);font-weight:600;background:#fafbfc}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.tablecard{padding:0;overflow:hidden}
.tablecard table{border:0}
.pill{display:inline-block;min-width:58px;text-align:center;border-radius:999px;padding:1px 9px;font-size:12px;font-weight:700;text-transform:uppercase;letter-spacing:.03em}
.pill.pass{color:var(--pass);background:var(--pass-bg)}
.pill.fail{color:var(--fail);background:var(--fail-bg)}
.pill.error{color:var(--err);background:var(--err-bg)}
.pill.skipped,.pill.not_covered{color:var(--skip);background:var(--skip-bg)}
.pill.deviation{color:var(--dev);background:var(--dev-bg)}
.stmt{display:inline-block;font-size:11px;border:1px solid var(--line);border-radius:4px;padding:0 5px;margin:2px 4px 0 0;color:var(--mute)}
tr.a-fail td:first-child{box-shadow:inset 3px 0 var(--fail)}
tr.a-error td:first-child{box-shadow:inset 3px 0 var(--err)}
tr.a-deviation td:first-child{box-shadow:inset 3px 0 var(--dev)}
details summary{cursor:pointer;color:#344054;font-size:12.5px}
details table{margin-top:6px;font-size:12px}
details td,details th{padding:3px 8px}
.msg{white-space:pre-wrap}
.cov{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:10px;margin-bottom:12px}
.covbar{display:flex;height:10px;border-radius:5px;overflow:hidden;margin:8px 0 6px;background:var(--skip-bg)}
.covbar span{display:block;height:100%}
.covbar .pass{background:#22c55e}.covbar .fail{background:#ef4444}.covbar .deviation{background:#eab308}.covbar .skipped{background:#98a2b3}
.covnums{font-size:12px;color:var(--mute)}
.covpct{font-size:20px;font-weight:700}
.filters{display:flex;flex-wrap:wrap;gap:6px;margin:0 0 10px}
.matrix>input{position:absolute;opacity:0;pointer-events:none}
.filters label{border:1px solid var(--line);background:var(--card);border-radius:999px;padding:3px 12px;cursor:pointer;font-size:12.5px}
.matrix td.cell{text-align:center;white-space:nowrap}
.matrix td.cell .why{display:block;font-size:11px;color:var(--mute);white-space:normal;max-width:220px;margin:2px auto 0}
.matrix td.cell.not_covered{background:var(--nc-bg)}
.matrix th.tg{text-align:center}
.sec{color:var(--mute)}
footer{margin-top:30px;color:var(--mute);font-size:12px;text-align:center}
.two{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:14px}
.empty{color:var(--mute);font-style:italic}
`

// filterRule makes the status radio buttons filter the matrix rows: a row
// carries a class per status found in it. Generated per status in html.go.
const filterRule = `#mf-%[1]s:checked~.filters label[for=mf-%[1]s]{background:#1f2430;color:#fff;border-color:#1f2430}
#mf-%[1]s:checked~.tablecard tbody tr:not(.has-%[1]s){display:none}
`

"""The report's stylesheet and its one small script, kept inline so the file stands alone."""

from __future__ import annotations

__all__ = ["CSS", "JS", "SEVERITY_COLOURS"]

#: finding severity -> (text/border colour, background)
SEVERITY_COLOURS = {
    "error": ("#B3261E", "#FCEEEE"),
    "warning": ("#8A5300", "#FFF6E5"),
    "info": ("#1F5FA8", "#EEF4FC"),
}

CSS = """
:root{--fg:#1d232a;--muted:#5b6570;--panel:#f6f8fa;--line:#dde2e8;--accent:#0072B2;
--err:#B3261E;--warn:#8A5300;--info:#1F5FA8;--ok:#1B7F3B}
*{box-sizing:border-box}
html{scroll-behavior:smooth}
body{margin:0;color:var(--fg);background:#fff;
font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.layout{display:grid;grid-template-columns:200px minmax(0,1fr);max-width:1320px;margin:0 auto}
nav.toc{position:sticky;top:0;align-self:start;max-height:100vh;overflow:auto;
padding:22px 10px 22px 16px;border-right:1px solid var(--line);font-size:13px}
nav.toc b{display:block;margin-bottom:8px;font-size:12px;letter-spacing:.06em;
text-transform:uppercase;color:var(--muted)}
nav.toc a{display:block;padding:3px 6px;border-radius:4px;color:var(--fg);text-decoration:none}
nav.toc a:hover{background:var(--panel);color:var(--accent)}
main{padding:18px 34px 60px;min-width:0}
h1{font-size:26px;margin:6px 0 2px}
h2{font-size:20px;margin:0 0 10px}
h3{font-size:15px;margin:18px 0 6px}
.sub{color:var(--muted);margin:0 0 14px}
code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--panel);
padding:0 4px;border-radius:3px;overflow-wrap:anywhere}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:10px;
margin:12px 0}
.card{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:9px 12px}
.card .k{font-size:12px;color:var(--muted)}
.card .v{font-size:17px;font-weight:600;overflow-wrap:anywhere}
.card.wide{grid-column:span 2}
.card.wide .v{font-size:14px}
.card .d{font-size:12px;color:var(--muted)}
section{border-top:1px solid var(--line);padding-top:14px;margin-top:30px}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--panel);font-weight:600;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.kv th{background:none;color:var(--muted);font-weight:500}
.scroll{overflow-x:auto;max-width:100%}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2";font-size:9px}
table.sortable th[aria-sort=descending]::after{content:" \\25BC";font-size:9px}
tr.chosen td{background:#EAF4FB}
td.model{white-space:nowrap}
td.model code{overflow-wrap:normal}
table.board{width:100%;min-width:600px;table-layout:fixed}
table.board th{white-space:normal;vertical-align:bottom}
table.board td{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
table.board col.c-rank{width:38px}
table.board col.c-model{width:206px}
table.board col.c-origin{width:96px}
table.board col.c-cv{width:132px}
table.board col.c-train{width:84px}
table.board col.c-time{width:122px}
table.board .badge{font-size:11px;line-height:17px;padding:0 6px;margin-left:4px}
@media (max-width:1120px){table.board col.c-train,table.board col.c-time{display:none}
table.board tr>:nth-child(5),table.board tr>:nth-child(6){display:none}}
small.sd{color:var(--muted);font-size:11px}
td.params{font-size:12px;color:var(--muted)}
table.board td.model code{font-size:12px}
td.params .note{color:var(--fg);font-style:italic}
td.kvs code{white-space:nowrap;display:inline-block;margin:1px 0}
td.kvs .structure{font-weight:600;margin-bottom:2px}
p.counts{margin:4px 0;color:var(--muted)}
details.board-all{margin:0 0 12px}
details.board-all>summary{font-weight:500}
.figs{display:flex;flex-wrap:wrap;gap:18px 20px;align-items:flex-start;margin:8px 0}
.figs.row{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));align-items:start}
.figs.row>*{min-width:0;justify-self:start}
figure{margin:0;max-width:100%;display:table}
figure svg,figure img{display:block;max-width:100%;height:auto}
figcaption{display:table-caption;caption-side:bottom;font-size:12px;color:var(--muted);
padding-top:2px}
.missing{color:var(--muted);font-style:italic}
.section-error{color:var(--err)}
.badge{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;font-weight:600;
line-height:20px;color:#fff;background:var(--muted);vertical-align:1px}
.b-error{background:var(--err)}.b-warning{background:var(--warn)}.b-info{background:var(--info)}
.b-ok{background:var(--ok)}.b-muted{background:#8a939c}
.finding{border:1px solid var(--line);border-left:5px solid var(--muted);border-radius:6px;
padding:8px 14px;margin:10px 0}
.finding h3{margin:4px 0}
.finding p{margin:4px 0}
.finding .fix{font-weight:500}
.chips span{display:inline-block;background:var(--panel);border:1px solid var(--line);
border-radius:12px;padding:0 9px;margin:0 6px 4px 0;font-size:12.5px}
.verdict{font-size:15px;margin:6px 0 10px}
table.cm td{text-align:center;min-width:64px;font-variant-numeric:tabular-nums}
table.cm td small{display:block;font-size:11px;opacity:.85}
table.cm th.axis{background:none;color:var(--muted);font-weight:500}
.ok{color:var(--ok);font-weight:600}.bad{color:var(--err);font-weight:600}
details summary{cursor:pointer;color:var(--accent);margin:4px 0}
footer{margin-top:40px;color:var(--muted);font-size:12px}
@media (max-width:900px){.layout{grid-template-columns:1fr}nav.toc{display:none}
main{padding:14px}}
@media print{nav.toc{display:none}.layout{display:block}section{break-inside:avoid-page}}
"""

#: click a header of a ``table.sortable`` to sort by it (numbers by ``data-v``)
JS = """
(function(){
function key(cell){var v=cell.getAttribute("data-v");return v===null?cell.textContent.trim():v;}
document.querySelectorAll("table.sortable th").forEach(function(th){
th.addEventListener("click",function(){
var table=th.closest("table"),body=table.tBodies[0];
var col=Array.prototype.indexOf.call(th.parentNode.children,th);
var asc=th.getAttribute("aria-sort")!=="ascending";
table.querySelectorAll("th").forEach(function(h){h.removeAttribute("aria-sort");});
th.setAttribute("aria-sort",asc?"ascending":"descending");
var rows=Array.prototype.slice.call(body.rows);
rows.sort(function(a,b){
var x=key(a.cells[col]),y=key(b.cells[col]),nx=parseFloat(x),ny=parseFloat(y);
var r;
if(isNaN(nx)||isNaN(ny)){r=isNaN(nx)-isNaN(ny)||x.localeCompare(y);}else{r=nx-ny;}
return asc?r:-r;});
rows.forEach(function(r){body.appendChild(r);});
});});
})();
"""

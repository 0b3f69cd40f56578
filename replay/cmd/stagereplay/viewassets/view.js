// stagereplay view: everything comes from this server's JSON; nothing else is fetched.
"use strict";
const $ = (s) => document.querySelector(s);
const svgNS = "http://www.w3.org/2000/svg";

async function get(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(url + ": " + (await r.text()));
  return r.json();
}

function clock(iso) {
  return new Date(iso).toISOString().slice(11, 19);
}

function fill(list, items, text) {
  list.replaceChildren(...items.map((it) => {
    const li = document.createElement("li");
    li.textContent = text(it);
    return li;
  }));
}

let meta, start, end, svg, x0, x1, seq = 0, historyEntries = [];

// x of time t (ms) in the timeline's own coordinates.
function xOf(t) {
  return x0 + (x1 - x0) * (t - start) / Math.max(end - start, 1);
}

function timeAt(value) {
  return new Date(start + Number(value) * 1000);
}

async function show() {
  const slider = $("#slider");
  const t = Number(slider.value) >= Number(slider.max) ? new Date(end) : timeAt(slider.value);
  const iso = t.toISOString();
  const mine = ++seq;
  $("#at").textContent = iso.replace("T", " ").replace(".000Z", " UTC");
  // The whole second, as roster --at HH:MM:SS counts it.
  const r = await get("api/roster?at=" + encodeURIComponent(iso.slice(0, 19) + ".999999999Z"));
  if (mine !== seq) return; // a later move of the slider wins
  fill($("#onstage"), r.onStage, (u) => u);
  const st = r.stage;
  const invited = r.participants.filter((p) => p.invited).map((p) => p.user);
  const coHosts = r.participants.filter((p) => p.coHost).map((p) => p.user);
  fill($("#accepted"), r.accepted, (u) => u + (invited.includes(u) ? " (invited)" : ""));
  $("#stage-state").textContent = "Stage " + st.phase.toLowerCase() + (st.since ? " since " + clock(st.since) : "") +
    "; requests " + (st.requestsOpen ? "open" : "closed since " + clock(st.requestsSince)) +
    (coHosts.length ? "; co-hosts: " + coHosts.join(", ") : "");
  $("#stage-state").dataset.phase = st.phase;
  fill($("#queue"), r.requests, (q) => q.user + " since " + clock(q.requestedAt));
  const wl = r.waitlist || [];
  $("#waitlist-h").hidden = wl.length === 0;
  fill($("#waitlist"), wl, (w) => w.user);
  $("#onstage-count").textContent = r.onStage.length;
  $("#accepted-count").textContent = r.accepted.length;
  $("#queue-count").textContent = r.requests.length;
  $("#roster-at").textContent = clock(iso);
  $("#roster-version").textContent = "(version " + r.version + ")";
  const roster = $("#roster");
  roster.dataset.at = iso;
  roster.dataset.version = r.version;
  const cursor = svg && svg.querySelector("#cursor");
  if (cursor) {
    const x = xOf(t.getTime());
    cursor.setAttribute("x1", x);
    cursor.setAttribute("x2", x);
  }
  for (const li of $("#history").children) {
    li.className = Date.parse(li.dataset.time) <= t.getTime() ? "past" : "future";
  }
}

async function showHistory() {
  const u = $("#user").value;
  historyEntries = await get("api/history" + (u ? "?user=" + encodeURIComponent(u) : ""));
  fill($("#history"), historyEntries, (e) => clock(e.time) + " v" + e.version + " " + e.text);
  [...$("#history").children].forEach((li, i) => { li.dataset.time = historyEntries[i].time; li.dataset.version = historyEntries[i].version; });
  $("#history").dataset.user = u;
  await show();
}

function placeFindings(findings) {
  const ok = findings.length === 0;
  const verdict = $("#verdict");
  verdict.textContent = ok ? "clean: versions continuous, hash chain intact, every event legal, time in order"
    : findings.length + " findings (" + findings.filter((f) => f.cause).length + " causes)";
  verdict.className = ok ? "verdict-ok" : "verdict-bad";
  fill($("#findings"), findings, (f) => (f.version ? "v" + f.version + " " : "") + f.kind + ": " + f.reason);
  [...$("#findings").children].forEach((li, i) => { if (!findings[i].cause) li.className = "follows"; });
  if (!svg) return;
  const top = Number(svg.dataset.top), bottom = Number(svg.dataset.bottom);
  for (const f of findings) {
    if (!f.time) continue;
    const x = xOf(Date.parse(f.time));
    const g = document.createElementNS(svgNS, "g");
    g.setAttribute("class", "finding");
    g.setAttribute("data-kind", "finding-" + f.kind);
    g.setAttribute("data-version", f.version);
    const line = document.createElementNS(svgNS, "line");
    Object.entries({ x1: x, x2: x, y1: top, y2: bottom, stroke: "#c62828", "stroke-width": 1, "stroke-dasharray": "2 2" })
      .forEach(([k, v]) => line.setAttribute(k, v));
    const mark = document.createElementNS(svgNS, "path");
    mark.setAttribute("d", `M${x - 6} ${top - 10}h12l-6 10z`);
    mark.setAttribute("fill", "#c62828");
    const title = document.createElementNS(svgNS, "title");
    title.textContent = "v" + f.version + " " + f.kind + ": " + f.reason;
    g.append(line, mark, title);
    svg.append(g);
  }
}

async function init() {
  meta = await get("api/meeting");
  start = Date.parse(meta.start);
  end = Date.parse(meta.end);
  document.title = "stagereplay view: " + meta.meeting;
  $("#title").textContent = "Meeting " + meta.meeting;
  $("#summary").textContent = meta.events + " events, versions 1-" + meta.version + ", " +
    meta.start.replace("T", " ").replace("Z", "") + " to " + clock(meta.end) + " UTC; hosts: " + meta.hosts.join(", ");
  const text = await (await fetch("timeline.svg", { cache: "no-store" })).text();
  $("#timeline").innerHTML = text.replace(/^<\?xml[^>]*>\s*/, "");
  svg = $("#timeline svg");
  x0 = Number(svg.dataset.x0);
  x1 = Number(svg.dataset.x1);
  const cursor = document.createElementNS(svgNS, "line");
  cursor.id = "cursor";
  Object.entries({ y1: svg.dataset.top, y2: svg.dataset.bottom, stroke: "#000", "stroke-width": 1.5 })
    .forEach(([k, v]) => cursor.setAttribute(k, v));
  svg.append(cursor);
  const slider = $("#slider");
  slider.max = Math.ceil((end - start) / 1000);
  // ?t=SECONDS (from the start) and ?user=U make a view that can be linked to.
  const params = new URLSearchParams(location.search);
  slider.value = params.has("t") ? params.get("t") : slider.max;
  slider.addEventListener("input", () => show().catch(fail));
  for (const u of meta.users) {
    const o = document.createElement("option");
    o.value = o.textContent = u;
    $("#user").append(o);
  }
  if (meta.users.includes(params.get("user"))) $("#user").value = params.get("user");
  $("#user").addEventListener("change", () => showHistory().catch(fail));
  placeFindings(await get("api/findings"));
  await showHistory();
  document.body.dataset.ready = "1";
}

function fail(err) {
  document.body.dataset.error = String(err);
  $("#summary").textContent = "error: " + err;
}

init().catch(fail);

// The anda inspector's page: it asks its server for HTML fragments (every
// read runs on the memory's read-only path) and follows the change feed.
// No other script, no style or font from anywhere else.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let shown = null; // {id, asOf} of the card on screen
  let headSeq = 0;

  async function fragment(path) {
    const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "text/html" } });
    const text = await response.text();
    if (response.status === 401) {
      return '<div class="error"><b>401</b>: this server needs its key. Reload the page and give the key as the password.</div>';
    }
    return text;
  }

  async function search(params) {
    $("hits").innerHTML = await fragment("api/search?" + new URLSearchParams(params));
  }

  async function openCard(id, asOf) {
    const params = { id: id };
    if (asOf !== undefined && asOf !== null && asOf !== "") params.as_of = asOf;
    shown = { id: id, asOf: params.as_of === undefined ? null : String(params.as_of) };
    $("card").innerHTML = await fragment("api/card?" + new URLSearchParams(params));
    const hash = "#" + id + (shown.asOf === null ? "" : "@" + shown.asOf);
    if (location.hash !== hash) history.replaceState(null, "", hash);
    $("card").scrollTop = 0;
  }

  document.addEventListener("click", (event) => {
    const target = event.target.closest("[data-concept], [data-type]");
    if (!target) return;
    event.preventDefault();
    if (target.dataset.concept) openCard(target.dataset.concept, target.dataset.asOf);
    else search({ type: target.dataset.type });
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    const target = event.target.closest("g[data-concept]");
    if (target) openCard(target.dataset.concept, target.dataset.asOf);
  });
  $("search").addEventListener("submit", (event) => {
    event.preventDefault();
    search({ q: $("term").value });
  });

  function line(envelope) {
    const li = document.createElement("li");
    li.className = "change";
    li.dataset.seq = envelope.space_seq;
    const seq = document.createElement("span");
    seq.className = "seq";
    seq.textContent = "seq " + envelope.space_seq;
    const when = document.createElement("span");
    when.className = "when";
    when.textContent = " " + envelope.committed_at + " ";
    li.append(seq, when);
    for (const change of envelope.changes || []) {
      const item = document.createElement("a");
      item.textContent = change.op + " " + change.kind + " " + change.id + " ";
      if (change.kind === "concept") {
        item.dataset.concept = change.id;
        item.href = "#" + change.id;
      }
      li.append(item);
    }
    return li;
  }

  function follow(since) {
    const list = $("changes").querySelector("ol");
    const feed = new EventSource("api/changes?since=" + since);
    feed.addEventListener("open", () => {
      $("live").textContent = "live";
      $("live").className = "status";
    });
    feed.addEventListener("error", () => {
      $("live").textContent = "reconnecting…";
      $("live").className = "status offline";
    });
    feed.addEventListener("change", (event) => {
      const envelope = JSON.parse(event.data);
      headSeq = Math.max(headSeq, envelope.space_seq);
      list.prepend(line(envelope));
      while (list.children.length > 50) list.lastChild.remove();
      const touched = (envelope.changes || []).some((c) => shown && c.id === shown.id);
      if (touched && shown.asOf === null) openCard(shown.id, null);
    });
  }

  async function start() {
    $("primer").innerHTML = await fragment("api/primer");
    const primer = $("primer").querySelector("[data-seq]");
    headSeq = primer ? Number(primer.dataset.seq) : 0;
    follow(Math.max(0, headSeq - 20));
    const wanted = location.hash.slice(1);
    if (wanted) {
      const [id, asOf] = decodeURIComponent(wanted).split("@");
      openCard(id, asOf);
    }
  }
  start();
})();

// The agent panel inside Chatwoot (a Dashboard App). Chatwoot posts the open conversation as
// JSON.stringify({event: "appContext", data: {conversation, contact, currentAgent}}) to this frame, on load
// and whenever we post "chatwoot-dashboard-app:fetch-info". Only messages from Chatwoot's origin count.
// Everything is written with textContent: nothing from the data is ever parsed as HTML.
(function () {
  "use strict";
  var chatwootOrigin = document.body.getAttribute("data-chatwoot-origin") || "";
  var token = new URLSearchParams(window.location.hash.slice(1)).get("token") || "";
  var current = null; // {id, accountId, contactId}

  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function status(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "error" : "";
  }
  function api(path, method) {
    var url = new URL("panel/api/conversations/" + path, window.location.href);
    url.searchParams.set("account_id", current.accountId);
    if (current.contactId) url.searchParams.set("contact_id", current.contactId);
    return fetch(url, {method: method || "GET", headers: {"Authorization": "Bearer " + token},
                       credentials: "omit", cache: "no-store"})
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
          return body;
        });
      });
  }

  function fill(sectionId, rows, render) {
    var section = $(sectionId), items = section.querySelector(".items");
    items.replaceChildren();
    rows.forEach(function (row) { items.appendChild(render(row)); });
    if (!rows.length) items.appendChild(el("p", "None.", "muted"));
    section.hidden = false;
  }

  function booking(b) {
    var item = el("div", null, "item");
    var head = el("div");
    head.appendChild(el("strong", b.property || "Unknown property"));
    head.appendChild(document.createTextNode(" · " + b.code + " · " + b.status + " "));
    if (b.stage) head.appendChild(el("span", b.stage, "tag"));
    item.appendChild(head);
    item.appendChild(el("div", (b.check_in || "?") + " → " + (b.check_out || "?") +
                        (b.guests ? " · " + b.guests + " guest(s)" : "")));
    item.appendChild(el("div", "Access details: " + b.access, "muted"));
    return item;
  }

  function call(c) {
    var item = el("div", null, "item");
    item.appendChild(el("div", (c.started_at || "") + " · " + (c.direction || "call") + " · " + c.outcome +
                        (c.duration_s ? " · " + c.duration_s + " s" : "") + (c.agent ? " · " + c.agent : "")));
    [["Recording", c.recording], ["Voicemail", c.voicemail]].forEach(function (pair) {
      if (!pair[1] || !/^https:\/\//.test(pair[1])) return;
      var link = el("a", pair[0]);
      link.href = pair[1];
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      item.appendChild(link);
      item.appendChild(document.createTextNode(" "));
    });
    if (c.summary) item.appendChild(el("div", c.summary, "muted"));
    return item;
  }

  function answer(a) {
    var item = el("div", null, "item");
    item.appendChild(el("div", a.at + " · " + a.mode + " · " + a.outcome, "muted"));
    item.appendChild(el("div", "Q: " + a.question));
    item.appendChild(el("div", a.answer ? "A: " + a.answer : "(no answer: handed off)", "answer"));
    if (a.sources.length) item.appendChild(el("div", "Sources: " + a.sources.join("; "), "muted"));
    return item;
  }

  function render(view) {
    fill("bookings", view.bookings, booking);
    fill("answers", view.answers, answer);
    fill("calls", view.calls, call);
    fill("gaps", view.gaps || [], function (q) { return el("div", q, "item"); });
    $("handoff").hidden = !view.handoff_reason;
    $("handoff").querySelector(".reason").textContent =
      view.handoff_reason ? view.handoff_reason + (view.handoff_at ? " (" + view.handoff_at + ")" : "") : "";
    $("bot").hidden = false;
    $("bot-state").textContent = view.paused
      ? "Paused from this panel: the bot treats this conversation as handled by a person."
      : view.human
        ? "Standing down: people handle this conversation. Resume to give it back to the bot."
        : "Active: the bot answers while the conversation is pending and no agent has taken it.";
    $("pause").disabled = view.paused;
    $("resume").disabled = !view.human;
    status("Conversation #" + view.conversation_id, false);
  }

  function load() {
    status("Loading conversation #" + current.id + "…", false);
    return api(current.id).then(render).catch(function (err) { status("Cannot load: " + err.message, true); });
  }

  function toggle(action) {
    return api(current.id + "/" + action, "POST").then(load)
      .catch(function (err) { status("Cannot " + action + ": " + err.message, true); });
  }

  window.addEventListener("message", function (event) {
    if (!chatwootOrigin || event.origin !== chatwootOrigin) {
      status("Ignored a message from " + event.origin + ": only Chatwoot (" + chatwootOrigin + ") may talk to " +
             "this panel.", true);
      return;
    }
    var message;
    try { message = typeof event.data === "string" ? JSON.parse(event.data) : event.data; } catch (e) { return; }
    if (!message || message.event !== "appContext" || !message.data || !message.data.conversation) return;
    var conv = message.data.conversation, contact = message.data.contact || {};
    var sender = (conv.meta && conv.meta.sender) || {};
    current = {id: conv.id, accountId: conv.account_id, contactId: contact.id || sender.id || ""};
    if (!token) return;
    load();
  });

  $("pause").addEventListener("click", function () { toggle("pause"); });
  $("resume").addEventListener("click", function () { toggle("resume"); });

  if (!token) {
    status("This panel has no token: open it from Chatwoot's dashboard app that `sidecar chatwoot setup` " +
           "created (its URL ends with #token=…).", true);
  } else if (window.parent !== window && chatwootOrigin) {
    window.parent.postMessage("chatwoot-dashboard-app:fetch-info", chatwootOrigin);
  }
})();

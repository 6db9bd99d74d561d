// The chat page: log in, contacts with presence, one-to-one chat, rooms.
//
// One message, from the textarea to the socket: the compose form's submit
// handler (sendMessage below) builds <message type='chat'><body>…</body></message>
// with stanza(), and XmppClient.send (xmpp.js) writes it as one WebSocket
// message. Incoming stanzas come back through XmppClient.received as "stanza"
// events, handled by onStanza.
//
// A drop (the socket closes, not by "Log out") keeps the chat on screen and
// logs in again by itself (reconnect.js); see docs/web-client.md.

import { Reconnector, reconnectVerdict } from "./reconnect.js";
import { Rooms } from "./rooms.js";
import { LoginError, NS, XmppClient, bare, newId, stanza, xml } from "./xmpp.js";

const $ = (id) => document.getElementById(id);

let client = null; // the session, while it is logged in
let connecting = null; // a session logging in again after a drop
// What the user typed at login, to log in again after a drop: this page's
// memory only (never localStorage), forgotten at "Log out".
let credentials = null;
let droppedAt = null; // when the last drop happened: rooms ask for the history since
const contacts = new Map(); // bare JID -> { name, subscription, online: Set of resources }
const conversations = new Map(); // bare JID or room -> [{ from: "me" | "them", text, nick }]
const rooms = new Rooms();
const requests = new Set(); // bare JIDs asking to see our presence
let current = null; // the bare JID or room we are chatting in

function websocketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/xmpp-websocket`;
}

// ---- logging in and out

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  $("login-button").disabled = true;
  credentials = { address: $("jid").value.trim(), password: $("password").value };
  try {
    await startSession(credentials);
    $("login").hidden = true;
    $("main").hidden = false;
  } catch (error) {
    credentials = null;
    $("login-error").textContent = error instanceof LoginError ? error.message : `Login failed: ${error.message ?? error}`;
  } finally {
    $("login-button").disabled = false;
  }
});

// Log in, fetch the roster, then say we are here (RFC 6121 §4.2: initial
// presence after the roster) and join again the rooms we were in. Only then
// does the page listen for the end of the session: a session that fails
// before that is the caller's to report (the form, or the next retry).
async function startSession({ address, password }) {
  const session = new XmppClient(websocketUrl());
  connecting = session;
  try {
    const jid = await session.login(address, password);
    session.addEventListener("stanza", (e) => onStanza(e.detail));
    client = session;
    $("me").textContent = bare(jid);
    await loadRoster();
    if (!session.isOpen) throw new LoginError("The connection closed.", session.streamError);
    session.send(stanza("presence", {}));
    if (droppedAt) rooms.rejoin(session, droppedAt);
    session.addEventListener("closed", (e) => onClosed(session, e.detail));
  } catch (error) {
    session.close();
    if (client === session) client = null;
    throw error;
  } finally {
    if (connecting === session) connecting = null;
  }
  setOnline(true);
}

$("logout").addEventListener("click", () => {
  reconnector.stop();
  if (client) client.close(); // "closed" follows: to the login form
  else showLogin(""); // reconnecting: nothing to close but the attempt
  connecting?.close();
});

const reconnector = new Reconnector({
  attempt: () => startSession(credentials),
  onAttempt: (attempt, delayMs) => showStatus(`Reconnecting… (attempt ${attempt})`, attempt, delayMs),
  onBack: () => showStatus(null),
  onGiveUp: (message) => showLogin(message),
});
window.addEventListener("online", () => reconnector.now()); // the network is back: no need to wait

function onClosed(session, detail) {
  if (client !== session) return;
  client = null;
  const verdict = reconnectVerdict(detail);
  if (verdict !== null) return showLogin(verdict);
  // A drop: no one is known to be online any more, and we are in no room.
  droppedAt = new Date();
  for (const contact of contacts.values()) contact.online.clear();
  rooms.dropped();
  setOnline(false);
  reconnector.start();
}

function showLogin(message) {
  reconnector.stop();
  credentials = null;
  droppedAt = null;
  showStatus(null);
  $("main").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  contacts.clear();
  conversations.clear();
  requests.clear();
  rooms.rooms.clear();
  current = null;
  setOnline(false);
}

// Offline, nothing can be sent: the composer and the forms wait (what is
// typed stays in the textarea) rather than lose what they were given.
function setOnline(online) {
  document.body.dataset.online = String(online);
  for (const control of document.querySelectorAll("#add-contact button, #join-room button, #leave")) control.disabled = !online;
  $("text").disabled = $("send").disabled = !online || !current;
  render();
}

function showStatus(text, attempt, delayMs) {
  const status = $("connection-status");
  status.hidden = !text;
  status.textContent = text ?? "";
  status.dataset.state = text ? "reconnecting" : "connected";
  status.dataset.attempt = attempt ?? "";
  status.title = delayMs ? `next try in ${Math.round(delayMs / 1000)} s` : "";
}

// ---- the roster (RFC 6121 §2)

// Again after a reconnect: contacts removed meanwhile go, unless we chat with them.
async function loadRoster() {
  const result = await client.iq("get", xml("query", { xmlns: NS.roster }));
  const items = [...result.getElementsByTagNameNS(NS.roster, "item")];
  const listed = new Set(items.map((item) => item.getAttribute("jid")));
  for (const jid of contacts.keys()) if (!listed.has(jid) && !conversations.has(jid)) contacts.delete(jid);
  for (const item of items) rosterItem(item);
  render();
}

function rosterItem(item) {
  const jid = item.getAttribute("jid");
  if (item.getAttribute("subscription") === "remove") {
    contacts.delete(jid);
    return;
  }
  const known = contacts.get(jid) ?? { online: new Set() };
  contacts.set(jid, { ...known, name: item.getAttribute("name") || jid, subscription: item.getAttribute("subscription") });
}

$("add-contact").addEventListener("submit", (event) => {
  event.preventDefault();
  if (!client?.isOpen) return;
  const jid = $("add-jid").value.trim();
  client.iq("set", xml("query", { xmlns: NS.roster }, xml("item", { jid })));
  client.send(stanza("presence", { to: jid, type: "subscribe" }));
  $("add-jid").value = "";
});

function answerRequest(jid, accept) {
  if (!client?.isOpen) return;
  requests.delete(jid);
  client.send(stanza("presence", { to: jid, type: accept ? "subscribed" : "unsubscribed" }));
  const subscription = contacts.get(jid)?.subscription;
  if (accept && subscription !== "to" && subscription !== "both") {
    client.send(stanza("presence", { to: jid, type: "subscribe" })); // and see theirs in turn
  }
  render();
}

// ---- what arrives

function onStanza(element) {
  const kind = element.localName;
  const from = element.getAttribute("from") ?? "";
  const type = element.getAttribute("type");
  if (rooms.has(bare(from))) {
    onRoomStanza(element, kind);
  } else if (kind === "message") {
    const body = element.getElementsByTagNameNS(NS.client, "body")[0];
    if (body && type !== "error") addMessage(bare(from), "them", body.textContent);
  } else if (kind === "presence") {
    onPresence(bare(from), from.split("/")[1] ?? "", type);
  } else if (kind === "iq" && (type === "get" || type === "set")) {
    onIq(element, from, type);
  }
}

function onPresence(jid, resource, type) {
  if (jid === bare(client.jid)) return; // our own other devices
  if (type === "subscribe") {
    requests.add(jid);
  } else if (type === null || type === "unavailable") {
    const contact = contacts.get(jid) ?? { name: jid, subscription: "none", online: new Set() };
    if (type === null) contact.online.add(resource);
    else contact.online.delete(resource);
    contacts.set(jid, contact);
  }
  render();
}

function onIq(element, from, type) {
  const query = element.getElementsByTagNameNS(NS.roster, "query")[0];
  // A roster push comes from our own account (RFC 6121 §2.1.6).
  if (type === "set" && query && (!from || bare(from) === bare(client.jid))) {
    for (const item of query.getElementsByTagNameNS(NS.roster, "item")) rosterItem(item);
    client.send(stanza("iq", { type: "result", id: element.getAttribute("id"), to: from || undefined }));
    render();
    return;
  }
  // Anything else we do not understand (RFC 6120 §8.2.3).
  client.send(stanza("iq", { type: "error", id: element.getAttribute("id"), to: from },
    xml("error", { type: "cancel" }, xml("service-unavailable", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }))));
}

// ---- rooms (XEP-0045)

$("join-room").addEventListener("submit", (event) => {
  event.preventDefault();
  if (!client?.isOpen) return;
  const room = rooms.join(client, $("room-name").value.trim(), bare(client.jid).split("@")[1]);
  $("room-name").value = "";
  if (!conversations.has(room)) conversations.set(room, []);
  openChat(room);
});

$("leave").addEventListener("click", () => {
  if (!client?.isOpen) return;
  rooms.leave(client, current);
  current = null;
  document.body.classList.remove("chatting");
  render();
});

function onRoomStanza(element, kind) {
  if (kind === "presence") {
    const refused = rooms.presence(element);
    if (refused) {
      addMessage(bare(element.getAttribute("from")), "them", `Could not join: ${refused}`);
      return;
    }
  } else if (kind === "message" && element.getAttribute("type") === "groupchat") {
    const said = rooms.message(element);
    if (said) addMessage(said.room, said.mine ? "me" : "them", said.text, said.nick);
  }
  render();
}

// ---- chatting

function addMessage(jid, from, text, nick) {
  if (!conversations.has(jid)) conversations.set(jid, []);
  conversations.get(jid).push({ from, text, nick });
  if (!rooms.has(jid) && !contacts.has(jid)) contacts.set(jid, { name: jid, subscription: "none", online: new Set() });
  const unreadIn = contacts.get(jid) ?? rooms.rooms.get(jid);
  if (from === "them" && jid !== current && unreadIn) unreadIn.unread = (unreadIn.unread ?? 0) + 1;
  render();
}

function openChat(jid) {
  current = jid;
  (contacts.get(jid) ?? rooms.rooms.get(jid)).unread = 0;
  document.body.classList.add("chatting"); // on a phone: the chat replaces the contacts
  $("text").disabled = $("send").disabled = !client?.isOpen;
  render();
  $("text").focus();
}

$("back").addEventListener("click", () => document.body.classList.remove("chatting"));

function sendMessage() {
  const text = $("text").value;
  if (!current || !text.trim() || !client?.isOpen) return; // offline: it stays in the textarea
  $("text").value = "";
  if (rooms.has(current)) return rooms.say(client, current, text); // shown when the room echoes it
  client.send(stanza("message", { to: current, type: "chat", id: newId() }, xml("body", {}, text)));
  addMessage(current, "me", text);
}

$("compose").addEventListener("submit", (event) => {
  event.preventDefault();
  sendMessage();
});
$("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    sendMessage();
  }
});

// ---- drawing: the whole state, each time (a few dozen contacts at most)

function element(tag, properties = {}, ...children) {
  const node = Object.assign(document.createElement(tag), properties);
  node.append(...children);
  return node;
}

function render() {
  $("requests").replaceChildren(...[...requests].map((jid) => element("li", { className: "request" },
    element("span", { textContent: `${jid} wants to see your presence` }),
    element("button", { textContent: "Accept", onclick: () => answerRequest(jid, true) }),
    element("button", { textContent: "Decline", onclick: () => answerRequest(jid, false) }))));

  const sorted = [...contacts].sort(([a], [b]) => a.localeCompare(b));
  $("roster").replaceChildren(...sorted.map(([jid, contact]) => {
    const online = contact.online.size > 0;
    const item = element("li", { className: `contact ${online ? "online" : "offline"}${jid === current ? " current" : ""}` },
      element("span", { className: "dot", title: online ? "online" : "offline" }),
      element("span", { className: "name", textContent: contact.name }),
      element("span", { className: "unread", textContent: contact.unread ? String(contact.unread) : "" }));
    item.dataset.jid = jid;
    item.dataset.presence = online ? "available" : "unavailable";
    item.addEventListener("click", () => openChat(jid));
    return item;
  }));

  $("rooms").replaceChildren(...rooms.shown().map(([room, state]) => {
    const item = element("li", { className: `room${room === current ? " current" : ""}` },
      element("span", { className: "name", textContent: `# ${room.split("@")[0]}` }),
      element("span", { className: "count", textContent: state.joined ? String(state.occupants.size) : "…" }),
      element("span", { className: "unread", textContent: state.unread ? String(state.unread) : "" }));
    item.dataset.room = room;
    item.dataset.joined = String(state.joined);
    item.addEventListener("click", () => openChat(room));
    return item;
  }));

  const room = rooms.rooms.get(current);
  $("chat-title").textContent = current ?? "Pick a contact or a room";
  $("leave").hidden = !room;
  $("occupants").textContent = room ? [...room.occupants].sort().join(", ") : "";
  $("messages").replaceChildren(...(conversations.get(current) ?? []).map(({ from, text, nick }) =>
    element("li", { className: `message ${from}` },
      ...(nick && from === "them" ? [element("span", { className: "nick", textContent: nick })] : []), text)));
  $("messages").scrollTop = $("messages").scrollHeight;
}

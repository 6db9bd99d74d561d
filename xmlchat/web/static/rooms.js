// Rooms: multi-user chat (XEP-0045). A room is a JID (lobby@conference.localhost);
// we are in it as room/nick, and every occupant's presence and every message
// comes from room/their-nick.

import { bare, stanza, xml } from "./xmpp.js";

const MUC = "http://jabber.org/protocol/muc";
const MUC_USER = `${MUC}#user`;

export class Rooms {
  constructor() {
    this.rooms = new Map(); // room JID -> { nick, occupants: Set of nicks, subject, joined }
  }

  has(jid) {
    return this.rooms.has(jid);
  }

  // The rooms to list: joined, or joining; not those we are leaving.
  shown() {
    return [...this.rooms].filter(([, state]) => !state.leaving);
  }

  // XEP-0045 §7.2: presence to room/nick with an <x/> in the MUC namespace.
  join(client, name, domain) {
    const room = name.includes("@") ? name : `${name}@conference.${domain}`;
    const nick = bare(client.jid).split("@")[0];
    this.rooms.set(room, { nick, occupants: new Set(), subject: "", joined: false });
    client.send(stanza("presence", { to: `${room}/${nick}` }, xml("x", { xmlns: MUC })));
    return room;
  }

  // The connection dropped: the server took us out of every room (our
  // session ended), so no one is known to be there any more.
  dropped() {
    for (const [room, state] of this.rooms) {
      if (state.leaving) this.rooms.delete(room);
      state.joined = false;
      state.occupants.clear();
    }
  }

  // Logged in again: join every room again with the nick we had (§7.2),
  // asking only for the history since the drop (§7.2.14), which is what
  // the screen does not show yet. `since` is the browser's clock: one that
  // runs behind the server's shows a few messages twice, one ahead misses some.
  rejoin(client, since) {
    for (const [room, state] of this.rooms) {
      const history = xml("history", { since: since.toISOString() }); // XEP-0082, UTC
      client.send(stanza("presence", { to: `${room}/${state.nick}` }, xml("x", { xmlns: MUC }, history)));
    }
  }

  // XEP-0045 §7.14: unavailable presence to our own occupant JID.
  leave(client, room) {
    const state = this.rooms.get(room);
    state.leaving = true; // forgotten when the room confirms (status 110, unavailable)
    client.send(stanza("presence", { to: `${room}/${state.nick}`, type: "unavailable" }));
  }

  say(client, room, text) {
    // The room sends our message back to us too (§7.4): it is shown then.
    client.send(stanza("message", { to: room, type: "groupchat" }, xml("body", {}, text)));
  }

  // A presence from a room we are in: an occupant came, left, or we joined.
  // Returns an error text when the room refused us, else null.
  presence(element) {
    const [room, nick] = splitOccupant(element.getAttribute("from"));
    const state = this.rooms.get(room);
    if (!state) return null;
    const type = element.getAttribute("type");
    if (type === "error") {
      this.rooms.delete(room);
      const condition = element.getElementsByTagName("error")[0]?.firstElementChild?.localName ?? "error";
      return `${room}: ${condition}`;
    }
    if (type === "unavailable") state.occupants.delete(nick);
    else state.occupants.add(nick);
    // Status 110: this presence is about us; the join is complete (§7.2.2).
    const codes = [...element.getElementsByTagNameNS(MUC_USER, "status")].map((s) => s.getAttribute("code"));
    if (codes.includes("110") && type === "unavailable") this.rooms.delete(room);
    if (codes.includes("110")) {
      state.joined = type !== "unavailable";
      state.nick = nick; // the room may have changed it (§7.2.9)
    }
    return null;
  }

  // A groupchat message: { room, nick, text, mine } for a body, null for a subject change.
  message(element) {
    const [room, nick] = splitOccupant(element.getAttribute("from"));
    const state = this.rooms.get(room);
    if (!state) return null;
    const subject = element.getElementsByTagName("subject")[0];
    const body = element.getElementsByTagName("body")[0];
    if (subject && !body) state.subject = subject.textContent;
    if (!body) return null;
    return { room, nick, text: body.textContent, mine: nick === state.nick };
  }
}

function splitOccupant(jid) {
  const slash = jid.indexOf("/");
  return slash < 0 ? [jid, ""] : [jid.slice(0, slash), jid.slice(slash + 1)];
}

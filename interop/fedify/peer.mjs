// An independent ActivityPub peer built on Fedify, for the xmpp-ap-bridge tests.
//
// Usage: node peer.mjs --port PORT [--user fed]
//
// Serves one actor (`/users/<user>`) on http://127.0.0.1:PORT with Fedify's own signature handling (it
// refuses unsigned or badly signed inbox POSTs), records every verified inbox activity, answers Follow
// with Accept, and exposes a small control API the Rust tests drive:
//
//   GET  /_control/events                 every recorded event (JSON array)
//   POST /_control/follow     {target}    Follow the actor at URL `target`
//   POST /_control/unfollow   {target}    Undo that Follow
//   POST /_control/post       {content}   Create(Note) to the followers
//   POST /_control/reply      {target, inReplyTo, content}         Create(Note) replying to an object
//   POST /_control/like       {target, object}                     Like
//   POST /_control/react      {target, object, emoji}              EmojiReact
//   POST /_control/undo-like  {target, object}                     Undo(Like)
//   POST /_control/update     {id, content}  Update(Note) of one of our notes (same id) to the followers
//   POST /_control/delete     {id}           Delete(Tombstone) of one of our notes to the followers
//
// `target` is always an actor URL (Fedify's WebFinger client is https-only). One JSON line per event is
// also printed on stdout; the first line is {"event":"ready", ...}.

import http from "node:http";
import { Temporal } from "@js-temporal/polyfill";
import * as vocab from "@fedify/vocab";
import {
  createFederation,
  generateCryptoKeyPair,
  MemoryKvStore,
} from "@fedify/fedify";
import {
  Accept,
  Create,
  Delete,
  EmojiReact,
  Endpoints,
  Follow,
  Like,
  Note,
  Person,
  Tombstone,
  Undo,
  Update,
} from "@fedify/vocab";

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const port = Number(arg("port", "0"));
const user = arg("user", "fed");
if (!port) {
  console.error("usage: node peer.mjs --port PORT [--user NAME]");
  process.exit(2);
}
const origin = `http://127.0.0.1:${port}`;

const keyPairs = [await generateCryptoKeyPair("RSASSA-PKCS1-v1_5")];
const events = [];
const followers = new Map(); // actor id -> inbox URL
const notes = new Map(); // note id -> Note
let counter = 0;

function record(event) {
  events.push(event);
  process.stdout.write(JSON.stringify(event) + "\n");
}

const federation = createFederation({
  kv: new MemoryKvStore(),
  allowPrivateAddress: true,
  origin,
});

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== user) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: "Fedify test peer",
      inbox: ctx.getInboxUri(identifier),
      outbox: ctx.getOutboxUri(identifier),
      followers: ctx.getFollowersUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((k) => k.multikey),
    });
  })
  .setKeyPairsDispatcher(async (_ctx, identifier) =>
    identifier === user ? keyPairs : []
  );

federation.setObjectDispatcher(Note, "/notes/{id}", (_ctx, values) => {
  return notes.get(values.id) ?? null;
});

federation.setOutboxDispatcher("/users/{identifier}/outbox", async (ctx, identifier) => {
  if (identifier !== user) return null;
  const items = [...notes.values()].reverse().map(
    (note) =>
      new Create({
        id: new URL(`${note.id.href}#create`),
        actor: ctx.getActorUri(user),
        object: note,
      }),
  );
  return { items };
});

federation.setFollowersDispatcher("/users/{identifier}/followers", async (_ctx, identifier) => {
  if (identifier !== user) return null;
  return {
    items: [...followers.entries()].map(([id, inbox]) => ({
      id: new URL(id),
      inboxId: new URL(inbox),
    })),
  };
});

async function describe(type, ctx, activity) {
  let json = null;
  try {
    json = await activity.toJsonLd({ contextLoader: ctx.contextLoader });
  } catch (e) {
    json = { error: String(e) };
  }
  record({
    event: "inbox",
    type,
    id: activity.id?.href ?? null,
    actor: activity.actorId?.href ?? null,
    object: activity.objectId?.href ?? null,
    activity: json,
  });
}

const inbox = federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Follow, async (ctx, follow) => {
    await describe("Follow", ctx, follow);
    const follower = await follow.getActor(ctx);
    if (follower?.id == null || follower.inboxId == null) return;
    followers.set(follower.id.href, follower.inboxId.href);
    await ctx.sendActivity(
      { identifier: user },
      follower,
      new Accept({
        id: new URL(`${origin}/activities/${++counter}`),
        actor: ctx.getActorUri(user),
        object: follow,
      }),
    );
  })
  .on(Undo, async (ctx, a) => describe("Undo", ctx, a))
  .on(Accept, async (ctx, a) => describe("Accept", ctx, a))
  .on(Create, async (ctx, a) => describe("Create", ctx, a))
  .on(Like, async (ctx, a) => describe("Like", ctx, a))
  .on(EmojiReact, async (ctx, a) => describe("EmojiReact", ctx, a));
// The other activity types are recorded too.
for (const name of ["Update", "Delete", "Announce", "Reject", "Add", "Remove"]) {
  if (vocab[name]) inbox.on(vocab[name], async (ctx, a) => describe(name, ctx, a));
}
inbox.onError(async (_ctx, error) => {
  record({ event: "error", error: String(error?.stack ?? error) });
});

function ctxFor() {
  return federation.createContext(new URL(origin), undefined);
}

async function remoteActor(ctx, target) {
  const actor = await ctx.lookupObject(target);
  if (actor == null || actor.inboxId == null) {
    throw new Error(`cannot resolve actor ${target}`);
  }
  return actor;
}

const followIds = new Map(); // target -> Follow id
const likeIds = new Map(); // object -> Like id

const newId = () => new URL(`${origin}/activities/${++counter}`);

// Resolves the actor at `target` and sends it the activity `make(actor, me)` builds; returns the
// activity's id.
async function sendTo(target, make) {
  const ctx = ctxFor();
  const actor = await remoteActor(ctx, target);
  const activity = make(actor, ctx.getActorUri(user));
  await ctx.sendActivity({ identifier: user }, actor, activity);
  return activity.id.href;
}

// A new Note of ours, kept for the object and outbox dispatchers, and its Create.
function newNote(fields) {
  const n = String(++counter);
  const note = new Note({
    id: new URL(`${origin}/notes/${n}`),
    attribution: new URL(`${origin}/users/${user}`),
    published: Temporal.Now.instant(),
    ...fields,
  });
  notes.set(n, note);
  const create = new Create({ id: new URL(`${note.id.href}#create`), actor: note.attributionId, object: note });
  return { note, create };
}

// The key in `notes` of one of our note URLs (fails on anything else).
function noteKey(id) {
  const prefix = `${origin}/notes/`;
  const key = typeof id === "string" && id.startsWith(prefix) ? id.slice(prefix.length) : null;
  if (key == null || !notes.has(key)) throw new Error(`not one of our notes: ${id}`);
  return key;
}

const control = {
  async follow(body) {
    const id = await sendTo(body.target, (actor, me) => {
      const follow = new Follow({ id: newId(), actor: me, object: actor.id });
      followIds.set(body.target, follow.id);
      return follow;
    });
    return { id };
  },
  async unfollow(body) {
    await sendTo(body.target, (actor, me) => new Undo({
      id: newId(),
      actor: me,
      object: new Follow({ id: followIds.get(body.target), actor: me, object: actor.id }),
    }));
    return {};
  },
  async post(body) {
    const { note, create } = newNote({
      content: body.content,
      to: new URL("https://www.w3.org/ns/activitystreams#Public"),
    });
    await ctxFor().sendActivity({ identifier: user }, "followers", create);
    return { id: note.id.href };
  },
  async update(body) {
    const key = noteKey(body.id);
    const old = notes.get(key);
    const note = old.clone({
      content: body.content,
      updated: Temporal.Now.instant(),
    });
    notes.set(key, note);
    const update = new Update({ id: newId(), actor: note.attributionId, object: note });
    await ctxFor().sendActivity({ identifier: user }, "followers", update);
    return { id: update.id.href };
  },
  async delete(body) {
    const key = noteKey(body.id);
    const note = notes.get(key);
    notes.delete(key);
    const del = new Delete({
      id: newId(),
      actor: note.attributionId,
      to: new URL("https://www.w3.org/ns/activitystreams#Public"),
      object: new Tombstone({ id: note.id }),
    });
    await ctxFor().sendActivity({ identifier: user }, "followers", del);
    return { id: del.id.href };
  },
  async reply(body) {
    let id;
    await sendTo(body.target, (actor) => {
      const { note, create } = newNote({
        content: body.content,
        replyTarget: new URL(body.inReplyTo),
        to: actor.id,
      });
      id = note.id.href;
      return create;
    });
    return { id };
  },
  async like(body) {
    const id = await sendTo(body.target, (_actor, me) => {
      const like = new Like({ id: newId(), actor: me, object: new URL(body.object) });
      likeIds.set(body.object, like.id);
      return like;
    });
    return { id };
  },
  async "undo-like"(body) {
    await sendTo(body.target, (_actor, me) => new Undo({
      id: newId(),
      actor: me,
      object: new Like({ id: likeIds.get(body.object), actor: me, object: new URL(body.object) }),
    }));
    return {};
  },
  async react(body) {
    const id = await sendTo(body.target, (_actor, me) => new EmojiReact({
      id: newId(),
      actor: me,
      object: new URL(body.object),
      content: body.emoji,
    }));
    return { id };
  },
};

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 4 * 1024 * 1024) throw new Error("body too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, origin);
    if (url.pathname === "/_control/events" && req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(events));
      return;
    }
    if (url.pathname.startsWith("/_control/") && req.method === "POST") {
      const op = url.pathname.slice("/_control/".length);
      const handler = control[op];
      if (!handler) {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.parse((await readBody(req)).toString("utf8") || "{}");
      try {
        const out = await handler(body);
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(out));
      } catch (e) {
        record({ event: "control-error", op, error: String(e?.stack ?? e) });
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: String(e) }));
      }
      return;
    }
    const body = req.method === "GET" || req.method === "HEAD" ? undefined : await readBody(req);
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) {
      if (Array.isArray(v)) v.forEach((x) => headers.append(k, x));
      else if (v != null) headers.set(k, v);
    }
    const request = new Request(url, { method: req.method, headers, body });
    const response = await federation.fetch(request, { contextData: undefined });
    record({ event: "http", method: req.method, path: url.pathname, status: response.status });
    const out = Buffer.from(await response.arrayBuffer());
    res.writeHead(response.status, Object.fromEntries(response.headers.entries()));
    res.end(out);
  } catch (e) {
    record({ event: "error", error: String(e?.stack ?? e) });
    res.writeHead(500).end();
  }
});

server.listen(port, "127.0.0.1", () => {
  record({ event: "ready", origin, actor: `${origin}/users/${user}` });
});

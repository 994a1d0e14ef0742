// OpenClaw's session store (agents/main/agent/openclaw-agent.sqlite), read and written in the sandbox as the
// gateway's own user, under SQLite's own locking. Run by `sessions.py` as `node -e <this> <op> <db> ...`.
// An import writes what OpenClaw's own appender writes with each event (identities, the active-branch
// projection and its watermark, the full-text rows): a session whose projection lags its events is refused turns
// while OpenClaw rebuilds it.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { randomUUID } from "node:crypto";
import { zstdDecompressSync } from "node:zlib";
import { DatabaseSync } from "node:sqlite";

const [op, dbPath, ...args] = process.argv.slice(1);

function open(readOnly) {
  const db = new DatabaseSync(dbPath, { readOnly, timeout: 10000 });
  db.exec("PRAGMA foreign_keys = ON");
  return db;
}

function messageCount(db, sessionId) {
  return db
    .prepare("SELECT count(*) AS n FROM transcript_event_identities WHERE session_id = ? AND event_type = 'message'")
    .get(sessionId).n;
}

function sessions(db) {
  const rows = db
    .prepare(
      `SELECT n.session_key, n.current_session_id, n.updated_at, n.last_activity_at, n.created_at,
              w.created_at AS window_created_at, w.started_at
         FROM session_nodes n LEFT JOIN session_windows w ON w.session_id = n.current_session_id
        WHERE n.archived_at IS NULL`,
    )
    .all();
  return rows.map((row) => ({
    key: row.session_key,
    created_at: row.created_at ?? row.window_created_at ?? row.started_at ?? row.updated_at,
    last_activity_at: row.last_activity_at ?? row.updated_at,
    message_count: messageCount(db, row.current_session_id),
  }));
}

function eventOf(row) {
  const text = row.event_json ?? zstdDecompressSync(row.event_zstd).toString("utf8");
  return JSON.parse(text);
}

function transcript(db, key) {
  const node = db.prepare("SELECT current_session_id FROM session_nodes WHERE session_key = ?").get(key);
  if (!node) return null;
  const messages = [];
  const rows = db
    .prepare("SELECT event_json, event_zstd FROM transcript_events WHERE session_id = ? ORDER BY seq")
    .iterate(node.current_session_id);
  for (const row of rows) {
    const event = eventOf(row);
    if (event.type === "message" && event.message) messages.push({ id: event.id, message: event.message });
  }
  return messages;
}

function remove(db, key) {
  db.exec("BEGIN IMMEDIATE");
  try {
    const windows = db.prepare("SELECT session_id FROM session_windows WHERE session_key = ?").all(key);
    // The full-text rows go with their identities (OpenClaw's delete trigger); the rest cascades from the node.
    for (const { session_id } of windows) {
      db.prepare("DELETE FROM session_transcript_fts_rows WHERE session_id = ?").run(session_id);
    }
    const { changes } = db.prepare("DELETE FROM session_nodes WHERE session_key = ?").run(key);
    db.exec("COMMIT");
    return changes > 0;
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
}

function insert(db, key, messages, cwd) {
  const now = Date.now();
  const sessionId = randomUUID();
  const iso = (ms) => new Date(ms).toISOString();
  const started = messages.length ? messages[0].timestamp : now;
  const last = messages.length ? messages[messages.length - 1].timestamp : now;
  const entry = { sessionId, updatedAt: now, sessionStartedAt: started, lastActivityAt: last };
  db.prepare(
    `INSERT INTO session_nodes (session_key, current_session_id, entry_json, entry_valid, updated_at, created_at,
                                last_interaction_at, last_activity_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?)`,
  ).run(key, sessionId, JSON.stringify(entry), now, started, last, last);
  db.prepare(
    `INSERT INTO session_windows (session_id, session_key, reason, created_at, updated_at, transcript_updated_at,
                                  started_at) VALUES (?, ?, 'initial', ?, ?, ?, ?)`,
  ).run(sessionId, key, started, now, now, started);
  const addEvent = db.prepare("INSERT INTO transcript_events (session_id, seq, event_json, created_at) VALUES (?, ?, ?, ?)");
  const addIdentity = db.prepare(
    `INSERT INTO transcript_event_identities (session_id, event_id, seq, event_type, parent_id, created_at)
     VALUES (?, ?, ?, ?, ?, ?)`,
  );
  const header = { type: "session", version: 4, id: sessionId, timestamp: iso(started), cwd };
  addEvent.run(sessionId, 0, JSON.stringify(header), now);
  addIdentity.run(sessionId, sessionId, 0, "session", null, now);
  const addActive = db.prepare(
    `INSERT INTO session_transcript_active_events (session_id, active_position, event_seq, message_position,
                                                   context_eligible) VALUES (?, ?, ?, ?, 1)`,
  );
  const addSearchRow = db.prepare("INSERT INTO session_transcript_fts_rows (session_id, message_id) VALUES (?, ?)");
  const addSearchText = db.prepare(
    `INSERT INTO session_transcript_fts (rowid, text, session_id, message_id, role, timestamp)
     VALUES (last_insert_rowid(), ?, ?, ?, ?, ?)`,
  );
  let parentId = null;
  messages.forEach((message, index) => {
    const id = randomUUID();
    const event = { type: "message", id, parentId, timestamp: iso(message.timestamp), message };
    addEvent.run(sessionId, index + 1, JSON.stringify(event), now);
    addIdentity.run(sessionId, id, index + 1, "message", parentId, now);
    addActive.run(sessionId, index, index + 1, index);
    const text = searchText(message);
    if (text) {
      addSearchRow.run(sessionId, id);
      addSearchText.run(text, sessionId, id, message.role, message.timestamp);
    }
    parentId = id;
  });
  db.prepare(
    `INSERT INTO session_transcript_index_state (session_id, indexed_seq, leaf_event_id, needs_rebuild,
                                                 active_event_count, active_message_count, updated_at)
     VALUES (?, ?, ?, 0, ?, ?, ?)`,
  ).run(sessionId, messages.length, parentId, messages.length, messages.length, now);
}

// As OpenClaw indexes a message for search: the text parts of a user or assistant message.
function searchText(message) {
  if (message.role !== "user" && message.role !== "assistant") return null;
  const parts = message.content.filter((part) => part.type === "text" && part.text.trim()).map((part) => part.text);
  return parts.length ? parts.join("\n") : null;
}

function importInto(db, key, inputPath, cwd) {
  const messages = JSON.parse(readFileSync(inputPath, "utf8"));
  db.exec("BEGIN IMMEDIATE");
  try {
    const node = db.prepare("SELECT current_session_id FROM session_nodes WHERE session_key = ?").get(key);
    if (node && messageCount(db, node.current_session_id) > 0) {
      db.exec("ROLLBACK");
      return { imported: false, conflict: true };
    }
    if (node) db.prepare("DELETE FROM session_nodes WHERE session_key = ?").run(key);
    insert(db, key, messages, cwd);
    db.exec("COMMIT");
    return { imported: true, conflict: false };
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
}

function main() {
  if (op === "read") {
    const [key, outPath] = args;
    mkdirSync(dirname(outPath), { recursive: true });
    writeFileSync(outPath, JSON.stringify({ messages: existsSync(dbPath) ? transcript(open(true), key) : null }));
    return { written: true };
  }
  if (!existsSync(dbPath)) {
    if (op === "list") return { sessions: [] };
    if (op === "delete") return { deleted: false };
    throw new Error("The agent has no session store yet.");
  }
  if (op === "list") return { sessions: sessions(open(true)) };
  if (op === "delete") return { deleted: remove(open(false), args[0]) };
  if (op === "import") return importInto(open(false), args[0], args[1], args[2]);
  throw new Error(`unknown operation ${op}`);
}

process.stdout.write(JSON.stringify(main()));

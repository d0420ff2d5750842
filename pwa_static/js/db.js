/**
 * A thin promise layer over IndexedDB: one database, a transaction is an async function.
 *
 * Everything that must change together is one `write()` call — a record with the op that
 * changes it, a pulled page with its cursor — so a phone that dies mid-way keeps both or
 * neither. Writes ask for strict durability: an acknowledged save is on disk.
 *
 * Inside a transaction, await only requests of that transaction (never fetch or timers):
 * IndexedDB commits a transaction as soon as it has nothing left to do.
 *
 * @module db
 */

const NAME = "zoufang";
const SCHEMA = 2;

/** Stores: what each keeps (see js/records.js and js/outbox.js for the shapes). */
export const STORES = Object.freeze({
  meta: "meta", // key → value: session, next_seq, hlc, cursor, last_sync, lang
  records: "records", // pulled records with local changes on top, key [type, id]
  outbox: "outbox", // ops not yet acknowledged, key device_seq
  sent: "sent", // acknowledged ops until a pull brings their version back, key op_id
  rejected: "rejected", // ops the server refused for good, shown to the user, key op_id
  photos: "photos", // photo bytes of visits made here, key sha256; pending 1 until uploaded
});

function upgrade(idb, oldVersion) {
  if (oldVersion < 1) {
    idb.createObjectStore("meta");
    const records = idb.createObjectStore("records", { keyPath: ["type", "id"] });
    records.createIndex("household", ["type", "hh"]);
    records.createIndex("visit_time", "at");
    const outbox = idb.createObjectStore("outbox", { keyPath: "device_seq" });
    outbox.createIndex("record", ["type", "id"]);
    const sent = idb.createObjectStore("sent", { keyPath: "op_id" });
    sent.createIndex("record", ["type", "id"]);
    idb.createObjectStore("rejected", { keyPath: "op_id" });
  }
  if (oldVersion < 2) {
    const photos = idb.createObjectStore("photos", { keyPath: "sha256" });
    photos.createIndex("pending", "pending");
  }
}

/** The promise of one request's result. */
function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Every record of one type: a range over the [type, id] primary key (arrays sort last). */
export function ofType(type) {
  return IDBKeyRange.bound([type], [type, []]);
}

/** Open (and create or migrate) the app's database. */
export async function open(name = NAME) {
  const request = indexedDB.open(name, SCHEMA);
  request.onupgradeneeded = (event) => upgrade(request.result, event.oldVersion);
  const idb = await done(request);
  // a newer version of the app wants to migrate: step aside, it reloads this tab's code
  idb.onversionchange = () => idb.close();
  return new Database(idb);
}

class Database {
  constructor(idb) {
    this.idb = idb;
  }

  /** Run `fn(txn)` in a read-only transaction over `stores`; resolves to its result. */
  read(stores, fn) {
    return this.#run(stores, "readonly", fn);
  }

  /** Run `fn(txn)` in one read-write transaction; resolves once it is committed to disk. */
  write(stores, fn) {
    return this.#run(stores, "readwrite", fn);
  }

  #run(stores, mode, fn) {
    return new Promise((resolve, reject) => {
      const tx = this.idb.transaction(stores, mode, { durability: "strict" });
      let result;
      let failure = null;
      tx.oncomplete = () => resolve(result);
      tx.onabort = () => reject(failure ?? tx.error ?? new Error("transaction aborted"));
      Promise.resolve()
        .then(() => fn(new Txn(tx)))
        .then(
          (value) => {
            result = value;
          },
          (error) => {
            failure = error;
            if (!tx.error) tx.abort();
          },
        );
    });
  }

  /** Empty every store (sign-out, revoked device). */
  wipe() {
    return this.write(Object.values(STORES), (t) => {
      for (const store of Object.values(STORES)) t.clear(store);
    });
  }
}

/** One transaction; reads return promises, writes are queued in order and need no await. */
class Txn {
  constructor(tx) {
    this.tx = tx;
  }

  #source(store, index) {
    const objectStore = this.tx.objectStore(store);
    return index ? objectStore.index(index) : objectStore;
  }

  get(store, key) {
    return done(this.tx.objectStore(store).get(key));
  }

  /** All values in `query` (a key, a range or null), from the store or one of its indexes. */
  all(store, query = null, index = null, count = undefined) {
    return done(this.#source(store, index).getAll(query, count));
  }

  /** The primary keys of the values in `query`, without reading the values. */
  keys(store, query = null, index = null) {
    return done(this.#source(store, index).getAllKeys(query));
  }

  count(store, query = null, index = null) {
    return done(this.#source(store, index).count(query));
  }

  put(store, value, key = undefined) {
    this.tx.objectStore(store).put(value, key);
  }

  delete(store, key) {
    this.tx.objectStore(store).delete(key);
  }

  clear(store) {
    this.tx.objectStore(store).clear();
  }
}

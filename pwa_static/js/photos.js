/**
 * Photos (CONTRACT §11): a photo question takes a picture with the phone's camera, the phone
 * downscales it to at most 1280 px on its long side as a JPEG, and the answer is the sha256 of
 * those bytes. The bytes stay on the phone (store `photos`) with the visit; a sync sends the
 * visit first, then each photo whose visits have all been acknowledged: HEAD skips what the
 * server has, PUT sends the rest. A photo that cannot go now (offline, rate limited) waits for
 * the next sync; until it is in, the visit shows 照片待上传.
 *
 * @module photos
 */

import { t } from "./i18n.js";
import { h } from "./ui.js";

export const MAX_SIDE = 1280;
const QUALITY = 0.8;
const STORE = "photos";
const PENDING = 1;
const UPLOADED = 0;

/** A picked image as the phone keeps it: {bytes, sha256, width, height}. */
export async function downscaled(file) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  const blob = await new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("no JPEG"))), "image/jpeg", QUALITY),
  );
  const bytes = await blob.arrayBuffer();
  return { bytes, sha256: await sha256Hex(bytes), width, height };
}

export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

function thumbnail(bytes) {
  const url = URL.createObjectURL(new Blob([bytes], { type: "image/jpeg" }));
  return h("img", { class: "thumb", src: url, alt: "", on: { load: () => URL.revokeObjectURL(url) } });
}

/**
 * The control of a photo question: a camera button, the thumbnail of the photo taken, and its
 * size. Photos taken are held in `taken` (sha256 → photo) until the visit is saved.
 */
export function photoInput(label, current, set, taken) {
  const status = h("span", { class: "muted" }, current ? t("photo.kept") : "");
  const preview = h("span", { class: "thumbs" });
  const picker = h("input", {
    type: "file",
    accept: "image/*",
    capture: "environment",
    class: "photo-input",
    on: {
      change: async (event) => {
        const file = event.target.files?.[0];
        if (!file) return;
        status.textContent = t("photo.processing");
        try {
          const photo = await downscaled(file);
          taken.set(photo.sha256, photo);
          preview.replaceChildren(thumbnail(photo.bytes));
          status.textContent = t("photo.taken", { w: photo.width, h: photo.height });
          set(photo.sha256);
        } catch {
          status.textContent = t("photo.failed");
        }
      },
    },
  });
  return h(
    "fieldset",
    { class: "photo-field" },
    h("legend", {}, label),
    h("label", { class: "button small" }, t("photo.take"), picker),
    " ",
    preview,
    status,
  );
}

/** The shas of every photo (and audio, video or file) among a visit's answers, inside
 *  repeat entries too. */
function photosIn(answers) {
  const found = [];
  const walk = (value) => {
    if (typeof value === "string" && /^[0-9a-f]{64}$/.test(value)) found.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === "object") Object.values(value).forEach(walk);
  };
  walk(answers ?? {});
  return found;
}

/** Keep the photos a visit's answers name, before the visit is queued: one is never lost. */
export function keepPhotos(db, taken, answers, householdId) {
  const kept = photosIn(answers).filter((sha) => taken.has(sha));
  if (kept.length === 0) return Promise.resolve();
  return db.write([STORE], (tx) => {
    for (const sha of kept) {
      const { bytes, width, height } = taken.get(sha);
      tx.put(STORE, { sha256: sha, bytes, width, height, household_id: householdId, pending: PENDING });
    }
  });
}

/** The shas of the photos not on the server yet. */
export function pendingPhotos(db) {
  return db.read([STORE], async (tx) => new Set(await tx.keys(STORE, PENDING, "pending")));
}

/** The photo bytes this phone holds for a visit's answers, as thumbnails; pending flagged. */
export async function visitPhotos(db, answers) {
  const shas = photosIn(answers);
  if (shas.length === 0) return null;
  const photos = await db.read([STORE], (tx) => Promise.all(shas.map((sha) => tx.get(STORE, sha))));
  const pending = photos.some((p) => p?.pending === PENDING);
  return h(
    "div",
    { class: "thumbs" },
    photos.filter(Boolean).map((p) => thumbnail(p.bytes)),
    pending && h("span", { class: "tag pending" }, t("photo.pending")),
  );
}

/**
 * After the push: send every pending photo whose visits the server has (no queued op names
 * it). Resolves to how many are still pending; a failure leaves the photo for the next sync.
 */
export async function uploadPhotos(db, session) {
  const [pending, queued] = await db.read([STORE, "outbox"], async (tx) => [
    await tx.all(STORE, PENDING, "pending"),
    await tx.all("outbox"),
  ]);
  const waiting = new Set(queued.flatMap((op) => photosIn(op.data?.answers)));
  let left = pending.length;
  for (const photo of pending) {
    if (waiting.has(photo.sha256)) continue;
    if (!(await stored(photo, session.token))) break;
    await db.write([STORE], (tx) => tx.put(STORE, { ...photo, pending: UPLOADED }));
    left -= 1;
  }
  return left;
}

/** HEAD, then PUT if the server has not got it; whether it is on the server now. */
async function stored(photo, token) {
  const url = `/api/v1/blobs/${photo.sha256}`;
  const headers = { Authorization: `Bearer ${token}` };
  try {
    const head = await fetch(url, { method: "HEAD", headers, cache: "no-store" });
    if (head.ok) return true;
    const put = await fetch(url, {
      method: "PUT",
      headers: { ...headers, "Content-Type": "image/jpeg" },
      body: photo.bytes,
      cache: "no-store",
    });
    return put.ok;
  } catch {
    return false; // offline: the next sync tries again
  }
}

// Lighthouse (desktop) on the admin pages, signed in: sign in once on /admin through the
// page's own form, then measure a navigation to each page with the session in sessionStorage.
import puppeteer from "puppeteer-core";
import { startFlow, desktopConfig } from "lighthouse";
import { writeFileSync } from "node:fs";

const base = process.argv[2];
const browser = await puppeteer.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const page = await browser.newPage();
await page.goto(`${base}/admin`);
await page.waitForSelector("#signin input[name=username]", { visible: true });
await page.type("#signin input[name=username]", "admin");
await page.type("#signin input[name=password]", "zoufang2026");
await page.click("#signin button[type=submit]");
await page.waitForSelector("#signout", { visible: true });
const results = {};
for (const path of ["/admin", "/admin/manage"]) {
  const flow = await startFlow(page, { config: desktopConfig, flags: { onlyCategories: ["performance", "accessibility", "best-practices"] } });
  await flow.navigate(`${base}${path}`, { disableStorageReset: true });
  const lhr = (await flow.createFlowResult()).steps[0].lhr;
  results[path] = {
    ...Object.fromEntries(Object.entries(lhr.categories).map(([k, v]) => [k, v.score])),
    cls: lhr.audits["cumulative-layout-shift"].numericValue,
    failing_a11y: Object.values(lhr.audits).filter((a) => a.score === 0 && lhr.categories.accessibility.auditRefs.some((r) => r.id === a.id)).map((a) => a.id),
  };
}
writeFileSync(process.argv[3] ?? "lighthouse-admin-desktop.json", JSON.stringify(results, null, 1));
console.log(JSON.stringify(results));
await browser.close();

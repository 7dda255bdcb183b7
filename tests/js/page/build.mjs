// Bundles the proof page: node page/build.mjs <out dir>
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, "app.jsx")],
  bundle: true,
  outfile: join(out, "app.js"),
  jsx: "automatic",
  format: "iife",
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
});
copyFileSync(join(here, "index.html"), join(out, "index.html"));

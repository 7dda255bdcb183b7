// Bundles the page: web/src → web/dist/app.js (committed, so `make dev` needs no npm).
//   node build.mjs [out dir]        (`make web`; the test builds into a temp dir and compares)
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] || join(here, "dist");
await build({
  entryPoints: [join(here, "src", "main.jsx")],
  bundle: true,
  outfile: join(out, "app.js"),
  jsx: "automatic",
  format: "esm",
  target: "es2022",
  minify: true,
  legalComments: "none",
  define: { "process.env.NODE_ENV": '"production"' }, // fixed: the bundle must not depend on the shell
  logLevel: "warning",
});

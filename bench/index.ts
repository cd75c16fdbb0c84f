/** `bun run bench [pow|link]`: runs the named benchmark, or all of them. */
import { benchLink } from "./link.ts";
import { benchPow } from "./pow.ts";

const which = process.argv[2] ?? "all";
const benches: Record<string, () => Promise<unknown>> = { pow: () => benchPow(), link: () => benchLink() };
if (which !== "all" && !benches[which]) {
  console.error(`unknown benchmark "${which}"; choose one of: ${Object.keys(benches).join(", ")}`);
  process.exit(2);
}
for (const [name, run] of Object.entries(benches)) {
  if (which !== "all" && which !== name) continue;
  console.log(`== bench ${name}`);
  await run();
}

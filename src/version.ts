/**
 * The package version and the git commit this code was built from. A compiled binary gets the commit embedded by
 * `scripts/build-binaries.ts` (`--define GOSSIP_BUILD_COMMIT=…`); from source it is asked of git, if there is one.
 */
import pkg from "../package.json" with { type: "json" };

declare const GOSSIP_BUILD_COMMIT: string;

export const VERSION: string = pkg.version;

function sourceCommit(): string {
  try {
    const result = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: import.meta.dir, stderr: "ignore" });
    const text = result.stdout.toString().trim();
    return result.exitCode === 0 && text ? `${text} (source)` : "unknown";
  } catch {
    return "unknown";
  }
}

export function buildCommit(): string {
  return typeof GOSSIP_BUILD_COMMIT === "string" ? GOSSIP_BUILD_COMMIT : sourceCommit();
}

export function versionLine(): string {
  return `gossip ${VERSION} (commit ${buildCommit()})`;
}

/**
 * Regenerates the committed TypeScript for proto/ (`bun run proto`): @bufbuild/buf compiles the .proto files and
 * runs the ts-proto plugin under Bun, as configured in buf.gen.yaml, with no protoc and no network.
 * `generateProto(base)` writes under another base directory instead, so a test can diff a fresh run against the
 * committed output. It never edits the generated files by hand.
 */
import { join } from "node:path";

export const REPO_ROOT = join(import.meta.dir, "..");
/** Where buf.gen.yaml puts the output, relative to the base directory. */
export const PROTO_OUT_DIR = "src/p2p/proto";

export async function generateProto(outputBase: string = REPO_ROOT): Promise<void> {
  const buf = join(REPO_ROOT, "node_modules", ".bin", "buf");
  // buf.gen.yaml names the plugin by paths relative to the repository, so buf runs there.
  const proc = Bun.spawn([buf, "generate", "--output", outputBase], {
    cwd: REPO_ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`buf generate exited with ${code}:\n${stderr}${stdout}`);
}

if (import.meta.main) {
  await generateProto();
  console.log(`generated ${PROTO_OUT_DIR}/ from proto/`);
}

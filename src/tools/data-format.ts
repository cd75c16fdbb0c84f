/**
 * How the tools show item data: text when it is printable UTF-8, hex otherwise. Pure.
 */

const decoder = new TextDecoder("utf-8", { fatal: true });
/** C0 controls other than tab, newline and carriage return; DEL; C1 controls. */
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

export type ShownData = { text: string } | { hex: string };

export function showData(data: Uint8Array): ShownData {
  let text: string;
  try {
    text = decoder.decode(data);
  } catch {
    return { hex: Buffer.from(data).toString("hex") };
  }
  return CONTROL.test(text) ? { hex: Buffer.from(data).toString("hex") } : { text };
}

/** The string a --reject-if rule is matched against: the text, or the hex when the data is not printable. */
export function matchable(shown: ShownData): string {
  return "text" in shown ? shown.text : shown.hex;
}

export interface NotificationLine {
  dataType: number;
  size: number;
  valid: boolean;
  shown: ShownData;
}

/** One line, no trailing newline: `type=1337 size=5 valid text="hello"` or one JSON object per line. */
export function formatNotification(n: NotificationLine, json: boolean): string {
  if (json) return JSON.stringify({ data_type: n.dataType, size: n.size, valid: n.valid, ...n.shown });
  const verdict = n.valid ? "valid" : "rejected";
  const body = "text" in n.shown ? `text=${JSON.stringify(n.shown.text)}` : `hex=${n.shown.hex}`;
  return `type=${n.dataType} size=${n.size} ${verdict} ${body}`;
}

/**
 * How full the active views are over time (issue 16): the share of live honest nodes holding `degree` links or more,
 * sampled every SIM_VIEW_SAMPLE_MS of simulated time from t0 (just before the scenario acts: a failure's crash), and
 * from it how long until the views were full again. For the classic membership "full" is the same test (it keeps
 * between `degree` and 2 × degree links). Pure reads of the world; it changes nothing.
 */
import { SIM_VIEW_SAMPLE_MS } from "../defaults.ts";
import type { SimNode } from "./node.ts";

export interface ViewFigures {
  /** Share of live honest nodes with `degree` links or more at t0, before the scenario acted. */
  full_share_t0: number;
  /** Lowest share seen after t0 (right after a crash). */
  full_share_min: number;
  /** Seconds after t0 from which on the share stayed at full_share_t0 or above, at 99% or above, and at 100% (every
   *  live honest node full) until the end of the run: the last sample at which it came back above the mark (0: it
   *  never fell below; null: below at the end). A crash shows a sample or two late (peers see the RST after a delay). */
  back_s: number | null;
  full_99_s: number | null;
  full_all_s: number | null;
  /** At the end of the run: share full, nodes short of `degree`, links missing over all of them. */
  full_share_end: number;
  short_end: number;
  missing_end: number;
  sample_ms: number;
}

export class ViewWatch {
  private t0 = 0;
  private shareT0 = 0;
  private min = 1;
  private back: number | null = 0;
  private full99: number | null = 0;
  private fullAll: number | null = 0;
  private shareNow = 1;

  constructor(
    private readonly nodes: () => readonly SimNode[],
    private readonly degree: number,
  ) {}

  /** Notes the state at t0; call before the scenario acts. */
  start(t0: number): void {
    this.t0 = t0;
    this.shareT0 = this.sample().share;
    this.min = this.shareT0;
    this.observe(t0);
  }

  /** One sample at `now`: records the first times the thresholds were reached. */
  observe(now: number): void {
    const { share } = this.sample();
    this.shareNow = share;
    this.min = Math.min(this.min, share);
    const s = Math.round((now - this.t0) / 10) / 100;
    const mark = (at: number | null, threshold: number) => (share < threshold ? null : (at ?? s));
    this.back = mark(this.back, this.shareT0);
    this.full99 = mark(this.full99, 0.99);
    this.fullAll = mark(this.fullAll, 1);
  }

  /** Every live honest node's view was full at the last sample. */
  get allFull(): boolean {
    return this.shareNow >= 1;
  }

  figures(): ViewFigures {
    const end = this.sample();
    const r = (v: number) => Math.round(v * 10_000) / 10_000;
    return {
      full_share_t0: r(this.shareT0),
      full_share_min: r(this.min),
      back_s: this.back,
      full_99_s: this.full99,
      full_all_s: this.fullAll,
      full_share_end: r(end.share),
      short_end: end.short,
      missing_end: end.missing,
      sample_ms: SIM_VIEW_SAMPLE_MS,
    };
  }

  private sample(): { share: number; short: number; missing: number } {
    let live = 0;
    let short = 0;
    let missing = 0;
    for (const n of this.nodes()) {
      if (!n.alive || !n.honest) continue;
      live++;
      if (n.links.size < this.degree) {
        short++;
        missing += this.degree - n.links.size;
      }
    }
    return { share: live === 0 ? 1 : (live - short) / live, short, missing };
  }
}

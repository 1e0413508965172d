import type { SendItem } from '../app.js';
import { ConfigurationError } from '../errors.js';
import type { GroupResult } from './group-result.js';
import type { SignatureSender } from './signature.js';

/**
 * What sending one canvas takes, collected before anything goes out: the
 * messages (published together: one Redis MULTI for a whole group or chord
 * header), the chord sizes to store first, and group results to save first.
 */
export interface SendPlan {
  readonly sender: SignatureSender;
  readonly items: SendItem[];
  readonly chordSizes: { groupId: string; size: number }[];
  readonly groupsToSave: GroupResult<unknown>[];
}

/** An empty plan for `sender`. */
export function newPlan(sender: SignatureSender): SendPlan {
  return { sender, items: [], chordSizes: [], groupsToSave: [] };
}

/**
 * Carry out a plan: refuse a chord the result backend cannot count (before any
 * message is sent), store chord sizes and saved groups, then publish every
 * message in one batch.
 */
export async function dispatchPlan(plan: SendPlan): Promise<void> {
  const { sender } = plan;
  if (plan.chordSizes.length > 0 || plan.groupsToSave.length > 0) {
    if (!sender.getBackend) throw new ConfigurationError('A chord needs a result backend to count its header: send it through an app (task.s(...)).');
    const backend = await sender.getBackend();
    if (plan.chordSizes.length > 0 && (!backend.setChordSize || !backend.onChordPartReturn)) {
      throw new ConfigurationError(
        `The result backend ${backend.displayUrl} cannot count chord members, so this chord's body would never run: use a redis:// or memory:// result backend for chords.`,
      );
    }
    for (const { groupId, size } of plan.chordSizes) await backend.setChordSize!(groupId, size);
    for (const group of plan.groupsToSave) await group.save();
  }
  if (plan.items.length === 0) return;
  if (sender.sendMany) await sender.sendMany(plan.items);
  else for (const item of plan.items) await sender.sendTask(item.name, item.args, item.kwargs, item.options);
}

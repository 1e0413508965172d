/**
 * The canvas issue's acceptance examples and nesting cases, each with its exact
 * expected value, shared by the memory://, Redis and interop canvas tests.
 */
import { chain, chord, group, type Signature } from '../../packages/core/src/index.ts';
import type { canvasTasks } from '../apps/canvas-app.ts';

type Tasks = ReturnType<typeof canvasTasks>;
const T = { timeout: 20_000 };
const range = (n: number) => [...Array(n).keys()];

/** One example: what to send and the exact value its result must have. */
export interface CanvasExample {
  name: string;
  run: () => Promise<unknown>;
  expected: unknown;
}

async function get(send: Promise<{ get(o: typeof T): Promise<unknown> }>): Promise<unknown> {
  return (await send).get(T);
}

/** The acceptance examples, for tasks registered with `canvasTasks` on a producer app. */
export function acceptanceExamples({ add, mul, xsum }: Tasks): CanvasExample[] {
  return [
    {
      name: 'add.applyAsync([2, 2], { link: add.s(16) }) → 20 via the child',
      run: async () => {
        const r = await add.applyAsync([2, 2], {}, { link: add.s(16) });
        await r.get(T);
        const [child] = await r.children;
        return child!.get(T);
      },
      expected: 20,
    },
    { name: 'group(add.s(i, i) for 0..9) → [0, 2, ..., 18]', run: () => get(group(range(10).map((i) => add.s(i, i))).delay()), expected: range(10).map((i) => 2 * i) },
    { name: 'chain(add.s(2, 2), add.s(4), add.s(8)) → 16', run: () => get(chain(add.s(2, 2), add.s(4), add.s(8)).delay()), expected: 16 },
    { name: 'add.s(4, 4).pipe(mul.s(8)) → 64', run: () => get(add.s(4, 4).pipe(mul.s(8)).delay()), expected: 64 },
    { name: 'chain(add.s(4), mul.s(8)) called with 4 → 64', run: () => get(chain(add.s(4), mul.s(8)).delay(4)), expected: 64 },
    { name: '((4 + 16) * 2 + 4) * 8 → 352', run: () => get(chain(add.s(4, 16), mul.s(2), add.s(4), mul.s(8)).delay()), expected: 352 },
    { name: 'chord(add.s(i, i) for 0..9, xsum.s()) → 90', run: () => get(chord(range(10).map((i) => add.s(i, i)), xsum.s()).delay()), expected: 90 },
    { name: 'xsum.map([range(10), range(100)]) → [45, 4950]', run: () => get(xsum.map([range(10), range(100)]).delay()), expected: [45, 4950] },
    {
      name: 'add.starmap(zip(range(10), range(10))) → [0, 2, ..., 18]',
      run: () => get(add.starmap(range(10).map((i) => [i, i] as [number, number])).delay()),
      expected: range(10).map((i) => 2 * i),
    },
    {
      name: 'add.chunks(zip(range(100), range(100)), 10) → ten lists of ten',
      run: () => get(add.chunks(range(100).map((i) => [i, i] as [number, number]), 10).delay()),
      expected: range(10).map((c) => range(10).map((i) => 2 * (c * 10 + i))),
    },
    {
      name: 'add.si(2, 2) | add.si(4, 4) | add.si(8, 8) → 16, parent 8, parent.parent 4',
      run: async () => {
        const r = await add.si(2, 2).pipe(add.si(4, 4)).pipe(add.si(8, 8)).delay();
        const last = await r.get(T);
        const parent = r.parent as unknown as { get(o: typeof T): Promise<unknown>; parent: { get(o: typeof T): Promise<unknown> } };
        return [last, await parent.get(T), await parent.parent.get(T)];
      },
      expected: [16, 8, 4],
    },
    { name: 'group(add.s(i) for 0..9)(10) → [10, ..., 19]', run: () => get(group(range(10).map((i) => add.s(i))).delay(10)), expected: range(10).map((i) => i + 10) },
  ];
}

/** The nesting cases. */
export function nestingExamples({ add, mul, xsum }: Tasks): CanvasExample[] {
  const ex = (name: string, sig: Signature, expected: unknown): CanvasExample => ({ name, run: () => get(sig.delay()), expected });
  return [
    ex('a group followed by a task in a chain (a chord)', chain(add.s(1, 1), group(add.s(1), add.s(2)), xsum.s()), 7),
    ex('chains in a group', group(chain(add.s(1, 1), mul.s(10)), chain(add.s(2, 2), mul.s(10))), [20, 40]),
    ex('a chord in a chain, then another step', chain(add.s(1, 1), chord([add.s(1), add.s(2)], xsum.s()), mul.s(10)), 70),
    ex('a chord body that is a chain', chord([add.s(1, 1), add.s(2, 2)], xsum.s().pipe(mul.s(3))), 18),
    ex('a group of chords', group(chord([add.s(1, 1), add.s(2, 2)], xsum.s()), chord([add.s(3, 3), add.s(4, 4)], xsum.s())), [6, 14]),
    ex('a chain ending in a group', chain(add.s(2, 2), group(add.s(1), mul.s(3))), [5, 12]),
    ex('a chain inside a chord header', chord([chain(add.s(1, 1), mul.s(5)), add.s(3, 3)], xsum.s()), 16),
  ];
}

/** this.replace(...) and this.addToChord(...) cases. */
export function replaceExamples({ add, mul, xsum, replaceWithAdd, replaceWithChain, replaceWithGroup, addsToChord }: Tasks): CanvasExample[] {
  const ex = (name: string, sig: Signature, expected: unknown): CanvasExample => ({ name, run: () => get(sig.delay()), expected });
  return [
    ex('this.replace(add.s(x, 100)) keeps the task id: 1 → 101', replaceWithAdd.s(1), 101),
    ex('a replaced chain step: chain(replace_with_add.s(1), mul.s(2)) → 202', chain(replaceWithAdd.s(1), mul.s(2)), 202),
    ex('a replaced chord member: chord([replace_with_add.s(1), add.s(1, 1)], xsum.s()) → 103', chord([replaceWithAdd.s(1), add.s(1, 1)], xsum.s()), 103),
    ex('replaced by a chain: replace_with_chain.s(1) → 20', replaceWithChain.s(1), 20),
    ex('replaced by a chain, inside a chain: chain(replace_with_chain.s(1), add.s(5)) → 25', chain(replaceWithChain.s(1), add.s(5)), 25),
    ex('replaced by a group (a chord into celery.accumulate): replace_with_group.s(4) → [0, 2, 4, 6]', replaceWithGroup.s(4), [0, 2, 4, 6]),
    ex('this.addToChord(add.s(10, 10)): chord([adds_to_chord.s(1), add.s(2, 2)], xsum.s()) → 25', chord([addsToChord.s(1), add.s(2, 2)], xsum.s()), 25),
  ];
}

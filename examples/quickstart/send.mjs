// Send tasks to a running worker and print their results:
//   node examples/quickstart/send.mjs
import { add, app, flaky } from './tasks.mjs';

const sum = await add.delay(2, 2);
console.log(`tasks.add(2, 2) -> ${await sum.get({ timeout: 10_000 })}`);
const later = await add.applyAsync([10, 5], {}, { countdown: 2 });
console.log(`tasks.add(10, 5) countdown=2s -> ${await later.get({ timeout: 10_000 })}`);
console.log(`tasks.flaky(7) -> ${await (await flaky.delay(7)).get({ timeout: 10_000 })}`);
await app.close();

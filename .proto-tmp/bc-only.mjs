// broadcast only, N reps, to profile
import { transportBench } from '/work/wt-wire/dist/bench/transport.js';
const r = await transportBench.run(['--mib', '256'], (l) => console.error(l));
console.log(r.text);

// The dashboard's axes, on fixed inputs in the real page's modules: counts step by whole
// numbers (never 0.3 of a document), a rate's axis ends at 100 % (never 200 % for 80 %).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage, startServer } from './harness.mjs';

let chrome;
let server;
before(async () => { chrome = await launch(); server = await startServer(); });
after(async () => { await chrome?.close(); await server?.stop(); });

test('dashboard axes: whole steps for counts, rates up to 100 %', async () => {
  const { page, context, errors } = await openPage(chrome.browser, server.origin);
  try {
    const ticks = await page.evaluate(async () => {
      const { LineChart, axisTop } = await import('/assets/chart.js');
      const drawn = (options, values) => {
        const chart = new LineChart('t', options);
        document.body.append(chart.node);
        chart.draw(values.map((_, i) => i), [{ name: 't', values }], values.length);
        return chart.node.dataset.ticks;
      };
      return {
        count: drawn({ integer: true }, [0, 1, 0]),
        counts: drawn({ integer: true }, [3, 7, 2]),
        rate: drawn({ percent: true }, [0.2, 0.8]),
        over: axisTop(1.5, { percent: true }),
        plain: drawn({}, [0.2, 0.7]),
        empty: drawn({ unit: 's' }, [null, null]),
      };
    });
    assert.equal(ticks.count, '0,1,2,3,4', 'a count of 1: whole steps');
    assert.equal(ticks.counts, '0,2,4,6,8');
    assert.equal(ticks.rate, '0%,25%,50%,75%,100%', 'a rate of 80 % ends at 100 %');
    assert.ok(ticks.over >= 1.5, 'a rate over 100 % still fits');
    assert.equal(ticks.plain, '0,0.2,0.4,0.6,0.8', 'other series keep fractional steps');
    assert.equal(ticks.empty, '0,0.25,0.5,0.75,1', 'a quarter step is 0.25, not 0.3');
    // The live embedding rate: growth of the counter over the last 5 s, nothing without an
    // earlier sample, nothing across a restart (the counter went back).
    const rates = await page.evaluate(async () => {
      const { perSecond } = await import('/assets/dashboard.js');
      const S = [{ t: 0, n: 0 }, { t: 1, n: 10 }, { t: 2, n: 30 }, { t: 8, n: 90 }, { t: 9, n: 5 }];
      return perSecond(S, (x) => x.n, 5);
    });
    assert.deepEqual(rates, [null, 10, 15, null, null]);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

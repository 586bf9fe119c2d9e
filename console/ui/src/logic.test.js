import assert from 'node:assert/strict';
import test from 'node:test';
import {
  adoptionShare, bundleUsage, can, failureRate, formatPlan, hasData, parseDuration, parsePlan, rolloutControls,
  topFailures, visibleApps,
} from './logic.js';

test('can', () => {
  const table = [
    ['viewer', 'read', true], ['viewer', 'write', false], ['viewer', 'admin', false],
    ['publisher', 'write', true], ['publisher', 'admin', false],
    ['admin', 'write', true], ['admin', 'admin', true], ['nobody', 'read', false],
  ];
  for (const [role, what, want] of table) assert.equal(can(role, what), want, `${role} ${what}`);
});

test('visibleApps', () => {
  const apps = [{ id: 'a' }, { id: 'b' }];
  assert.deepEqual(visibleApps(apps, []), apps);
  assert.deepEqual(visibleApps(apps, ['b']), [{ id: 'b' }]);
});

test('bundleUsage', () => {
  const u = bundleUsage([
    { name: 'production', bundle: '1.0.0', rollout_bundle: '1.1.0' },
    { name: 'beta', bundle: '1.1.0' },
    { name: 'empty', bundle: '' },
  ]);
  assert.deepEqual(u.get('1.0.0'), ['production']);
  assert.deepEqual(u.get('1.1.0'), ['production (rollout)', 'beta']);
  assert.equal(u.get(''), undefined);
});

test('parseDuration', () => {
  for (const [s, want] of [['90s', 90], ['10m', 600], ['1h30m', 5400], ['2d', 172800], ['30', 30]]) {
    assert.equal(parseDuration(s), want, s);
  }
  for (const s of ['', 'x', '10y', '1h x']) assert.ok(Number.isNaN(parseDuration(s)), s);
});

test('parsePlan and formatPlan', () => {
  const steps = parsePlan('1:10m, 5:30m:100,25:1h');
  assert.deepEqual(steps, [
    { percent: 1, bake_seconds: 600 }, { percent: 5, bake_seconds: 1800, min_installs: 100 }, { percent: 25, bake_seconds: 3600 },
  ]);
  assert.equal(formatPlan(steps), '1:10m,5:30m:100,25:1h');
  assert.deepEqual(parsePlan(''), []);
  for (const bad of ['0:10m', '101:1h', '5', '5:x', '5:1h:-1', '5:1h:2:3']) assert.throws(() => parsePlan(bad), bad);
});

test('adoptionShare', () => {
  const got = adoptionShare([
    { version: '1.0.0', active_devices: [3, 1, 0] },
    { version: '1.1.0', active_devices: [1, 3, 0] },
  ], 3);
  assert.deepEqual(got, [
    { version: '1.0.0', share: [75, 25, null] },
    { version: '1.1.0', share: [25, 75, null] },
  ]);
});

test('failureRate', () => {
  assert.deepEqual(failureRate({ installs: [3, 0, 0], failures: [1, 2, 0] }, 3), [25, 100, null]);
});

test('topFailures', () => {
  const got = topFailures([{ action: 'b', count: 1 }, { action: 'a', count: 5 }, { action: 'c', count: 1 }], 2);
  assert.deepEqual(got, [{ action: 'a', count: 5 }, { action: 'b', count: 1 }]);
});

test('hasData', () => {
  assert.equal(hasData({ series: [] }), false);
  assert.equal(hasData({ series: [{ installs: [0, 0] }] }), false);
  assert.equal(hasData({ series: [{ installs: [0, 2] }] }), true);
});

test('rolloutControls', () => {
  assert.deepEqual(rolloutControls('running'), ['pause', 'promote', 'abort']);
  assert.deepEqual(rolloutControls('paused'), ['resume', 'promote', 'abort']);
  assert.deepEqual(rolloutControls('none'), []);
});

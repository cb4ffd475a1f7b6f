import { version } from '@tessera/tensor-core';
import { expect, test } from 'vitest';

test('resolves sources through the @tessera/source condition', () => {
  expect(version).toBe('0.1.0');
});
